//! The local mirror of a channel's repository (a bare repository under
//! `<data_dir>/mirrors/`), and fetching tags into it: from a remote repository with the `git`
//! program, from one on this host with libgit2.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use git2::{AutotagOption, FetchOptions, FetchPrune, Repository, RepositoryInitOptions};
use nix::fcntl::{Flock, FlockArg};

use super::cause::Cause;
use super::cli;
use super::error::GitError;
use super::failure::FetchError;
use super::source::{GitSource, Location};

/// Every tag of the repository, forced (a moved tag must be seen to be refused).
pub(super) const ALL_TAGS: &str = "+refs/tags/*:refs/tags/*";

/// Opens the bare mirror at `path`, creating it if missing.
pub(super) fn open_mirror(source: &GitSource, path: &Path) -> Result<Repository, GitError> {
    let failed = |action, source_error: Cause| GitError::Mirror {
        action,
        url: source.display_url(),
        path: path.to_path_buf(),
        source: source_error,
    };
    if path.join("HEAD").is_file() {
        return Repository::open_bare(path).map_err(|e| failed("open", Cause::git(&e, &[])));
    }
    let mut options = RepositoryInitOptions::new();
    options.bare(true).mkpath(true);
    Repository::init_opts(path, &options).map_err(|e| failed("create", Cause::git(&e, &[])))
}

/// Holds the mirror's lock file (`<mirror>.lock`) so two channels of the same repository (two
/// groups) never fetch into it at once; released on drop.
pub(super) struct MirrorLock {
    _lock: Flock<File>,
}

impl MirrorLock {
    /// Waits for the lock of the mirror at `path`.
    pub(super) fn take(source: &GitSource, path: &Path) -> Result<Self, GitError> {
        let lock_path = path.with_extension("lock");
        let failed = |e: &std::io::Error| GitError::Mirror {
            action: "lock",
            url: source.display_url(),
            path: path.to_path_buf(),
            source: Cause::io(e),
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| failed(&e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| failed(&e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| failed(&std::io::Error::from(errno)))?;
        Ok(Self { _lock: lock })
    }
}

/// Fetches `refspecs` from the source into `repo`; with `prune`, refs the remote no longer has
/// are deleted. A remote repository is fetched with the `git` program ([`cli`](super::cli)),
/// one on this host with libgit2. Returns the bytes received.
pub(super) fn fetch(
    repo: &Repository,
    source: &GitSource,
    refspecs: &[&str],
    prune: bool,
) -> Result<usize, GitError> {
    let failed = |source_error| GitError::Fetch {
        url: source.display_url(),
        source: source_error,
    };
    if let Err((_, reason)) = source.check_secrets() {
        return Err(failed(FetchError::ClearText { reason }));
    }
    match source.location() {
        Location::Remote => cli::fetch(repo.path(), source, refspecs, prune).map_err(failed),
        Location::Local(_) => fetch_local(repo, source, refspecs, prune)
            .map_err(|e| failed(FetchError::Local(Cause::git(&e, &[])))),
    }
}

/// A repository on this host, through libgit2: files only, nothing to wait for, no
/// credentials.
fn fetch_local(
    repo: &Repository,
    source: &GitSource,
    refspecs: &[&str],
    prune: bool,
) -> Result<usize, git2::Error> {
    let mut remote = repo.remote_anonymous(&source.url)?;
    let mut options = FetchOptions::new();
    options
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        .prune(if prune {
            FetchPrune::On
        } else {
            FetchPrune::Off
        });
    remote.fetch(refspecs, Some(&mut options), None)?;
    Ok(remote.stats().received_bytes())
}

/// `<data_dir>/mirrors/<name>`.
pub(super) fn mirror_path(data_dir: &Path, source: &GitSource) -> PathBuf {
    data_dir.join("mirrors").join(source.mirror_name())
}
