//! Directory bundles: copy regular files, directories and symlinks (as symlinks) with the same
//! refusals as archives.

use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::BundleError;
use super::staging::Staging;
use super::write::{Data, Meta};

/// Copies the tree under `bundle` into `staging`, in name order, without following symlinks.
pub(super) fn copy(bundle: &Path, staging: &mut Staging) -> Result<(), BundleError> {
    let mut pending = vec![PathBuf::new()];
    while let Some(rel_dir) = pending.pop() {
        let dir = bundle.join(&rel_dir);
        let mut children = fs::read_dir(&dir)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .map_err(BundleError::io("read the directory", &dir))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let rel = rel_dir.join(child.file_name());
            let path = child.path();
            let name = rel.to_string_lossy().into_owned();
            staging.count_entry(&name)?;
            // `DirEntry::metadata` does not follow symlinks.
            let meta = child
                .metadata()
                .map_err(BundleError::io("inspect", &path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                staging.add_dir(rel.clone(), &name, entry_meta(&meta))?;
                pending.push(rel);
            } else if kind.is_file() {
                staging.reserve(&name, meta.len())?;
                let data = Data::Copy {
                    src: path,
                    len: meta.len(),
                };
                let owner = staging.kept_owner(meta.uid(), meta.gid());
                let meta = Meta {
                    owner,
                    ..entry_meta(&meta)
                };
                staging.add_file(rel, &name, meta, data)?;
            } else if kind.is_symlink() {
                let target =
                    fs::read_link(&path).map_err(BundleError::io("read the link", &path))?;
                let mtime = meta.modified().ok();
                staging.add_symlink(rel, &name, target.as_os_str().as_bytes(), mtime)?;
            } else {
                let what = if kind.is_char_device() {
                    "character device"
                } else if kind.is_block_device() {
                    "block device"
                } else if kind.is_fifo() {
                    "fifo"
                } else {
                    "socket"
                };
                return Err(BundleError::SpecialFile { entry: name, what });
            }
        }
    }
    Ok(())
}

fn entry_meta(meta: &Metadata) -> Meta {
    Meta {
        mode: meta.permissions().mode() & 0o7777,
        mtime: meta.modified().ok(),
        owner: None,
    }
}
