//! The one error type of bundle unpacking: a distinct variant per refusal, plus I/O.

use std::io;
use std::path::PathBuf;

/// Why a bundle could not be unpacked.
///
/// Refusals (a hostile or malformed entry) are distinct variants; each message names the
/// offending entry and says what is allowed. [`BundleError::kind`] is a stable string for status
/// JSON and metric labels.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "bundle {path} is not a directory, tar, tar.gz or zip archive ({reason}); \
         give a directory or a .tar, .tar.gz/.tgz or .zip file"
    )]
    UnsupportedFormat { path: PathBuf, reason: String },

    #[error(
        "destination {path} already exists and is not an empty directory; \
         bundles unpack only into a new or empty directory"
    )]
    DestinationNotEmpty { path: PathBuf },

    #[error(
        "destination {path} lies inside the directory bundle {bundle}; \
         unpack a directory bundle to a place outside it"
    )]
    DestinationInsideBundle { path: PathBuf, bundle: PathBuf },

    #[error(
        "entry {entry} has an absolute path; bundle entries must be relative to the bundle root"
    )]
    AbsolutePath { entry: String },

    #[error("entry {entry} has a `..` component; bundle entries must stay inside the bundle root")]
    ParentDir { entry: String },

    #[error(
        "hard link {entry} points to {target}, which is not a file earlier in the bundle; \
         hard links must point to a file or symlink that comes before them"
    )]
    HardLinkTarget { entry: String, target: String },

    #[error(
        "entry {entry} is a {what}; bundles may hold only regular files, directories and symlinks"
    )]
    SpecialFile { entry: String, what: &'static str },

    #[error(
        "entry {entry} has unknown entry type {what}; \
         bundles may hold only regular files, directories and links"
    )]
    UnknownEntryType { entry: String, what: String },

    #[error(
        "entry {entry} lies under {parent}, which is a {what}, not a directory; \
         entries may only be placed inside real directories of the bundle"
    )]
    ThroughNonDirectory {
        entry: String,
        parent: String,
        what: &'static str,
    },

    #[error(
        "entry {entry} would replace a directory of the same name; \
         only a file or symlink may be replaced by a later entry"
    )]
    ReplacesDirectory { entry: String },

    #[error(
        "bundle is larger than the limit of {limit} bytes uncompressed (reached at entry {entry}); \
         raise the limit or make the bundle smaller"
    )]
    TooLarge { entry: String, limit: u64 },

    #[error(
        "bundle has more than the limit of {limit} entries (reached at entry {entry}); \
         raise the limit or make the bundle smaller"
    )]
    TooManyEntries { entry: String, limit: u64 },

    #[error(
        "bundle's {record} at byte {offset} holds {size} bytes, more than the {limit} it may; \
         tar, git archive and shoal release package write far smaller ones"
    )]
    RecordTooLarge {
        record: &'static str,
        offset: u64,
        size: u64,
        limit: u64,
    },

    #[error(
        "entry {entry} gives its size as {pax} bytes in a pax header and {header} in its tar \
         header; shoal reads sizes (up to 8 GiB) from the tar header and refuses archives that \
         disagree with themselves"
    )]
    PaxSize {
        entry: String,
        pax: String,
        header: u64,
    },

    #[error("cannot read bundle {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl BundleError {
    /// A stable, machine-readable name for the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat { .. } => "unsupported-format",
            Self::DestinationNotEmpty { .. } => "destination-not-empty",
            Self::DestinationInsideBundle { .. } => "destination-inside-bundle",
            Self::AbsolutePath { .. } => "absolute-path",
            Self::ParentDir { .. } => "parent-dir",
            Self::HardLinkTarget { .. } => "hard-link-target",
            Self::SpecialFile { .. } => "special-file",
            Self::UnknownEntryType { .. } => "unknown-entry-type",
            Self::ThroughNonDirectory { .. } => "through-non-directory",
            Self::ReplacesDirectory { .. } => "replaces-directory",
            Self::TooLarge { .. } => "too-large",
            Self::TooManyEntries { .. } => "too-many-entries",
            Self::RecordTooLarge { .. } => "record-too-large",
            Self::PaxSize { .. } => "pax-size",
            Self::Archive { .. } => "corrupt-archive",
            Self::Io { .. } => "io",
        }
    }

    /// The archive entry this error is about, when it is about one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::AbsolutePath { entry }
            | Self::ParentDir { entry }
            | Self::HardLinkTarget { entry, .. }
            | Self::SpecialFile { entry, .. }
            | Self::UnknownEntryType { entry, .. }
            | Self::ThroughNonDirectory { entry, .. }
            | Self::ReplacesDirectory { entry }
            | Self::TooLarge { entry, .. }
            | Self::TooManyEntries { entry, .. }
            | Self::PaxSize { entry, .. } => Some(entry),
            Self::UnsupportedFormat { .. }
            | Self::DestinationNotEmpty { .. }
            | Self::DestinationInsideBundle { .. }
            | Self::RecordTooLarge { .. }
            | Self::Archive { .. }
            | Self::Io { .. } => None,
        }
    }

    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    pub(super) fn archive(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Archive { path, source }
    }
}
