//! The group's cleanup file: every path an install created, one a line, in creation order, so
//! the next install can remove them in reverse. SELinux records are `semanage\0<path>`.
//! Removal goes through safely opened parents (`walk`): a path whose directory was swapped for
//! a link is left alone, never removed through the link.

use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::sys::stat::SFlag;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::error::InstallError;
use crate::execute::walk::{self, LastDir, WalkError};

const SELINUX_PREFIX: &str = "semanage\0";

/// Removes what the previous install recorded, newest first, then the file itself.
/// A last line without a newline (a crash mid-write) is skipped; directories are removed only
/// when empty. Returns how many paths were removed.
pub(super) fn replay(cleanup_file: &Path) -> Result<usize, InstallError> {
    let bytes = match fs::read(cleanup_file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(InstallError::io("read", cleanup_file, e)),
    };
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..end],
        None => &[][..],
    };
    let mut removed = 0;
    let mut dirs = LastDir::default();
    for line in complete
        .split(|b| *b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
    {
        if let Some(path) = line.strip_prefix(SELINUX_PREFIX.as_bytes()) {
            remove_selinux_context(Path::new(std::ffi::OsStr::from_bytes(path)));
            continue;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(line));
        if remove(&mut dirs, path)? {
            removed += 1;
        }
    }
    fs::remove_file(cleanup_file).map_err(|e| InstallError::io("remove", cleanup_file, e))?;
    Ok(removed)
}

/// Removes `path` (a directory only when empty) through its safely opened parent; returns
/// whether it was there to remove.
fn remove(dirs: &mut LastDir, path: &Path) -> Result<bool, InstallError> {
    let Some((parent, name)) = walk::split(path) else {
        return Ok(false);
    };
    let dir = match dirs.open(parent, None) {
        Ok(dir) => dir,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e @ WalkError::Io { .. }) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "left in place by the cleanup");
            return Ok(false);
        }
    };
    let flag = match dir.lstat(name) {
        Ok(stat) if walk::kind(&stat) == SFlag::S_IFDIR => UnlinkatFlags::RemoveDir,
        Ok(_) => UnlinkatFlags::NoRemoveDir,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(InstallError::io("inspect", path, e.into())),
    };
    match unlinkat(dir.fd(), name, flag) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => Ok(false),
        // Swapped between the look and the unlink: left for the next cleanup.
        Err(Errno::EISDIR | Errno::ENOTDIR) => Ok(false),
        Err(e) => Err(InstallError::io("remove", path, e.into())),
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

/// Appends to a new cleanup file as the install goes.
pub(super) struct Recorder {
    writer: BufWriter<File>,
    path: PathBuf,
}

impl Recorder {
    pub(super) fn create(path: &Path) -> Result<Self, InstallError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| InstallError::io("create directory", parent, e))?;
        }
        let file = File::create(path).map_err(|e| InstallError::io("create", path, e))?;
        Ok(Self {
            writer: BufWriter::with_capacity(64 * 1024, file),
            path: path.to_owned(),
        })
    }

    pub(super) fn flush(&mut self) -> Result<(), InstallError> {
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
        assert_eq!(replay(&cleanup).expect("replay"), 2);
        assert!(!dir.exists(), "emptied directory removed after its file");
        assert!(
            kept_dir.join("user-file").exists(),
            "non-empty directory kept"
        );
        assert!(torn.exists(), "torn last line is not trusted");
        assert!(!cleanup.exists());
    }
}
