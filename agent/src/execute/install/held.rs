//! What the previous install made that a redeployment may keep where it is.
//!
//! The CodeDeploy agent removes every path of the previous install and copies the bundle again,
//! so an unchanged file is written a third time (bundle, archive, install) and its blocks freed
//! and allocated again. Instead the cleanup holds back:
//! - a regular file of the previous install with one link whose inode has not changed since that
//!   install ended (no write, chmod, chown or xattr since), and
//! - a directory of it that holds nothing but held entries.
//!
//! The plan treats held paths as already removed. Then `release` removes every held path the
//! new install does not make again, in the cleanup's order, before anything is written, so what
//! is on disk is what the cleanup would have left. A held file the new install copies is kept
//! in place only when it is exactly what the copy would write (`copy` checks content, mode,
//! owner and extended attributes); otherwise it is replaced as any existing file is.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;
use nix::unistd::{Gid, Uid};
use xattr::FileExt as _;

use super::cleanup;
use super::error::InstallError;
use super::plan::{Instruction, Plan};
use crate::execute::walk::{Dir, FileId, LastDir};

/// Paths held back from the cleanup.
#[derive(Debug, Default)]
pub(super) struct Held {
    files: HashMap<PathBuf, FileId>,
    dirs: HashMap<PathBuf, FileId>,
    /// Both, in the order the cleanup would have removed them.
    order: Vec<PathBuf>,
}

impl Held {
    pub(super) fn hold_file(&mut self, path: &Path, id: FileId) {
        self.files.insert(path.to_owned(), id);
        self.order.push(path.to_owned());
    }

    pub(super) fn hold_dir(&mut self, path: &Path, id: FileId) {
        self.dirs.insert(path.to_owned(), id);
        self.order.push(path.to_owned());
    }

    /// Whether `path` is held (the plan sees it as removed).
    pub(super) fn contains(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.dirs.contains_key(path)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The held regular file at `path`.
    pub(super) fn file(&self, path: &Path) -> Option<FileId> {
        self.files.get(path).copied()
    }

    /// The held directory at `path`.
    pub(super) fn dir(&self, path: &Path) -> Option<FileId> {
        self.dirs.get(path).copied()
    }

    /// Removes what `plan` does not make again: a held file it does not copy to, a held
    /// directory it does not create. Returns how many paths were removed, and what stays held.
    pub(super) fn release(self, plan: &Plan) -> Result<(usize, Held), InstallError> {
        let mut copies = HashSet::new();
        let mut mkdirs = HashSet::new();
        for instruction in &plan.instructions {
            match instruction {
                Instruction::Copy { destination, .. } => copies.insert(destination.as_path()),
                Instruction::Mkdir { directory } => mkdirs.insert(directory.as_path()),
            };
        }
        let mut removed = 0;
        let mut kept = Held::default();
        let mut dirs = LastDir::default();
        for path in &self.order {
            if let Some(id) = self.file(path)
                && copies.contains(path.as_path())
            {
                kept.hold_file(path, id);
            } else if let Some(id) = self.dir(path)
                && mkdirs.contains(path.as_path())
            {
                kept.hold_dir(path, id);
            } else if cleanup::remove(&mut dirs, path)? {
                removed += 1;
            }
        }
        Ok((removed, kept))
    }

    /// Removes what is held under directory `dir`, which itself cannot be held.
    pub(super) fn release_under(&mut self, dir: &Path) -> Result<usize, InstallError> {
        let (under, rest) = std::mem::take(&mut self.order)
            .into_iter()
            .partition::<Vec<_>, _>(|p| p.starts_with(dir) && p != dir);
        self.order = rest;
        let mut removed = 0;
        let mut dirs = LastDir::default();
        for path in under {
            self.files.remove(&path);
            self.dirs.remove(&path);
            if cleanup::remove(&mut dirs, &path)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes everything held (the install stopped before writing anything).
    pub(super) fn release_all(self) -> Result<usize, InstallError> {
        self.release(&Plan::default()).map(|(removed, _)| removed)
    }
}

/// The owner of what `me` makes in directory `parent`: its own, with the group of a setgid
/// directory.
pub(super) fn new_owner(parent: &FileStat, me: (Uid, Gid)) -> (Uid, Gid) {
    if parent.st_mode & 0o2000 != 0 {
        (me.0, Gid::from_raw(parent.st_gid))
    } else {
        me
    }
}

/// Whether `file` has no extended attributes (a filesystem without them has none).
pub(super) fn no_xattrs(file: &File) -> bool {
    match file.list_xattr() {
        Ok(mut names) => names.next().is_none(),
        Err(e) => e.raw_os_error() == Some(nix::libc::EOPNOTSUPP),
    }
}

/// Whether directory `dir` has a default ACL, which what is made in it inherits (or it
/// cannot be told).
pub(super) fn default_acl(dir: &Dir) -> bool {
    let Ok(fd) = dir.fd().try_clone_to_owned() else {
        return true;
    };
    match File::from(fd).get_xattr("system.posix_acl_default") {
        Ok(found) => found.is_some(),
        Err(e) => e.raw_os_error() != Some(nix::libc::EOPNOTSUPP),
    }
}
