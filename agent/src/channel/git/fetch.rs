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
    /// Waits for the lock of the mirror at `path`, then removes what a git that was cut short
    /// left in it ([`remove_leftovers`]).
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
        let (files, bytes) = remove_leftovers(path);
        if files > 0 {
            tracing::info!(
                mirror = %path.display(),
                files,
                bytes,
                "removed what a git cut short left in the mirror"
            );
        }
        Ok(Self { _lock: lock })
    }
}

/// Removes the temporary files a git writing packs leaves in `<mirror>/objects/pack` when it
/// dies (killed at a timeout, out of disk, a crash): git's `tmp_pack_*`, `tmp_idx_*` and
/// their kin, `git repack`'s `.tmp-*`, libgit2's `pack_git2_*`. Nothing else writes there
/// while the mirror's lock is held. Returns how many files went and their bytes; a file that
/// cannot be removed is left for the next time.
pub(super) fn remove_leftovers(mirror: &Path) -> (usize, u64) {
    let Ok(entries) = fs::read_dir(mirror.join("objects").join("pack")) else {
        return (0, 0);
    };
    let mut removed = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let temporary = ["tmp_", ".tmp-", "pack_git2_"]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        let Ok(meta) = entry.metadata() else { continue };
        if temporary && meta.is_file() && fs::remove_file(entry.path()).is_ok() {
            removed.0 += 1;
            removed.1 += meta.len();
        }
    }
    removed
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_git_cut_short_left_is_removed_from_the_packs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packs = dir.path().join("objects/pack");
        fs::create_dir_all(packs.join("tmp_a_folder")).expect("mkdir");
        let kept = ["pack-1a.pack", "pack-1a.idx", "pack-1a.rev", "tmp"];
        let gone = [
            "tmp_pack_ItD5Jz",
            "tmp_idx_x2",
            ".tmp-4121-pack-9f.pack",
            "pack_git2_Zq1",
        ];
        for name in kept.iter().chain(&gone) {
            fs::write(packs.join(name), b"1234").expect("write");
        }
        assert_eq!(remove_leftovers(dir.path()), (gone.len(), 16));
        let mut left: Vec<String> = fs::read_dir(&packs)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "pack-1a.idx",
                "pack-1a.pack",
                "pack-1a.rev",
                "tmp",
                "tmp_a_folder"
            ]
        );
        assert_eq!(remove_leftovers(&dir.path().join("none")), (0, 0));
    }
}
