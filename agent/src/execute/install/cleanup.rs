//! The group's cleanup file: every path an install created, one a line, in creation order, so
//! the next install can remove them in reverse. SELinux records are `semanage\0<path>`.
//! Removal goes through safely opened parents (`walk`): a path whose directory was swapped for
//! a link is left alone, never removed through the link.
//!
//! The file's modification time is when its install ended; the next install holds back what
//! has not changed since (`held`). A new file is written beside it and renamed over once it
//! lists everything the new install will make, so a crash leaves one whole list.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};

use super::error::InstallError;
use super::held::Held;
use super::{fresh, remove};
use crate::execute::walk::{self, Dir, FileId, LastDir};

const SELINUX_PREFIX: &str = "semanage\0";

/// Removes what the previous install recorded, newest first, except what it holds back (see
/// `held`). A last line without a newline (a crash mid-write) is skipped; directories are
/// removed only when empty. Returns how many paths were removed, and what was held. The file
/// stays until the next `Recorder` replaces it, or `forget`.
pub(super) fn replay(cleanup_file: &Path) -> Result<(usize, Held), InstallError> {
    let (bytes, ended) = match read(cleanup_file) {
        Ok(read) => read,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((0, Held::default())),
        Err(e) => return Err(InstallError::io("read", cleanup_file, e)),
    };
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..end],
        None => &[][..],
    };
    let mut removed = 0;
    let mut held = Held::default();
    let mut dirs = LastDir::default();
    for line in complete
        .split(|b| *b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
    {
        if let Some(path) = line.strip_prefix(SELINUX_PREFIX.as_bytes()) {
            remove_selinux_context(Path::new(OsStr::from_bytes(path)));
            continue;
        }
        let path = Path::new(OsStr::from_bytes(line));
        removed += hold_or_remove(&mut dirs, path, ended, &mut held)?;
    }
    Ok((removed, held))
}

/// The cleanup file's bytes and when its install ended.
fn read(cleanup_file: &Path) -> std::io::Result<(Vec<u8>, SystemTime)> {
    let bytes = fs::read(cleanup_file)?;
    let ended = fs::metadata(cleanup_file)?.modified()?;
    Ok((bytes, ended))
}

/// Removes the cleanup file (the install stopped before recording anything new).
pub(super) fn forget(cleanup_file: &Path) -> Result<(), InstallError> {
    match fs::remove_file(cleanup_file) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(InstallError::io("remove", cleanup_file, e))
        }
        _ => Ok(()),
    }
}

/// `remove`, except that a file unchanged since `ended`, and a directory left holding only
/// held paths and as a `mkdir` would make it, are held instead. Returns how many paths were
/// removed.
fn hold_or_remove(
    dirs: &mut LastDir,
    path: &Path,
    ended: SystemTime,
    held: &mut Held,
) -> Result<usize, InstallError> {
    let Some((dir, name)) = remove::parent(dirs, path)? else {
        return Ok(0);
    };
    let stat = match dir.lstat(name) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(0),
        Err(e) => return Err(InstallError::io("inspect", path, e.into())),
    };
    let kind = walk::kind(&stat);
    if kind == SFlag::S_IFREG && stat.st_nlink == 1 && changed(&stat) <= ended {
        held.hold_file(path, FileId::of(&stat));
        return Ok(0);
    }
    if remove::unlink(dir, name, kind, path)? {
        return Ok(1);
    }
    // A directory still there is not empty (or went since the look, which `judge` sees).
    if kind != SFlag::S_IFDIR || held.is_empty() {
        return Ok(0);
    }
    match judge(dir, name, path, held) {
        Kept::Held(id) => {
            held.hold_dir(path, id);
            Ok(0)
        }
        Kept::Foreign => Ok(0),
        Kept::Changed => {
            let released = held.release_under(path)?;
            Ok(released + usize::from(remove::unlink(dir, name, kind, path)?))
        }
    }
}

/// What a directory of the previous install that is not empty is to the hold.
enum Kept {
    /// Something in it is not held: it stays, as the cleanup leaves it.
    Foreign,
    /// Only held paths in it, and it is as a `mkdir` would make it now.
    Held(FileId),
    /// Only held paths in it, but its owner, mode or extended attributes changed: they go, and
    /// it is removed as the cleanup would.
    Changed,
}

fn judge(dir: &Dir, name: &OsStr, path: &Path, held: &Held) -> Kept {
    let Ok(child) = dir.child(name) else {
        return Kept::Foreign;
    };
    let only_held = child
        .fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| nix::dir::Dir::from_fd(fd).ok())
        .is_some_and(|mut listing| {
            listing.iter().all(|entry| {
                entry.is_ok_and(|entry| {
                    let entry = OsStr::from_bytes(entry.file_name().to_bytes());
                    entry == "." || entry == ".." || held.contains(&path.join(entry))
                })
            })
        });
    if !only_held {
        return Kept::Foreign;
    }
    if fresh::dir_as_made(dir, &child) {
        Kept::Held(child.id())
    } else {
        Kept::Changed
    }
}

/// When the inode last changed (its content, mode, owner, links or extended attributes).
fn changed(stat: &FileStat) -> SystemTime {
    match (
        u64::try_from(stat.st_ctime),
        u64::try_from(stat.st_ctime_nsec),
    ) {
        (Ok(secs), Ok(nanos)) => {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos)
        }
        _ => SystemTime::UNIX_EPOCH,
    }
}

fn remove_selinux_context(path: &Path) {
    let status = Command::new("semanage")
        .args(["fcontext", "-d"])
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        tracing::warn!(path = %path.display(), "could not remove the selinux file context");
    }
}

/// Writes the new cleanup file as the install goes: beside the old one until `commit`.
pub(super) struct Recorder {
    writer: BufWriter<File>,
    path: PathBuf,
    new: PathBuf,
}

impl Recorder {
    pub(super) fn create(path: &Path) -> Result<Self, InstallError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| InstallError::io("create directory", parent, e))?;
        }
        let mut new = path.as_os_str().to_owned();
        new.push(".new");
        let new = PathBuf::from(new);
        let file = File::create(&new).map_err(|e| InstallError::io("create", &new, e))?;
        Ok(Self {
            writer: BufWriter::with_capacity(64 * 1024, file),
            path: path.to_owned(),
            new,
        })
    }

    /// Puts what is recorded so far in place of the old cleanup file; later lines go on
    /// being appended to it.
    pub(super) fn commit(&mut self) -> Result<(), InstallError> {
        self.flush()?;
        fs::rename(&self.new, &self.path).map_err(|e| InstallError::io("replace", &self.path, e))
    }

    /// Flushes the last lines and marks the install's end (see `replay`).
    pub(super) fn finish(mut self) -> Result<(), InstallError> {
        self.flush()?;
        self.writer
            .get_ref()
            .set_modified(SystemTime::now())
            .map_err(|e| InstallError::io("write", &self.path, e))
    }

    fn flush(&mut self) -> Result<(), InstallError> {
        self.writer
            .flush()
            .map_err(|e| InstallError::io("write", &self.path, e))
    }

    pub(super) fn path(&mut self, path: &Path) -> Result<(), InstallError> {
        self.line(&[path.as_os_str().as_bytes()])
    }

    pub(super) fn selinux(&mut self, path: &Path) -> Result<(), InstallError> {
        self.line(&[SELINUX_PREFIX.as_bytes(), path.as_os_str().as_bytes()])
    }

    fn line(&mut self, parts: &[&[u8]]) -> Result<(), InstallError> {
        parts
            .iter()
            .try_for_each(|p| self.writer.write_all(p))
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|e| InstallError::io("write", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_removes_in_reverse_keeps_non_empty_dirs_and_skips_a_torn_last_line() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let (dir, kept_dir, file, torn) = (
            root.join("d"),
            root.join("k"),
            root.join("d/f"),
            root.join("torn"),
        );
        fs::create_dir(&dir).expect("mkdir");
        fs::create_dir(&kept_dir).expect("mkdir");
        fs::write(kept_dir.join("user-file"), "mine").expect("write");
        fs::write(&file, "x").expect("write");
        fs::write(&torn, "x").expect("write");
        let cleanup = root.join("g-cleanup");
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            dir.display(),
            kept_dir.display(),
            file.display(),
            root.join("already-gone").display(),
            torn.display()
        );
        fs::write(&cleanup, text).expect("write cleanup");
        // An install that ended before the files last changed: nothing is held.
        set_ended(&cleanup, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        let (removed, held) = replay(&cleanup).expect("replay");
        assert_eq!(removed, 2);
        assert!(held.is_empty());
        assert!(!dir.exists(), "emptied directory removed after its file");
        assert!(
            kept_dir.join("user-file").exists(),
            "non-empty directory kept"
        );
        assert!(torn.exists(), "torn last line is not trusted");
        assert!(cleanup.exists(), "kept until a new record replaces it");
    }

    #[test]
    fn unchanged_files_and_directories_of_only_them_are_held_then_released_as_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let path = |p: &str| root.join(p);
        for dir in ["d", "d/sub", "k"] {
            fs::create_dir(path(dir)).expect("mkdir");
        }
        for file in ["d/f", "d/sub/g", "k/f2", "k/user-file", "d/linked"] {
            fs::write(path(file), file).expect("write");
        }
        fs::hard_link(path("d/linked"), path("elsewhere")).expect("link");
        std::os::unix::fs::symlink("f", path("d/link")).expect("symlink");
        let listed = [
            "d", "d/sub", "d/f", "d/sub/g", "d/linked", "d/link", "k", "k/f2",
        ];
        let cleanup = path("g-cleanup");
        let text: String = listed
            .iter()
            .map(|p| format!("{}\n", path(p).display()))
            .collect();
        fs::write(&cleanup, text).expect("write cleanup");
        set_ended(&cleanup, SystemTime::now() + Duration::from_secs(3600));

        let (removed, held) = replay(&cleanup).expect("replay");
        assert_eq!(removed, 2, "the link and the file with another name");
        assert!(!path("d/link").exists() && !path("d/linked").exists());
        for p in ["d/f", "d/sub/g", "k/f2"] {
            assert!(held.file(&path(p)).is_some(), "{p} held");
        }
        for p in ["d", "d/sub"] {
            assert!(held.dir(&path(p)).is_some(), "{p} held");
        }
        assert!(!held.contains(&path("k")), "holds a file of someone else");
        assert!(path("d/sub/g").exists(), "held files stay until released");

        assert_eq!(held.release_all().expect("release"), 5);
        for p in ["d", "k/f2"] {
            assert!(!path(p).exists(), "{p} removed");
        }
        assert!(path("k/user-file").exists() && path("elsewhere").exists());
    }

    fn set_ended(cleanup: &Path, at: SystemTime) {
        File::options()
            .write(true)
            .open(cleanup)
            .and_then(|f| f.set_modified(at))
            .expect("set the cleanup file's time");
    }
}
