//! Copying planned files from the archive onto the host: regular files keep their mode and
//! modification time, symlinks stay symlinks, existing files are replaced by rename (so a
//! running binary is never truncated), and the work is spread over a few threads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::InstallError;

/// Copies every `(source, destination)` pair; returns the bytes copied.
pub(super) fn copy_all(copies: &[(&Path, &Path)]) -> Result<u64, InstallError> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(copies.len().max(1));
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some((source, destination)) =
                        copies.get(next.fetch_add(1, Ordering::Relaxed))
                    else {
                        break;
                    };
                    match copy_one(source, destination) {
                        Ok(n) => {
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(error) => Err(error),
        None => Ok(bytes.into_inner()),
    }
}

fn copy_one(source: &Path, destination: &Path) -> Result<u64, InstallError> {
    let meta = fs::symlink_metadata(source).map_err(|e| InstallError::io("read", source, e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(source).map_err(|e| InstallError::io("read link", source, e))?;
        return replace_with(destination, |path| symlink(&target, path)).map(|()| 0);
    }
    if !meta.is_file() {
        return Err(InstallError::Source {
            source_path: source.display().to_string(),
            why: "only regular files, directories and symlinks can be installed".to_owned(),
        });
    }
    let mut from = File::open(source).map_err(|e| InstallError::io("read", source, e))?;
    let mut copied = 0;
    replace_with(destination, |path| {
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        copied = io::copy(&mut from, &mut to)?;
        to.set_permissions(meta.permissions())?;
        to.set_modified(meta.modified()?)
    })?;
    Ok(copied)
}

/// Creates `destination` with `create`; when something is already there, creates a sibling
/// and renames it over, so the old file stays whole until the new one is complete.
fn replace_with(
    destination: &Path,
    mut create: impl FnMut(&Path) -> io::Result<()>,
) -> Result<(), InstallError> {
    match create(destination) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(InstallError::io("write", destination, e)),
    }
    let staging = staging_path(destination);
    let _ = fs::remove_file(&staging);
    create(&staging)
        .and_then(|()| fs::rename(&staging, destination))
        .map_err(|e| {
            let _ = fs::remove_file(&staging);
            InstallError::io("replace", destination, e)
        })
}

fn staging_path(destination: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(destination.file_name().unwrap_or_default());
    name.push(".shoal-new");
    destination.with_file_name(name)
}
