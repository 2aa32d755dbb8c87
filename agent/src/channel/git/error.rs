//! The git channel's one error type: what could not be done to which repository (never a
//! refusal of a release, except when materialising one), with credentials kept out of every
//! message.

use std::io;
use std::path::PathBuf;

use super::cause::Cause;
use super::failure::FetchError;
use crate::verify::Refusal;
use crate::verify::state::StateError;

/// Why the git channel could not do its work. Refusals of releases are [`Refusal`]s in a poll;
/// only [`GitError::Refused`] carries one, when a verified release's tree is refused on export.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The local mirror could not be created, opened or locked.
    #[error(
        "cannot {action} the mirror of {url} at {}; check that the data directory is writable, or delete the mirror to fetch it afresh",
        path.display()
    )]
    Mirror {
        /// What was being done.
        action: &'static str,
        /// The repository (credentials removed).
        url: String,
        /// The mirror's directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Cause,
    },
    /// Fetching tags failed: the cause says which of the network, a timeout, a host key, a
    /// key, a token or a certificate, and the fix.
    #[error("cannot fetch tags from {url}")]
    Fetch {
        /// The repository (credentials removed).
        url: String,
        /// The cause.
        #[source]
        source: FetchError,
    },
    /// An object or ref of the mirror could not be read.
    #[error(
        "cannot read {what} from the mirror of {url} at {}; delete the mirror to fetch it afresh",
        path.display()
    )]
    Read {
        /// What was being read, e.g. `tag v1.2.0`.
        what: String,
        /// The repository (credentials removed).
        url: String,
        /// The mirror's directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Cause,
    },
    /// The channel state (floor, seen tags) could not be saved.
    #[error("cannot record what the channel of {url} has seen")]
    State {
        /// The repository (credentials removed).
        url: String,
        /// The cause.
        #[source]
        source: StateError,
    },
    /// Writing a release's files into the cache failed.
    #[error(
        "cannot export commit {commit} of {url} into the release cache at {}; check free space and permissions there",
        path.display()
    )]
    Export {
        /// The commit.
        commit: String,
        /// The repository (credentials removed).
        url: String,
        /// Where it was being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The release's tree is refused (links escaping it, limits, …).
    #[error("release {version} of {url} is refused")]
    Refused {
        /// The tag.
        version: String,
        /// The repository (credentials removed).
        url: String,
        /// Why (boxed: refusals are large, and rare here).
        #[source]
        refusal: Box<Refusal>,
    },
    /// The release did not come from a git channel.
    #[error(
        "release {version} has digest {digest}, not a git commit; materialise it from the channel it came from"
    )]
    NotGit {
        /// The release.
        version: String,
        /// Its digest.
        digest: String,
    },
}

impl GitError {
    /// A stable name for status JSON and metric labels; a refused tree gives the refusal's own.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mirror { .. } => "git_mirror",
            Self::Fetch { source, .. } => source.kind(),
            Self::Read { .. } => "git_read",
            Self::State { .. } => "channel_state",
            Self::Export { .. } => "git_export",
            Self::Refused { refusal, .. } => refusal.kind(),
            Self::NotGit { .. } => "not_a_git_release",
        }
    }
}
