//! How a `runas` user reaches its bundle when the data dir above it is private (0700 root,
//! as packaged): the script runs in its own mount namespace, where the highest directory the
//! user cannot search is covered by an empty tmpfs holding only the path down to the
//! deployment archive, and the archive itself is bind-mounted there, read-only.
//!
//! Why this and not the alternatives:
//! - Opening the data dir (`chmod 755`, or an ACL `u:<user>:x` on each directory above) hands
//!   the user, and with 0755 every local user, whatever else sits in it under a name it can
//!   guess: other groups' bundles, the release cache, hook logs.
//! - Running the script as `/proc/self/fd/N` (fexecve) or from a directory held open makes `$0`
//!   a path that only works inside the script's own process; the usual idioms
//!   (`cd "$(dirname "$0")" && pwd`, `readlink -f "$0"`) then give a path the user cannot
//!   reach.
//! - Copying the archive for the user costs a bundle's size per user and deployment, and a
//!   hook would see a copy that earlier hooks' changes to the archive never reached.
//!
//! In the view the archive sits at its real path, so `$0`, `dirname "$0"`, `pwd` and
//! `SHOAL_DEPLOYMENT_DIR` (which holds only the archive there) mean what they mean to a root
//! hook, and nothing else under the covered directory is visible. Outside the hook nothing
//! changes: no mode, no ACL, no mount. Mounts stay shared with the host one way (`MS_SLAVE`):
//! the hook and what it leaves running see the host's later mounts, and the namespace goes
//! away with its last process. Needs `CAP_SYS_ADMIN`, which a root agent has.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, mkdir};
use tokio::process::Command;

/// The tmpfs that covers the private directory: a few directories, nothing else.
const COVER_OPTIONS: &std::ffi::CStr = c"mode=0755,size=64k";

/// The view one runas script gets of its bundle, prepared (as root) before it is spawned.
#[derive(Debug)]
pub(super) struct BundleView {
    /// The highest directory above the archive that the user cannot search.
    cover: CString,
    /// The directories to create on the tmpfs, top down; the last is the archive's real path.
    dirs: Vec<CString>,
    /// `/proc/self/fd/N`, N being `slot`: the archive, still reachable once it is covered.
    source: CString,
    /// An fd number kept for the child. The archive is opened there again once the child is in
    /// its namespace: a mount can only be bound from a path of the namespace it is made in.
    /// Close-on-exec, so the script does not inherit it.
    slot: OwnedFd,
}

/// Who the script runs as, for the permission check of each directory above the archive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Identity<'a> {
    pub uid: Uid,
    pub gid: Gid,
    pub groups: &'a [Gid],
}

impl BundleView {
    /// The view needed for `identity` to reach `archive_dir`, or `None` when every directory
    /// above it is already searchable by that user (nothing to do, as before). Returns the
    /// archive's real path too: the script is started by it, since the view holds only that.
    pub(super) fn plan(
        archive_dir: &Path,
        identity: Identity<'_>,
    ) -> io::Result<(PathBuf, Option<Self>)> {
        let archive = fs::canonicalize(archive_dir)?;
        let Some(cover) = archive
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            // Never `/`: covering it would hide the interpreter too.
            .find(|dir| dir.parent().is_some() && !searchable(dir, identity))
            .map(Path::to_path_buf)
        else {
            return Ok((archive, None));
        };
        let below = archive
            .strip_prefix(&cover)
            .map_err(|_| io::Error::other("the archive is not under the directory covered"))?;
        let mut dirs = Vec::new();
        let mut dir = cover.clone();
        for part in below.components() {
            dir.push(part);
            dirs.push(c_path(&dir)?);
        }
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(&archive)?;
        let slot = OwnedFd::from(opened);
        let source = c_path(Path::new(&format!("/proc/self/fd/{}", slot.as_raw_fd())))?;
        let view = Self {
            cover: c_path(&cover)?,
            dirs,
            source,
            slot,
        };
        Ok((archive, Some(view)))
    }

    /// The directory covered in the script's namespace (for messages).
    pub(super) fn covered(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.cover.to_bytes()))
    }

    /// Makes the child enter the view between fork and exec, before it drops root.
    pub(super) fn enter_on_spawn(self: &std::sync::Arc<Self>, command: &mut Command) {
        let view = std::sync::Arc::clone(self);
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are sound. It only makes syscalls (unshare, mount, umask,
        // open, dup3, mkdir, close) on C strings built before the fork, through nix wrappers
        // that take a `CStr` as it is, and builds errors with `from_raw_os_error`, which does not allocate.
        // Nothing is locked, allocated or freed.
        unsafe {
            command.pre_exec(move || {
                view.enter()
                    .map_err(|errno| io::Error::from_raw_os_error(errno as i32))
            });
        }
    }

    /// In the child: a mount namespace of its own, where `cover` is an empty tmpfs with the
    /// path down to the archive and the archive mounted at its end.
    fn enter(&self) -> Result<(), Errno> {
        let none: Option<&std::ffi::CStr> = None;
        let Some(target) = self.dirs.last() else {
            return Err(Errno::EINVAL);
        };
        unshare(CloneFlags::CLONE_NEWNS)?;
        // Nothing mounted here reaches the host; the host's later mounts still reach here.
        mount(none, c"/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none)?;
        // The archive as this namespace sees it, in the slot `source` names.
        let archive = open(
            target.as_c_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        #[allow(unsafe_code)]
        // SAFETY: dup3 only replaces this child's copy of `slot` (the agent's stays open), and
        // both descriptors are valid for the call.
        let moved = unsafe {
            nix::libc::dup3(
                archive.as_raw_fd(),
                self.slot.as_raw_fd(),
                nix::libc::O_CLOEXEC,
            )
        };
        Errno::result(moved)?;
        drop(archive);
        mount(
            Some(c"tmpfs"),
            self.cover.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(COVER_OPTIONS),
        )?;
        let mask = umask(Mode::empty());
        let made = self
            .dirs
            .iter()
            .try_for_each(|dir| mkdir(dir.as_c_str(), Mode::from_bits_truncate(0o755)));
        umask(mask);
        made?;
        mount(
            Some(self.source.as_c_str()),
            target.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
        // Read-only to the user: files its archive records as the user's own (`tar -xp`) are
        // scripts root runs later too.
        mount(
            none,
            target.as_c_str(),
            none,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            none,
        )
    }
}

/// Whether `identity` may search `dir` by its mode (ACLs aside: a directory an ACL opens is
/// covered anyway, which costs nothing but the view).
fn searchable(dir: &Path, identity: Identity<'_>) -> bool {
    let Ok(metadata) = fs::metadata(dir) else {
        return false;
    };
    let mode = metadata.mode();
    let bit = if metadata.uid() == identity.uid.as_raw() {
        0o100
    } else if metadata.gid() == identity.gid.as_raw()
        || identity.groups.iter().any(|g| g.as_raw() == metadata.gid())
    {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("the path holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn nobody() -> Identity<'static> {
        Identity {
            uid: Uid::from_raw(65_534),
            gid: Gid::from_raw(65_534),
            groups: &[],
        }
    }

    #[test]
    fn no_view_when_every_directory_above_is_searchable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let archive = tmp.path().join("a/b/deployment-archive");
        fs::create_dir_all(&archive).expect("mkdir");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let (real, view) = BundleView::plan(&archive, nobody()).expect("plan");
        assert_eq!(real, fs::canonicalize(&archive).expect("real"));
        assert!(view.is_none());
    }

    #[test]
    fn the_highest_private_directory_is_covered() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let archive = data.join("root/g/d-1/deployment-archive");
        fs::create_dir_all(&archive).expect("mkdir");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::set_permissions(data.join("root/g"), fs::Permissions::from_mode(0o700)).expect("chmod");
        let (real, view) = BundleView::plan(&archive, nobody()).expect("plan");
        let view = view.expect("a view");
        let data = fs::canonicalize(&data).expect("real");
        assert_eq!(view.covered(), data);
        let dirs: Vec<PathBuf> = view
            .dirs
            .iter()
            .map(|d| PathBuf::from(OsStr::from_bytes(d.to_bytes())))
            .collect();
        assert_eq!(
            dirs,
            [
                data.join("root"),
                data.join("root/g"),
                data.join("root/g/d-1"),
                real.clone(),
            ]
        );
        assert_eq!(real, data.join("root/g/d-1/deployment-archive"));
    }
}
