//! Unpacking a bundle (a directory, or a tar, tar.gz or zip archive) into a fresh
//! `deployment-archive` directory, refusing entries that could write outside it.
//!
//! The work happens in a sibling `<dest>.partial` directory that is renamed into place only
//! when everything succeeded, so a failed unpack never leaves something that looks complete.

mod detect;
mod dir;
mod error;
mod inside;
mod paths;
mod staging;
mod tar;
mod write;
mod zip;

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use detect::detect;
pub use error::BundleError;
pub use inside::{Outside, inside};
use staging::{Staged, Staging};
use write::Meta;

/// What a bundle is, as [`detect`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Directory,
    Tar,
    TarGz,
    Zip,
}

impl BundleKind {
    /// The CodeDeploy `BundleType` name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Tar => "tar",
            Self::TarGz => "tgz",
            Self::Zip => "zip",
        }
    }
}

impl std::fmt::Display for BundleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AppSpec names looked for in a bundle, in order: the `appspec_names` every caller gives
/// [`unpack`], and where a deployment reads its AppSpec.
pub const APPSPEC_NAMES: [&str; 2] = ["appspec.yml", "appspec.yaml"];

/// Bounds on what one bundle may unpack to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file contents, uncompressed.
    pub max_total_bytes: u64,
    /// Entries of every type: files, directories and links.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 8 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// Whose files an unpack creates when root runs it (otherwise every file is the unpacker's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Owners {
    /// A tar's regular files get the owner and group the archive records, by name when this
    /// host knows the name, else by number, as `tar -xp` run by root gives them (and the
    /// CodeDeploy agent does). Everything else is root's: directories, links, a zip's files
    /// and a directory bundle's.
    #[default]
    Recorded,
    /// As `Recorded`, and a directory bundle's regular files keep their owners: for copying a
    /// tree an earlier unpack made, such as the agent's release cache.
    Kept,
}

/// What [`unpack`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub kind: BundleKind,
    /// Entries created other than directories: regular files, symlinks and hard links.
    pub files: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// The single top-level directory whose contents became the root, if one was stripped.
    pub stripped_prefix: Option<String>,
}

/// Unpacks `bundle` into `dest`, which must not exist or be an empty directory.
///
/// When the bundle's root holds a single directory that contains one of `appspec_names` (and
/// the root holds none), that directory's contents become `dest` (GitHub tarballs look like
/// this). Modes and mtimes are kept, owners as `owners` says. On error nothing is left at
/// `dest`.
pub fn unpack(
    bundle: &Path,
    dest: &Path,
    appspec_names: &[&str],
    limits: &Limits,
    owners: Owners,
) -> Result<Unpacked, BundleError> {
    let kind = detect(bundle)?;
    check_dest(dest)?;
    if kind == BundleKind::Directory {
        check_outside(bundle, dest)?;
    }
    let partial = partial_path(dest)?;
    remove_leftover(&partial)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(BundleError::io("create the directory", parent))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(BundleError::io("create the directory", &partial))?;

    let result = stage(kind, bundle, &partial, appspec_names, limits, owners)
        .and_then(|staged| install(staged, &partial, dest));
    match result {
        Ok(staged) => {
            tracing::info!(
                bundle.path = %bundle.display(),
                bundle.kind = %kind,
                files = staged.files,
                bytes = staged.bytes,
                stripped_prefix = staged.stripped_prefix.as_deref(),
                "bundle unpacked"
            );
            Ok(Unpacked {
                kind,
                files: staged.files,
                bytes: staged.bytes,
                stripped_prefix: staged.stripped_prefix,
            })
        }
        Err(err) => {
            if let Err(e) = fs::remove_dir_all(&partial) {
                tracing::warn!(path = %partial.display(), error = %e, "cannot remove partial unpack");
            }
            Err(err)
        }
    }
}

fn stage(
    kind: BundleKind,
    bundle: &Path,
    partial: &Path,
    appspec_names: &[&str],
    limits: &Limits,
    owners: Owners,
) -> Result<Staged, BundleError> {
    let mut staging = Staging::new(bundle, partial.to_path_buf(), limits, owners);
    match kind {
        BundleKind::Directory => dir::copy(bundle, &mut staging)?,
        BundleKind::Tar => tar::unpack(bundle, &mut staging, false)?,
        BundleKind::TarGz => tar::unpack(bundle, &mut staging, true)?,
        BundleKind::Zip => zip::unpack(bundle, &mut staging)?,
    }
    staging.finish(appspec_names)
}

/// Gives the staged root its final mode and mtime and renames it to `dest`.
fn install(staged: Staged, partial: &Path, dest: &Path) -> Result<Staged, BundleError> {
    let meta = staged.root_meta.unwrap_or(Meta {
        mode: 0o755,
        mtime: None,
        owner: None,
    });
    // A fresh directory has 0o755 less the umask; pass an impossible umask to force the chmod.
    staging::set_dir_meta(&staged.root, meta, 0o7777)?;
    fs::rename(&staged.root, dest).map_err(BundleError::io("move the unpacked bundle to", dest))?;
    if staged.root != partial
        && let Err(e) = fs::remove_dir(partial)
    {
        // The bundle is in place; an empty leftover is removed by the next unpack.
        tracing::warn!(path = %partial.display(), error = %e, "cannot remove staging directory");
    }
    Ok(staged)
}

fn check_dest(dest: &Path) -> Result<(), BundleError> {
    let refuse = || BundleError::DestinationNotEmpty {
        path: dest.to_path_buf(),
    };
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BundleError::io("inspect", dest)(e)),
        Ok(meta) if !meta.is_dir() => Err(refuse()),
        Ok(_) => {
            let mut entries = fs::read_dir(dest).map_err(BundleError::io("read", dest))?;
            if entries.next().is_some() {
                Err(refuse())
            } else {
                Ok(())
            }
        }
    }
}

/// A directory bundle cannot be copied into itself.
fn check_outside(bundle: &Path, dest: &Path) -> Result<(), BundleError> {
    let bundle_real = fs::canonicalize(bundle).map_err(BundleError::io("inspect", bundle))?;
    // `dest` may not exist yet: judge it by its nearest existing ancestor.
    let existing = dest
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let real = fs::canonicalize(existing).map_err(BundleError::io("inspect", existing))?;
    if real.starts_with(&bundle_real) {
        return Err(BundleError::DestinationInsideBundle {
            path: dest.to_path_buf(),
            bundle: bundle.to_path_buf(),
        });
    }
    Ok(())
}

/// The sibling `<dest>.partial` the unpack is staged in.
fn partial_path(dest: &Path) -> Result<PathBuf, BundleError> {
    let Some(name) = dest.file_name() else {
        return Err(BundleError::io("unpack to", dest)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the destination must end in a directory name",
        )));
    };
    let mut partial = OsString::from(name);
    partial.push(".partial");
    Ok(dest.with_file_name(partial))
}

/// Removes a `.partial` directory an interrupted unpack left behind.
fn remove_leftover(partial: &Path) -> Result<(), BundleError> {
    match fs::symlink_metadata(partial) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BundleError::io("inspect", partial)(e)),
        Ok(meta) if meta.is_dir() => {
            fs::remove_dir_all(partial).map_err(BundleError::io("remove", partial))
        }
        Ok(_) => fs::remove_file(partial).map_err(BundleError::io("remove", partial)),
    }
}
