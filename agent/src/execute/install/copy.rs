//! Copying planned files from the archive onto the host: regular files keep their mode and
//! modification time, symlinks stay symlinks, existing files are replaced by rename (so a
//! running binary is never truncated), and the work is spread over a few threads, a directory
//! to one thread at a time.
//!
//! Every file is created in its safely opened parent directory (`walk`) with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing is ever written through a link. A file the previous
//! install made and the cleanup held back (`held`) is left in place when it already is what the
//! copy would write.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt as _, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, getegid, geteuid, symlinkat, unlinkat};

use super::error::InstallError;
use super::fresh::{self, umask};
use super::held::Held;
use crate::execute::walk::{self, Dir, FileId, LastDir, WalkError};

/// Each copying thread's buffer.
const BUFFER: usize = 256 * 1024;

/// What `copy_all` did.
pub(super) struct Copied {
    /// Bytes written.
    pub(super) bytes: u64,
    /// Held files left in place.
    pub(super) kept: usize,
    /// The identity of every file installed.
    pub(super) ids: Vec<(PathBuf, FileId)>,
}

/// Copies every `(source, destination)` pair, each into a parent that, where this install
/// created it, must still be the directory `dirs` names; a `held` file already the same is
/// kept instead.
pub(super) fn copy_all(
    copies: &[(&Path, &Path)],
    dirs: &HashMap<PathBuf, FileId>,
    held: &Held,
) -> Result<Copied, InstallError> {
    // Each thread takes a whole directory's files at a time: two threads creating files in
    // one directory wait on its lock and on each other's journal handles (on ext4, right after
    // a cleanup removed thousands of files, two threads on one directory took 3x the time of
    // one thread).
    let batches = by_directory(copies);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(batches.len().max(1));
    // Who copies: asked once, not per file.
    let me = (geteuid(), getegid());
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let kept = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let created = Mutex::new(Vec::with_capacity(copies.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut buffer = vec![0u8; BUFFER];
                let mut parents = LastDir::default();
                let mut mine = Vec::new();
                'batches: while !failed.load(Ordering::Relaxed) {
                    let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    for (source, destination) in *batch {
                        let was = held.file(destination);
                        let result = into_parent(&mut parents, dirs, destination).and_then(
                            |(parent, name)| copy_one(parent, source, name, was, me, &mut buffer),
                        );
                        match result {
                            Ok(Outcome::Written(n, id)) => {
                                bytes.fetch_add(n, Ordering::Relaxed);
                                mine.push((destination.to_path_buf(), id));
                            }
                            Ok(Outcome::Kept(id)) => {
                                kept.fetch_add(1, Ordering::Relaxed);
                                mine.push((destination.to_path_buf(), id));
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                first_error
                                    .lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .get_or_insert(e);
                                break 'batches;
                            }
                        }
                    }
                }
                created
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .append(&mut mine);
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(error) => Err(error),
        None => Ok(Copied {
            bytes: bytes.into_inner(),
            kept: kept.into_inner(),
            ids: created.into_inner().unwrap_or_else(|p| p.into_inner()),
        }),
    }
}

/// `copies` cut into runs that share a destination directory (the plan lists a directory's
/// files together).
fn by_directory<'c, 'p>(copies: &'c [(&'p Path, &'p Path)]) -> Vec<&'c [(&'p Path, &'p Path)]> {
    copies
        .chunk_by(|(_, a), (_, b)| a.parent() == b.parent())
        .collect()
}

/// The safely opened parent of `destination`, and its name in it.
fn into_parent<'d, 'p>(
    parents: &'d mut LastDir,
    dirs: &HashMap<PathBuf, FileId>,
    destination: &'p Path,
) -> Result<(&'d Dir, &'p OsStr), InstallError> {
    let (parent, name) = walk::split(destination).ok_or_else(|| InstallError::Destination {
        destination: destination.display().to_string(),
        why: "it names no file".to_owned(),
    })?;
    Ok((parents.open(parent, dirs.get(parent).copied())?, name))
}

/// What became of one copy.
enum Outcome {
    /// Bytes written to a new file.
    Written(u64, FileId),
    /// The held file was already the same.
    Kept(FileId),
}

/// Copies `source` to entry `name` of `dir`, unless `held` (the previous install's file there)
/// already is the same.
fn copy_one(
    dir: &Dir,
    source: &Path,
    name: &OsStr,
    held: Option<FileId>,
    me: (Uid, Gid),
    buffer: &mut [u8],
) -> Result<Outcome, InstallError> {
    let destination = dir.join(name);
    let meta = fs::symlink_metadata(source).map_err(|e| InstallError::io("read", source, e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(source).map_err(|e| InstallError::io("read link", source, e))?;
        replace_with(dir, name, |at| {
            symlinkat(target.as_path(), dir.fd(), at).map_err(io::Error::from)
        })?;
        // Made by root: a link someone else put in its place since is theirs, not ours.
        let stat = dir
            .lstat(name)
            .map_err(|e| InstallError::io("inspect", &destination, e.into()))?;
        if walk::kind(&stat) != SFlag::S_IFLNK || stat.st_uid != me.0.as_raw() {
            return Err(WalkError::Replaced { path: destination }.into());
        }
        return Ok(Outcome::Written(0, FileId::of(&stat)));
    }
    if !meta.is_file() {
        return Err(InstallError::Source {
            source_path: source.display().to_string(),
            why: "only regular files, directories and symlinks can be installed".to_owned(),
        });
    }
    let from = File::open(source).map_err(|e| InstallError::io("read", source, e))?;
    if let Some(id) = held
        && unchanged(dir, name, id, &from, &meta, me, buffer)
    {
        return Ok(Outcome::Kept(id));
    }
    let mode = meta.mode() & 0o7777;
    let mut copied = 0;
    let id = replace_with(dir, name, |at| {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let to = File::from(openat(dir.fd(), at, flags, Mode::from_bits_truncate(mode))?);
        copied = copy_bytes(&from, &to, buffer)?;
        // The archive's owner, as root gave it at unpack (`cp -p`); before the mode, since a
        // change of owner clears setuid and setgid.
        if let Some((uid, gid)) = given_away(&meta, me) {
            fchown(&to, Some(uid), Some(gid))?;
        }
        if mode & (umask() | 0o7000) != 0 {
            to.set_permissions(meta.permissions())?;
        }
        to.set_modified(meta.modified()?)?;
        Ok(FileId::of(&nix::sys::stat::fstat(&to)?))
    })?;
    Ok(Outcome::Written(copied, id))
}

/// Whether entry `name` of `dir`, still the held file `id`, is what copying `from` (`meta`)
/// would make: the same length, bytes, mode and owner, no extended attributes, in a directory
/// without a default ACL (which a new file would inherit). Its modification time is then set
/// to the source's, as a copy's would be. Any doubt (an error included) means "copy it".
fn unchanged(
    dir: &Dir,
    name: &OsStr,
    id: FileId,
    from: &File,
    meta: &fs::Metadata,
    me: (Uid, Gid),
    buffer: &mut [u8],
) -> bool {
    let Ok((file, stat)) = dir.open_entry(name) else {
        return false;
    };
    let Ok(parent) = nix::sys::stat::fstat(dir.fd()) else {
        return false;
    };
    let (uid, gid) = given_away(meta, me).unwrap_or_else(|| fresh::new_owner(&parent, me));
    let same_inode = FileId::of(&stat) == id
        && walk::kind(&stat) == SFlag::S_IFREG
        && stat.st_nlink == 1
        && u64::try_from(stat.st_size).is_ok_and(|size| size == meta.len())
        && stat.st_mode & 0o7777 == meta.mode() & 0o7777
        && (stat.st_uid, stat.st_gid) == (uid.as_raw(), gid.as_raw());
    if !same_inode
        || !fresh::no_xattrs(&file)
        || fresh::default_acl(dir)
        || !same_bytes(from, &file, meta.len(), buffer)
    {
        return false;
    }
    match meta.modified() {
        Ok(modified) if file.metadata().and_then(|m| m.modified()).ok() == Some(modified) => true,
        Ok(modified) => file.set_modified(modified).is_ok(),
        Err(_) => false,
    }
}

/// Whether the first `len` bytes of `a` and `b` are the same (read at offsets, so `a` is left
/// where it was for a copy), through the two halves of `buffer`.
fn same_bytes(a: &File, b: &File, len: u64, buffer: &mut [u8]) -> bool {
    let (left, right) = buffer.split_at_mut(buffer.len() / 2);
    let mut offset = 0;
    while offset < len {
        let n = usize::try_from(len - offset).map_or(left.len(), |rest| rest.min(left.len()));
        if a.read_exact_at(&mut left[..n], offset).is_err()
            || b.read_exact_at(&mut right[..n], offset).is_err()
            || left[..n] != right[..n]
        {
            return false;
        }
        offset += n as u64;
    }
    // Nothing past the end either.
    matches!(b.read_at(&mut right[..1], len), Ok(0))
}

/// The owner to give a copy of the archive file `meta` describes: its own, when the copier
/// `me` is root and the file is not the copier's.
fn given_away(meta: &fs::Metadata, (my_uid, my_gid): (Uid, Gid)) -> Option<(Uid, Gid)> {
    let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
    (my_uid.is_root() && (uid != my_uid || gid != my_gid)).then_some((uid, gid))
}

/// Copies the file's bytes through `buffer`. Measured against `copy_file_range` on freshly
/// unpacked files, this is faster on ext4 and twice as fast on XFS, where the kernel's reflink
/// first has to flush the source's delayed allocations.
fn copy_bytes(mut from: &File, mut to: &File, buffer: &mut [u8]) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buffer[..n])?;
        copied += n as u64;
    }
}

/// Creates entry `name` of `dir` with `create`; when something is already there, creates a
/// sibling and renames it over, so the old file stays whole until the new one is complete.
fn replace_with<T>(
    dir: &Dir,
    name: &OsStr,
    mut create: impl FnMut(&OsStr) -> io::Result<T>,
) -> Result<T, InstallError> {
    match create(name) {
        Ok(made) => return Ok(made),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(InstallError::io("write", &dir.join(name), e)),
    }
    let staging = staging_name(name);
    let remove_staging = || unlinkat(dir.fd(), staging.as_os_str(), UnlinkatFlags::NoRemoveDir);
    let _ = remove_staging();
    create(&staging)
        .and_then(|made| {
            renameat(dir.fd(), staging.as_os_str(), dir.fd(), name)?;
            Ok(made)
        })
        .map_err(|e| {
            let _ = remove_staging();
            InstallError::io("replace", &dir.join(name), e)
        })
}

fn staging_name(name: &OsStr) -> OsString {
    let mut staging = OsString::from(".");
    staging.push(name);
    staging.push(".shoal-new");
    staging
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn copies_keep_content_mode_and_mtime_and_replace_by_rename() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        fs::create_dir_all(&src).expect("mkdir");
        fs::create_dir_all(&dst).expect("mkdir");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut pairs = Vec::new();
        for (name, mode, size) in [
            ("ro", 0o444, 10),
            ("exec", 0o755, 70_000),
            ("sgid", 0o2750, 0),
            ("open", 0o666, 3),
        ] {
            let path = src.join(name);
            fs::write(&path, vec![b'x'; size]).expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(old))
                .ok();
            pairs.push((path, dst.join(name), mode, size));
        }
        fs::write(dst.join("exec"), "old binary").expect("write");
        let old_inode = fs::metadata(dst.join("exec")).expect("meta").ino();
        let copies: Vec<(&Path, &Path)> = pairs
            .iter()
            .map(|(s, d, ..)| (s.as_path(), d.as_path()))
            .collect();
        let copied = copy_all(&copies, &HashMap::new(), &Held::default()).expect("copy");
        assert_eq!(copied.bytes, 70_013);
        assert_eq!(copied.kept, 0);
        let created = copied.ids;
        for (destination, id) in &created {
            let meta = fs::symlink_metadata(destination).expect("copied");
            assert_eq!(
                (id.dev, id.ino),
                (meta.dev(), meta.ino()),
                "the identity of {}",
                destination.display()
            );
        }
        assert_eq!(created.len(), pairs.len());
        for (_, destination, mode, size) in &pairs {
            let meta = fs::metadata(destination).expect("copied");
            assert_eq!(
                meta.permissions().mode() & 0o7777,
                *mode,
                "{}",
                destination.display()
            );
            assert_eq!(meta.len(), *size as u64);
            assert_eq!(meta.modified().expect("mtime"), old);
        }
        assert_ne!(
            fs::metadata(dst.join("exec")).expect("meta").ino(),
            old_inode,
            "replaced, not rewritten in place"
        );
        assert!(!dst.join(".exec.shoal-new").exists());
    }
}
