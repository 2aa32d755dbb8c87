//! The Install event: remove what the group's previous install created (its cleanup file),
//! plan the copies, record them, copy in parallel, then apply permissions. Each step follows the
//! CodeDeploy agent, so its cleanup and instruction files stay interchangeable. One difference:
//! a file the previous install made that is exactly what the new one would write stays in
//! place instead of being removed and written again (`held`).
//!
//! Root does all of it relative to directories opened by `walk`, never by resolving a path
//! through a directory another user can write, and remembers which inode each created path is,
//! so permissions change only what this install made.

mod acl;
mod cleanup;
mod copy;
mod error;
mod fresh;
mod held;
mod permissions;
mod plan;
mod remove;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;
use shoal_shared::appspec::{AppSpec, FileExistsBehavior};

use super::layout::{Layout, write_atomically};
use super::walk::{self, FileId, LastDir, WalkError};
pub use error::InstallError;
pub use plan::{Instruction, Plan, bundle_relative};

/// What an install did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// Paths of the previous install that were removed.
    pub removed: usize,
    /// Directories created.
    pub directories: usize,
    /// Files and symlinks installed (copied or kept).
    pub files: usize,
    /// Files of the previous install kept in place: the same bytes, mode and owner.
    pub kept: usize,
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
    let (mut removed, held) = cleanup::replay(&cleanup_file)?;
    let rooted;
    let spec = match layout.files_root() {
        Some(root) => {
            rooted = under_root(spec, root);
            &rooted
        }
        None => spec,
    };
    let plan = match plan::plan(archive, &spec.files, behavior, &held) {
        Ok(plan) => plan,
        Err(e) => {
            held.release_all()?;
            cleanup::forget(&cleanup_file)?;
            return Err(e);
        }
    };
    let (copy_to, mkdirs) = plan.made();
    let (released, held) = held.release(&copy_to, &mkdirs)?;
    removed += released;
    tracing::debug!(elapsed = ?started.elapsed(), removed, steps = plan.instructions.len(), "install planned");
    let installed: Vec<&Path> = plan.installed().collect();
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
    let copied: Vec<&Path> = copies.iter().map(|(_, d)| *d).collect();
    let mut steps: Vec<serde_json::Value> =
        plan.instructions.iter().map(Instruction::to_json).collect();
    steps.extend(permissions::instructions(
        &spec.permissions,
        &installed,
        &copied,
    ));
    let json = serde_json::json!({ "instructions": steps });
    let install_json = layout.install_json(group_id);
    write_atomically(&install_json, json.to_string().as_bytes())
        .map_err(|e| InstallError::io("write", &install_json, e))?;

    let mut record = cleanup::Recorder::create(&cleanup_file)?;
    let mut report = InstallReport {
        removed,
        retained: plan.retained.len(),
        ..InstallReport::default()
    };
    let mut ids = HashMap::new();
    let mut dirs = LastDir::default();
    for instruction in &plan.instructions {
        if let Instruction::Mkdir { directory } = instruction
            && let Some(id) = make_directory(&mut dirs, &ids, directory, held.dir(directory))?
        {
            ids.insert(directory.clone(), id);
            record.path(directory)?;
            report.directories += 1;
        }
    }
    drop(dirs);
    for (_, destination) in &copies {
        record.path(destination)?;
    }
    record.commit()?;
    tracing::debug!(elapsed = ?started.elapsed(), "install recorded");
    let outcome = copy::copy_all(&copies, &ids, &held)?;
    report.bytes = outcome.bytes;
    report.kept = outcome.kept;
    ids.extend(outcome.ids);
    report.files = copies.len();
    tracing::debug!(elapsed = ?started.elapsed(), files = report.files, kept = report.kept, "install copied");

    for path in permissions::apply(&spec.permissions, &installed, &copied, &ids)? {
        record.selinux(&path)?;
    }
    record.finish()?;
    Ok(report)
}

/// Creates `directory` in its safely opened parent; returns its identity when this install
/// made it (or keeps it: `held`, the previous install's), `None` when a directory was already
/// there (made since the plan looked).
fn make_directory(
    dirs: &mut LastDir,
    ids: &HashMap<PathBuf, FileId>,
    directory: &Path,
    held: Option<FileId>,
) -> Result<Option<FileId>, InstallError> {
    let (parent, name) = walk::split(directory).ok_or_else(|| InstallError::Destination {
        destination: directory.display().to_string(),
        why: "it names no directory".to_owned(),
    })?;
    let parent = dirs.open(parent, ids.get(parent).copied())?;
    let created = match nix::sys::stat::mkdirat(parent.fd(), name, Mode::from_bits_truncate(0o777))
    {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(InstallError::io("create directory", directory, e.into())),
    };
    let made = parent.child(name)?;
    if !created && held != Some(made.id()) {
        return Ok(None);
    }
    // Another user's directory swapped in since the mkdir is not ours to fill.
    if made.owner() != nix::unistd::geteuid().as_raw() {
        return Err(WalkError::Replaced {
            path: directory.to_owned(),
        }
        .into());
    }
    Ok(Some(made.id()))
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
