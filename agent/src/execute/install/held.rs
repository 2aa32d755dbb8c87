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
use std::path::{Path, PathBuf};

use super::error::InstallError;
use super::remove;
use crate::execute::walk::{FileId, LastDir};

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

    /// Removes what the plan does not make again: a held file it does not copy to (`copies`),
    /// a held directory it does not create (`mkdirs`). Returns how many paths were removed,
    /// and what stays held.
    pub(super) fn release(
        self,
        copies: &HashSet<&Path>,
        mkdirs: &HashSet<&Path>,
    ) -> Result<(usize, Held), InstallError> {
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
            } else if remove::remove(&mut dirs, path)? {
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
            if remove::remove(&mut dirs, &path)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes everything held (the install stopped before writing anything).
    pub(super) fn release_all(self) -> Result<usize, InstallError> {
        self.release(&HashSet::new(), &HashSet::new())
            .map(|(removed, _)| removed)
    }
}
