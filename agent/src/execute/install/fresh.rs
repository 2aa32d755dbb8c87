//! What a file or directory the installer makes gets from the kernel: its owner (the group of
//! a setgid parent), its mode under the umask, and no extended attributes unless the parent
//! has a default ACL. A held path of the previous install is kept only when it has exactly
//! that.

use std::fs::{self, File};
use std::sync::OnceLock;

use nix::sys::stat::{FileStat, fstat};
use nix::unistd::{Gid, Uid, getegid, geteuid};
use xattr::FileExt as _;

use crate::execute::walk::Dir;

/// The process umask, read once from `/proc/self/status` (reading it with `umask(2)` would
/// change it for a moment under other threads). Unknown means "assume everything is masked".
pub(super) fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
            })
            .unwrap_or(0o777)
    })
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

/// Whether directory `child` of `parent` has the owner, mode and (no) extended attributes a
/// `mkdir` of the installer would give it.
pub(super) fn dir_as_made(parent: &Dir, child: &Dir) -> bool {
    let (Ok(stat), Ok(above)) = (fstat(child.fd()), fstat(parent.fd())) else {
        return false;
    };
    let (uid, gid) = new_owner(&above, (geteuid(), getegid()));
    let mode = (0o777 & !umask()) | (above.st_mode & 0o2000);
    (stat.st_uid, stat.st_gid) == (uid.as_raw(), gid.as_raw())
        && stat.st_mode & 0o7777 == mode
        && child
            .fd()
            .try_clone_to_owned()
            .is_ok_and(|fd| no_xattrs(&File::from(fd)))
        && !default_acl(parent)
}
