//! The store channel's error: what went wrong talking to the store or the local disk, and the
//! refusals of a release found there. Each message names the url, object or file.

use std::io;
use std::path::PathBuf;

use crate::verify::Refusal;
use crate::verify::state::StateError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store url cannot be used; the reason says what would be accepted.
    #[error("store url `{url}`: {reason}")]
    Url {
        /// The url as given.
        url: String,
        /// What is wrong and the fix.
        reason: String,
    },
    /// The object store client could not be set up from the url and the environment.
    #[error("cannot open the store {url}; check {hint}")]
    Open {
        /// The store url.
        url: String,
        /// Where its settings come from.
        hint: &'static str,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// Listing the store failed.
    #[error("cannot list {url}")]
    List {
        /// What was listed.
        url: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// Reading an object failed.
    #[error("cannot read {url}")]
    Get {
        /// The object.
        url: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// Writing an object failed.
    #[error("cannot write {url}")]
    Put {
        /// The object.
        url: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// An object a release needs is not in the store.
    #[error("{url} does not exist; check the url and the version")]
    Missing {
        /// The object.
        url: String,
    },
    /// `shoal release` of a version that is already there.
    #[error(
        "version {version} already exists in {url}; releases are immutable, publish a new version"
    )]
    AlreadyExists {
        /// The version.
        version: String,
        /// The store url.
        url: String,
    },
    /// `shoal release` of a version whose directory holds an upload that never finished.
    #[error(
        "version {version} exists in {url} without its release.yaml.sig (an interrupted upload?); delete {url}/{version}/ and publish again, or publish a new version"
    )]
    Incomplete {
        /// The version.
        version: String,
        /// The store url.
        url: String,
    },
    /// The release was refused; the refusal says why.
    #[error("release {version} refused: {refusal}")]
    Refused {
        /// The version.
        version: String,
        /// Why.
        refusal: Refusal,
    },
    /// `materialize` of a release this channel did not verify.
    #[error("release {version} was not verified by this channel; poll the channel first")]
    NotVerified {
        /// The version.
        version: String,
    },
    /// The channel's persisted state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A local file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// A stable name for status JSON and metric labels; refusals give their own kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Url { .. } => "bad_url",
            Self::Open { .. } => "store_config",
            Self::List { .. } | Self::Get { .. } | Self::Put { .. } => "store_unavailable",
            Self::Missing { .. } => "missing_object",
            Self::AlreadyExists { .. } => "already_exists",
            Self::Incomplete { .. } => "incomplete_upload",
            Self::Refused { refusal, .. } => refusal.kind(),
            Self::NotVerified { .. } => "not_verified",
            Self::State(_) => "state",
            Self::Io { .. } => "io",
        }
    }

    /// Whether this is a usage or configuration mistake (exit code 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Url { .. } | Self::Open { .. })
    }

    /// The refusal, when the release was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }

    pub(super) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
