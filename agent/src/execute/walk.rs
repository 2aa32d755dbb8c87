//! Directories that root reaches without following a link anyone but root could have planted.
//!
//! Install, cleanup and permissions run as root in trees that an application user may own
//! (`permissions: {owner: app}` hands the install to it). Resolving a path there by name lets
//! that user swap a component for a symlink between two system calls and aim root's write, chmod
//! or unlink anywhere. So paths are walked one component at a time from `/`, each directory
//! opened with `O_NOFOLLOW` and kept as a file descriptor, and everything below is done relative
//! to such descriptors (`mkdirat`, `openat(O_CREAT|O_EXCL|O_NOFOLLOW)`, `renameat`, `unlinkat`,
//! `fchmod`, `fchown`, `fsetxattr`).
//!
//! A symlink is followed only where it sits in a directory owned by root and writable by no one
//! else (a *trusted* directory), since only root can have put it there: `/opt -> /data/opt`
//! keeps working. A symlink in any other directory is refused. This is systemd's `chase()` with
//! `CHASE_SAFE` in spirit; `..` in a link target goes back along the walked path.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// How many symlinks one walk follows before it calls the path a loop (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Which file a path named when shoal created it: a later look at the same path that finds
/// another inode means someone replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileId {
    /// The identity of a file from its `stat`.
    pub fn of(stat: &FileStat) -> Self {
        Self {
            dev: stat.st_dev,
            ino: stat.st_ino,
        }
    }
}

/// Why a directory could not be reached safely.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A symlink in a directory that a user other than root can write.
    #[error(
        "{} is a symlink in a directory that a user other than root can write; shoal follows \
         links only in directories owned by root and writable by root alone",
        link.display()
    )]
    UntrustedLink {
        /// The link.
        link: PathBuf,
    },
    /// More links than the kernel would follow.
    #[error("{} has more than {MAX_LINKS} symlinks on its way (a loop?)", path.display())]
    TooManyLinks {
        /// The path walked.
        path: PathBuf,
    },
    /// A component is neither a directory nor a link to one.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The component.
        path: PathBuf,
    },
    /// What is at a path is no longer what shoal created there: another process replaced it.
    #[error(
        "{} was replaced by another process while shoal installed it; nothing was done \
         through it",
        path.display()
    )]
    Replaced {
        /// The path.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl WalkError {
    /// Whether the path, or a directory on its way, does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_error(action: &'static str, path: &Path, errno: Errno) -> WalkError {
    WalkError::Io {
        action,
        path: path.to_owned(),
        source: io::Error::from(errno),
    }
}

/// An open directory, reached safely, with the path it was reached by (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    stat: FileStat,
}

impl Dir {
    /// Opens the directory at absolute `path`, following only links in trusted directories.
    pub fn open(path: &Path) -> Result<Self, WalkError> {
        let root = Path::new("/");
        let fd = nix::fcntl::open(root, dir_flags(), Mode::empty())
            .map_err(|e| io_error("open", root, e))?;
        let mut walked = vec![Self::from_fd(fd, root.to_owned())?];
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, path);
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                if walked.len() > 1 {
                    walked.pop();
                }
                continue;
            }
            let parent = walked.last().expect("the root is never popped");
            match parent.open_dir(&name) {
                Ok(child) => walked.push(child),
                Err(Opened::Link(link)) => {
                    if !parent.trusted() {
                        return Err(WalkError::UntrustedLink { link });
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(WalkError::TooManyLinks {
                            path: path.to_owned(),
                        });
                    }
                    let target = nix::fcntl::readlinkat(parent.fd.as_fd(), name.as_os_str())
                        .map_err(|e| io_error("read the link", &link, e))?;
                    if Path::new(&target).is_absolute() {
                        walked.truncate(1);
                    }
                    push_components(&mut todo, Path::new(&target));
                }
                Err(Opened::Failed(error)) => return Err(error),
            }
        }
        Ok(walked.pop().expect("at least the root"))
    }

    fn from_fd(fd: OwnedFd, path: PathBuf) -> Result<Self, WalkError> {
        let stat = fstat(&fd).map_err(|e| io_error("inspect", &path, e))?;
        Ok(Self { fd, path, stat })
    }

    /// The path this directory was reached by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's identity.
    pub fn id(&self) -> FileId {
        FileId::of(&self.stat)
    }

    /// The directory's owner.
    pub fn owner(&self) -> u32 {
        self.stat.st_uid
    }

    /// Owned by root and writable by no one else, so only root can change what it holds.
    pub fn trusted(&self) -> bool {
        self.stat.st_uid == 0 && self.stat.st_mode & 0o022 == 0
    }

    /// The directory as a descriptor, for `*at` calls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path of entry `name`, for messages.
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the child directory `name`, never through a link.
    pub fn child(&self, name: &OsStr) -> Result<Self, WalkError> {
        match self.open_dir(name) {
            Ok(dir) => Ok(dir),
            Err(Opened::Link(link)) => Err(WalkError::UntrustedLink { link }),
            Err(Opened::Failed(error)) => Err(error),
        }
    }

    fn open_dir(&self, name: &OsStr) -> Result<Self, Opened> {
        let path = self.join(name);
        match openat(self.fd(), name, dir_flags(), Mode::empty()) {
            Ok(fd) => Self::from_fd(fd, path).map_err(Opened::Failed),
            Err(Errno::ELOOP | Errno::ENOTDIR) => match self.lstat(name) {
                Ok(stat) if kind(&stat) == SFlag::S_IFLNK => Err(Opened::Link(path)),
                Ok(_) => Err(Opened::Failed(WalkError::NotADirectory { path })),
                Err(e) => Err(Opened::Failed(io_error("inspect", &path, e))),
            },
            Err(e) => Err(Opened::Failed(io_error("open", &path, e))),
        }
    }

    /// `lstat` of entry `name`.
    pub fn lstat(&self, name: &OsStr) -> nix::Result<FileStat> {
        fstatat(self.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// Opens entry `name` itself, whatever it is, without following it: a regular file or
    /// directory read-only (never blocking on a FIFO someone put there), a symlink as `O_PATH`.
    pub fn open_entry(&self, name: &OsStr) -> nix::Result<(File, FileStat)> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(self.fd(), name, flags | OFlag::O_NOCTTY, Mode::empty()) {
            Err(Errno::ELOOP) => openat(
                self.fd(),
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?,
            other => other?,
        };
        let stat = fstat(&fd)?;
        Ok((File::from(fd), stat))
    }
}

/// Why a child could not be opened as a directory.
enum Opened {
    /// It is a symlink (at this path).
    Link(PathBuf),
    /// Anything else.
    Failed(WalkError),
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The file type bits of a `stat`.
pub fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// Pushes the names of `path` so that its first component is popped first (`.` dropped).
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// Splits absolute `path` into its parent and its last name; `None` for `/` or a path ending
/// in `..`.
pub fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    let name = path.file_name()?;
    if name.as_bytes() == b".." {
        return None;
    }
    Some((path.parent()?, name))
}

/// The last directory opened, kept for the next path in the same directory (installs and
/// cleanups visit paths directory by directory).
#[derive(Default)]
pub struct LastDir {
    last: Option<(PathBuf, Dir)>,
}

impl LastDir {
    /// The directory at `path`, opened safely, reusing the last one when it is the same path.
    /// When `expected` is given (a directory this install created), it must still be that one.
    pub fn open(&mut self, path: &Path, expected: Option<FileId>) -> Result<&Dir, WalkError> {
        if !matches!(&self.last, Some((at, _)) if at == path) {
            self.last = None;
            let dir = Dir::open(path)?;
            if expected.is_some_and(|id| id != dir.id()) {
                return Err(WalkError::Replaced {
                    path: path.to_owned(),
                });
            }
            self.last = Some((path.to_owned(), dir));
        }
        Ok(&self.last.as_ref().expect("just set").1)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn links_in_trusted_directories_are_followed_and_others_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path();
        fs::create_dir_all(base.join("real/inner")).expect("mkdir");
        symlink(base.join("real"), base.join("abs")).expect("symlink");
        symlink("real/inner/..", base.join("rel")).expect("symlink");
        let trusted = nix::unistd::geteuid().is_root();

        for via in ["abs/inner", "rel/inner", "real/inner"] {
            let result = Dir::open(&base.join(via));
            if trusted {
                let dir = result.expect("a link root made in root's directory is followed");
                let expected = fs::metadata(base.join("real/inner")).expect("stat");
                assert_eq!(
                    dir.stat.st_ino,
                    std::os::unix::fs::MetadataExt::ino(&expected)
                );
            } else if via != "real/inner" {
                assert!(
                    matches!(result, Err(WalkError::UntrustedLink { .. })),
                    "{via}: {result:?}"
                );
            }
        }

        // A directory others can write: a link in it is never followed, even to a safe place.
        fs::create_dir(base.join("open")).expect("mkdir");
        fs::set_permissions(base.join("open"), fs::Permissions::from_mode(0o777)).expect("chmod");
        symlink(base.join("real"), base.join("open/link")).expect("symlink");
        let error = Dir::open(&base.join("open/link/inner")).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("open/link is a symlink in a directory"),
            "{error}"
        );
        assert!(matches!(
            Dir::open(&base.join("missing/x")),
            Err(e) if e.is_not_found()
        ));
        fs::write(base.join("file"), "x").expect("write");
        assert!(matches!(
            Dir::open(&base.join("file/x")),
            Err(WalkError::NotADirectory { .. })
        ));
        symlink(base.join("loop"), base.join("loop")).expect("symlink");
        if trusted {
            assert!(matches!(
                Dir::open(&base.join("loop")),
                Err(WalkError::TooManyLinks { .. })
            ));
        }
        let inner = base.join("real/inner");
        let (dir, name) = split(&inner).expect("split");
        assert_eq!(
            (dir, name),
            (base.join("real").as_path(), OsStr::new("inner"))
        );
        assert!(split(Path::new("/")).is_none());
    }
}
