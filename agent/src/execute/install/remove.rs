//! Removing a path of a previous install through its safely opened parent (`walk`): a path
//! whose directory was swapped for a link is left alone, never removed through the link.

use std::ffi::OsStr;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::SFlag;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::error::InstallError;
use crate::execute::walk::{self, Dir, LastDir, WalkError};

/// The safely opened parent of `path` and its name in it; `None` when it is gone or cannot be
/// reached safely (left in place).
pub(super) fn parent<'d, 'p>(
    dirs: &'d mut LastDir,
    path: &'p Path,
) -> Result<Option<(&'d Dir, &'p OsStr)>, InstallError> {
    let Some((parent, name)) = walk::split(path) else {
        return Ok(None);
    };
    match dirs.open(parent, None) {
        Ok(dir) => Ok(Some((dir, name))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e @ WalkError::Io { .. }) => Err(e.into()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "left in place by the cleanup");
            Ok(None)
        }
    }
}

/// Removes `path` (a directory only when empty) through its safely opened parent; returns
/// whether it was there to remove.
pub(super) fn remove(dirs: &mut LastDir, path: &Path) -> Result<bool, InstallError> {
    let Some((dir, name)) = parent(dirs, path)? else {
        return Ok(false);
    };
    match dir.lstat(name) {
        Ok(stat) => unlink(dir, name, walk::kind(&stat), path),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(InstallError::io("inspect", path, e.into())),
    }
}

/// Unlinks entry `name` of `dir`, seen as `kind`.
pub(super) fn unlink(
    dir: &Dir,
    name: &OsStr,
    kind: SFlag,
    path: &Path,
) -> Result<bool, InstallError> {
    let flag = match kind {
        SFlag::S_IFDIR => UnlinkatFlags::RemoveDir,
        _ => UnlinkatFlags::NoRemoveDir,
    };
    match unlinkat(dir.fd(), name, flag) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => Ok(false),
        // Swapped between the look and the unlink: left for the next cleanup.
        Err(Errno::EISDIR | Errno::ENOTDIR) => Ok(false),
        Err(e) => Err(InstallError::io("remove", path, e.into())),
    }
}
