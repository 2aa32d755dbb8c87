//! The git channel's one error type: what could not be done to which repository (never a
//! refusal of a release, except when materialising one), with credentials kept out of every
//! message.

use std::io;
use std::path::PathBuf;

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

/// The cause of a git failure as libgit2 (or the file system) told it, with any credential
/// removed from the text.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Cause {
    message: String,
    /// libgit2's error code, when the cause came from libgit2.
    pub code: Option<git2::ErrorCode>,
}

impl Cause {
    /// A libgit2 error, with `secrets` (a token, a url's password) blanked out of its text.
    pub fn git(error: &git2::Error, secrets: &[&str]) -> Self {
        Self {
            message: redact(error.message(), secrets),
            code: Some(error.code()),
        }
    }

    /// An I/O error.
    pub fn io(error: &io::Error) -> Self {
        Self {
            message: error.to_string(),
            code: None,
        }
    }
}

/// Replaces each non-empty secret in `text` with `***`.
pub(super) fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_never_carry_secrets() {
        let error = git2::Error::from_str("auth failed for https://bot:s3cret@host/r.git");
        let cause = Cause::git(&error, &["s3cret", ""]);
        assert_eq!(
            cause.to_string(),
            "auth failed for https://bot:***@host/r.git"
        );
        assert!(!format!("{cause:?}").contains("s3cret"));
    }
}
