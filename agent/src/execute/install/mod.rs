//! The Install event: remove what the group's previous install created (its cleanup file),
//! plan the copies, record them, copy in parallel, then apply permissions. Each step follows the
//! CodeDeploy agent, so its cleanup and instruction files stay interchangeable.

mod cleanup;
mod copy;
mod plan;

use std::path::{Path, PathBuf};

use shoal_shared::appspec::{AppSpec, FileExistsBehavior};

use super::layout::{Layout, write_atomically};
use super::permissions;
pub use plan::{Instruction, Plan, bundle_relative, plan};

/// Why the Install step failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A `files` source that cannot be installed.
    #[error("files source `{source_path}` cannot be installed: {why}")]
    Source {
        /// The source as written in the AppSpec.
        source_path: String,
        /// What is wrong.
        why: String,
    },
    /// A destination that cannot be installed to.
    #[error("cannot install to `{destination}`: {why}")]
    Destination {
        /// The destination path.
        destination: String,
        /// What is wrong.
        why: String,
    },
    /// Two sources map to one target.
    #[error("`{}` would be installed twice, from `{}` and from `{}`", destination.display(), first.display(), second.display())]
    Collision {
        /// The target path.
        destination: PathBuf,
        /// The first source.
        first: PathBuf,
        /// The second source.
        second: PathBuf,
    },
    /// A target exists and the behaviour is DISALLOW.
    #[error(
        "the deployment failed because a specified file already exists at this location: {} \
         (file_exists_behavior DISALLOW; use OVERWRITE or RETAIN to allow it)",
        path.display()
    )]
    FileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A permissions entry that cannot be applied.
    #[error("permissions[{index}]: {why}")]
    Permission {
        /// Index of the entry in the AppSpec.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A command-line tool that a permission needs is not installed.
    #[error("{purpose} needs `{tool}`, which is not installed on this host")]
    MissingTool {
        /// The tool (or tools, any of which would do).
        tool: &'static str,
        /// What it was needed for.
        purpose: String,
    },
    /// A tool failed.
    #[error("`{command}` failed on {}: {stderr}", path.display())]
    Command {
        /// The command line.
        command: String,
        /// The path it worked on.
        path: PathBuf,
        /// Its error output.
        stderr: String,
    },
    /// A file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl InstallError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// A stable name for status output and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Source { .. } => "source",
            Self::Destination { .. } => "destination",
            Self::Collision { .. } => "collision",
            Self::FileExists { .. } => "file-exists",
            Self::Permission { .. } => "permission",
            Self::MissingTool { .. } => "missing-tool",
            Self::Command { .. } => "command",
            Self::Io { .. } => "io",
        }
    }
}

/// What an install did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// Paths of the previous install that were removed.
    pub removed: usize,
    /// Directories created.
    pub directories: usize,
    /// Files and symlinks copied.
    pub files: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Existing files kept because of RETAIN.
    pub retained: usize,
}

/// `spec` with its absolute `files` destinations and `permissions` objects moved under `root`
/// (a relative destination stays as written, to be refused by the plan).
fn under_root(spec: &AppSpec, root: &Path) -> AppSpec {
    let rebase = |path: &str| match Path::new(path).strip_prefix("/") {
        Ok(relative) => root.join(relative).display().to_string(),
        Err(_) => path.to_owned(),
    };
    let mut spec = spec.clone();
    for mapping in &mut spec.files {
        mapping.destination = rebase(&mapping.destination);
    }
    for permission in &mut spec.permissions {
        permission.object = rebase(&permission.object);
    }
    spec
}

/// Runs the Install event for `group_id` from the unpacked `archive`.
pub fn install(
    layout: &Layout,
    group_id: &str,
    archive: &Path,
    spec: &AppSpec,
    behavior: FileExistsBehavior,
) -> Result<InstallReport, InstallError> {
    let started = tokio::time::Instant::now();
    let cleanup_file = layout.cleanup_file(group_id);
    let removed = cleanup::replay(&cleanup_file)?;
    let rooted;
    let spec = match layout.files_root() {
        Some(root) => {
            rooted = under_root(spec, root);
            &rooted
        }
        None => spec,
    };
    let plan = plan::plan(archive, &spec.files, behavior)?;
    tracing::debug!(elapsed = ?started.elapsed(), removed, steps = plan.instructions.len(), "install planned");
    let json = serde_json::json!({ "instructions": &plan.instructions });
    let install_json = layout.install_json(group_id);
    write_atomically(&install_json, json.to_string().as_bytes())
        .map_err(|e| InstallError::io("write", &install_json, e))?;

    let mut record = cleanup::Recorder::create(&cleanup_file)?;
    let mut report = InstallReport {
        removed,
        retained: plan.retained.len(),
        ..InstallReport::default()
    };
    for instruction in &plan.instructions {
        if let Instruction::Mkdir { directory } = instruction {
            std::fs::create_dir(directory)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists if directory.is_dir() => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| InstallError::io("create directory", directory, e))?;
            record.path(directory)?;
            report.directories += 1;
        }
    }
    let copies: Vec<(&Path, &Path)> = plan
        .instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::Copy {
                source,
                destination,
            } => Some((source.as_path(), destination.as_path())),
            Instruction::Mkdir { .. } => None,
        })
        .collect();
    for (_, destination) in &copies {
        record.path(destination)?;
    }
    record.flush()?;
    tracing::debug!(elapsed = ?started.elapsed(), "install recorded");
    report.bytes = copy::copy_all(&copies)?;
    report.files = copies.len();
    tracing::debug!(elapsed = ?started.elapsed(), files = report.files, "install copied");

    let installed: Vec<&Path> = plan.installed().collect();
    let copied: Vec<&Path> = copies.iter().map(|(_, d)| *d).collect();
    for path in permissions::apply(&spec.permissions, &installed, &copied)? {
        record.selinux(&path)?;
    }
    record.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_root_moves_absolute_paths_only() {
        let parsed = shoal_shared::appspec::parse(
            "version: 0.0\nos: linux\nfiles:\n  - source: www\n    destination: /opt/app\n  - source: x\n    destination: relative\n\
             permissions:\n  - object: /opt/app\n    mode: 644\n",
        )
        .expect("valid");
        let spec = under_root(&parsed.spec, Path::new("/tmp/host-1"));
        assert_eq!(spec.files[0].destination, "/tmp/host-1/opt/app");
        assert_eq!(
            spec.files[1].destination, "relative",
            "left for the plan to refuse"
        );
        assert_eq!(spec.permissions[0].object, "/tmp/host-1/opt/app");
    }
}
