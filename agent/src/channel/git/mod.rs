//! The git channel: releases are the signed annotated tags of a repository that match a glob
//! and read as versions; a release's files are the tree of the tagged commit.
//!
//! Tags are fetched into a bare mirror under `<data_dir>/mirrors/`, judged ([`tags`]): moved
//! tags refused, the newest tag above the anti-rollback floor verified like `git verify-tag`,
//! and a verified release's tree exported into the release cache ([`export`]).
//!
//! The mirror is opened for each use and closed after it, with its lock held throughout, so
//! between polls the agent holds no pack open or mapped; a fetch that leaves it with too many
//! packs is followed by a repack ([`repack`]).

mod cause;
mod child;
mod cli;
mod diagnose;
mod error;
mod export;
mod failure;
mod fetch;
mod repack;
mod share;
mod source;
mod ssh;
mod tags;
mod tls;

use std::path::{Path, PathBuf};

use git2::Repository;
use shoal_shared::release::AllowedSigners;

pub use cause::Cause;
pub use child::with_stop;
pub use error::GitError;
pub use failure::FetchError;
pub use repack::MAX_PACKS;
pub use share::{MAX_HAVES, Pack, PackError, mirror_of, pack_for};
pub use source::{Endpoint, GitSource, Location};

use super::cache::ReleaseCache;
use super::{Digest, Poll, Release};
use crate::verify::state::ChannelState;
use crate::verify::{Expect, KeyTime, Refusal, VerifiedTag};
use export::ExportError;
use fetch::{ALL_TAGS, MirrorLock};

/// A git repository as a release channel for one group. Blocking: the daemon calls it from
/// `spawn_blocking`.
pub struct GitChannel {
    source: GitSource,
    group: String,
    /// The group's application: only tags whose signed message names it are releases.
    application: String,
    mirror_path: PathBuf,
    memory: tags::Memory,
}

impl GitChannel {
    /// Opens the channel of `group` for `source`, with its mirror at
    /// `<data_dir>/mirrors/<16 hex of sha256(url)>.git` (created if missing). Nothing is
    /// fetched until [`Self::poll`]. Only tags bound to `application` (the group's) verify.
    pub fn open(
        source: GitSource,
        data_dir: &Path,
        group: &str,
        application: &str,
    ) -> Result<Self, GitError> {
        let mirror_path = fetch::mirror_path(data_dir, &source);
        {
            let _lock = MirrorLock::take(&source, &mirror_path)?;
            fetch::open_mirror(&source, &mirror_path)?;
        }
        Ok(Self {
            source,
            group: group.to_owned(),
            application: application.to_owned(),
            mirror_path,
            memory: tags::Memory::default(),
        })
    }

    /// Takes the mirror's lock and opens it; both are let go when the pair is dropped.
    fn open_locked(&self) -> Result<(MirrorLock, Repository), GitError> {
        let lock = MirrorLock::take(&self.source, &self.mirror_path)?;
        let repo = fetch::open_mirror(&self.source, &self.mirror_path)?;
        Ok((lock, repo))
    }

    /// The channel's configuration.
    pub fn source(&self) -> &GitSource {
        &self.source
    }

    /// Where the mirror is.
    pub fn mirror_path(&self) -> &Path {
        &self.mirror_path
    }

    /// Fetches the repository's tags (tags deleted there are deleted from the mirror) and
    /// judges them against `signers` and `state`: see [`Poll`]. The floor rises to the newest
    /// release that verifies; `now` (the agent's clock) is the time keys are judged at for a
    /// tag first seen, whatever its tagger date says.
    pub fn poll(
        &mut self,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Poll, GitError> {
        let (lock, repo) = self.open_locked()?;
        let received = fetch::fetch(&repo, &self.source, &[ALL_TAGS], true)?;
        tracing::debug!(group = %self.group, bytes = received, "tags fetched");
        let poll = self.judge_mirror(&repo, signers, state, now);
        drop(repo);
        self.repack();
        drop(lock);
        poll
    }

    /// Judges the mirror's tags as they are now (after a fetch, or a peer's pack).
    fn judge_mirror(
        &mut self,
        repo: &Repository,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Poll, GitError> {
        let listing =
            tags::list(repo, &self.source.tags).map_err(|e| self.read_error("tags", &e))?;
        let context = tags::Context {
            group: &self.group,
            application: &self.application,
            url: self.source.display_url(),
            mirror: &self.mirror_path,
        };
        tags::judge(
            repo,
            listing,
            signers,
            state,
            now,
            &mut self.memory,
            &context,
        )
    }

    /// Repacks the mirror when fetches left it too many packs (the lock held, no handle open);
    /// a repack that fails leaves the mirror readable, and is logged and tried after the next
    /// fetch.
    fn repack(&self) {
        match repack::repack_if_needed(&self.mirror_path) {
            Ok(Some(done)) => tracing::info!(
                group = %self.group,
                mirror = %self.mirror_path.display(),
                packs = done.packs,
                objects = done.objects,
                "mirror repacked"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                group = %self.group,
                mirror = %self.mirror_path.display(),
                error = %e,
                "cannot repack the mirror"
            ),
        }
    }

    /// The directory holding the release's files in `cache`: exported from the mirror the
    /// first time (the commit's tree, unpacked with the same refusals as an archive bundle),
    /// then reused. Nothing is written outside the cache.
    pub fn materialize(
        &self,
        release: &Release,
        cache: &ReleaseCache,
    ) -> Result<PathBuf, GitError> {
        let Digest::Commit(commit) = &release.digest else {
            return Err(GitError::NotGit {
                version: release.version.name().to_owned(),
                digest: release.digest.to_string(),
            });
        };
        let dest = cache.tree_path(&release.digest);
        if cache.has_tree(&release.digest) {
            return Ok(dest);
        }
        let (_lock, repo) = self.open_locked()?;
        export::to_cache(&repo, commit, cache, &dest).map_err(|e| match e {
            ExportError::Refused(bundle) => GitError::Refused {
                version: release.version.name().to_owned(),
                url: self.source.display_url(),
                refusal: Box::new(Refusal::Bundle(bundle)),
            },
            ExportError::Git(e) => self.read_error(&format!("commit {commit}"), &e),
            ExportError::Io(source) => GitError::Export {
                commit: commit.clone(),
                url: self.source.display_url(),
                path: dest.clone(),
                source,
            },
        })?;
        tracing::info!(group = %self.group, revision.id = %release.version, commit = %commit, "release exported");
        Ok(dest)
    }

    /// The release tag `name` in the mirror, verified again as a poll would: how a restarted
    /// agent gets back the release at its floor that it verified but had not yet deployed (a
    /// poll offers a release only when it raises the floor). Its key is judged when it first
    /// verified, as `state` recorded (so it keeps its verdict after the key expires), else at
    /// `now`. `None` when the mirror has no such tag, it is not a version, it moved, or it no
    /// longer verifies.
    pub fn verified_release(
        &self,
        name: &str,
        signers: &AllowedSigners,
        state: &ChannelState,
        now: i64,
    ) -> Result<Option<Release>, GitError> {
        let Ok(version) = shoal_shared::release::Version::parse(name) else {
            return Ok(None);
        };
        let (_lock, repo) = self.open_locked()?;
        let target = match repo.find_reference(&format!("refs/tags/{name}")) {
            Ok(reference) => reference
                .resolve()
                .map_err(|e| self.read_error(&format!("tag {name}"), &e))?
                .target(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(self.read_error(&format!("tag {name}"), &e)),
        };
        let Some(target) = target else {
            return Ok(None);
        };
        let identity = target.to_string();
        if state.identity(name).is_some_and(|was| was != identity) {
            return Ok(None); // moved: the poll refuses it
        }
        let at = state.key_time(name, &identity, now);
        let expected = Expect::Application(&self.application);
        let verified = tags::verify_one(&repo, name, target, signers, at, expected)
            .map_err(|e| self.read_error(&format!("tag {name}"), &e))?;
        Ok(verified.ok().map(|tag| tags::release(version, tag)))
    }

    /// What to watch for new tags: the git directory of a local repository (refs, packed-refs
    /// and objects; watch it recursively); `None` for a remote one, which is polled.
    pub fn watch_paths(&self) -> Option<Vec<PathBuf>> {
        match self.source.location() {
            Location::Local(path) => Some(vec![GitSource::local_git_dir(&path)]),
            Location::Remote => None,
        }
    }

    fn read_error(&self, what: &str, error: &git2::Error) -> GitError {
        GitError::Read {
            what: what.to_owned(),
            url: self.source.display_url(),
            path: self.mirror_path.clone(),
            source: Cause::git(error, &[]),
        }
    }
}

/// What checking one tag found: the tag is missing, or verified, or refused.
#[derive(Debug)]
pub enum TagCheck {
    /// The repository has no such tag.
    Missing,
    /// The tag verified.
    Good(VerifiedTag),
    /// The tag is refused.
    Refused(Refusal),
}

/// Fetches the single tag `name` of `source` into a fresh mirror under `scratch` and verifies
/// it as `git verify-tag` would, and its binding against `expected` (what `shoal verify git`
/// does). No glob, floor or state.
pub fn check_tag(
    source: &GitSource,
    name: &str,
    signers: &AllowedSigners,
    now: i64,
    expected: Expect<'_>,
    scratch: &Path,
) -> Result<TagCheck, GitError> {
    let mirror_path = scratch.join(source.mirror_name());
    let repo = fetch::open_mirror(source, &mirror_path)?;
    let refspec = format!("+refs/tags/{name}:refs/tags/{name}");
    fetch::fetch(&repo, source, &[refspec.as_str()], false)?;
    let read_error = |e: git2::Error| GitError::Read {
        what: format!("tag {name}"),
        url: source.display_url(),
        path: mirror_path.clone(),
        source: Cause::git(&e, &[]),
    };
    let target = match repo.find_reference(&format!("refs/tags/{name}")) {
        Ok(reference) => reference.resolve().map_err(read_error)?.target(),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(read_error(e)),
    };
    let Some(target) = target else {
        return Ok(TagCheck::Missing);
    };
    Ok(
        match tags::verify_one(&repo, name, target, signers, KeyTime::At(now), expected)
            .map_err(read_error)?
        {
            Ok(verified) => TagCheck::Good(verified),
            Err(refusal) => TagCheck::Refused(refusal),
        },
    )
}
