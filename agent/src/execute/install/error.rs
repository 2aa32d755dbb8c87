//! Why the Install event failed: one error for the plan, the copies, the cleanup file and the
//! permissions, with a stable [`InstallError::kind`] for status and metrics.

use std::path::{Path, PathBuf};

use crate::execute::walk::WalkError;

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
    /// A path could not be reached safely, or was replaced while installing.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// This host does not label files with SELinux.
    #[error(
        "cannot set the SELinux context of {}: this host does not label files with SELinux \
         (the file has no `security.selinux` attribute)",
        path.display()
    )]
    NoSelinux {
        /// The file.
        path: PathBuf,
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
            Self::Walk(WalkError::Replaced { .. }) => "replaced",
            Self::Walk(WalkError::Io { .. }) => "io",
            Self::Walk(_) => "unsafe-path",
            Self::NoSelinux { .. } => "no-selinux",
            Self::Io { .. } => "io",
        }
    }
}
