//! Which tags of the mirror are releases, and one poll's judgement of them: moved tags, tags
//! below the floor, and the newest tag above it whose signature verifies.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Repository};
use shoal_shared::release::allowed_signers::pattern_matches;
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{AllowedSigners, TagError, Version};

use super::cause::Cause;
use super::error::GitError;
use crate::channel::{Digest, Poll, Release};
use crate::verify::state::ChannelState;
use crate::verify::{self, Expect, KeyTime, Refusal, VerifiedTag};

/// A tag of the mirror whose name matches the glob and is a version.
pub(super) struct TagRef {
    pub(super) version: Version,
    /// What the ref points at: the tag object, or the commit of a lightweight tag.
    pub(super) target: Oid,
}

/// What the mirror's tags are, split by whether they are versions.
pub(super) struct Listing {
    /// Matching tags that are versions, newest first.
    pub(super) releases: Vec<TagRef>,
    /// Matching tags that are not versions, with why.
    pub(super) not_versions: Vec<(String, String)>,
}

/// Lists the tags of `repo` whose names match `glob`.
pub(super) fn list(repo: &Repository, glob: &str) -> Result<Listing, git2::Error> {
    let mut listing = Listing {
        releases: Vec::new(),
        not_versions: Vec::new(),
    };
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        let Some(name) = reference
            .name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/tags/"))
        else {
            continue; // not UTF-8: cannot match a glob or be a version
        };
        if !pattern_matches(glob, name) {
            continue;
        }
        let Some(target) = reference.resolve()?.target() else {
            continue;
        };
        match Version::parse(name) {
            Ok(version) => listing.releases.push(TagRef { version, target }),
            Err(e) => listing.not_versions.push((name.to_owned(), e.to_string())),
        }
    }
    listing.releases.sort_by(|a, b| b.version.cmp(&a.version));
    Ok(listing)
}

/// Verifies the tag `name` whose ref points at `target`, as `git verify-tag` would: the raw tag
/// object's SSH signature against `signers`, with key validity judged at `at`; then its
/// binding against `expected`. A ref to anything but a tag object is a lightweight tag.
pub(super) fn verify_one(
    repo: &Repository,
    name: &str,
    target: Oid,
    signers: &AllowedSigners,
    at: KeyTime,
    expected: Expect<'_>,
) -> Result<Result<VerifiedTag, Refusal>, git2::Error> {
    let odb = repo.odb()?;
    let object = odb.read(target)?;
    if object.kind() != ObjectType::Tag {
        return Ok(Err(Refusal::Tag(TagError::Lightweight {
            name: name.to_owned(),
        })));
    }
    Ok(verify::verify_tag(
        name,
        object.data(),
        signers,
        at,
        expected,
    ))
}

/// What a channel remembers between polls of one run: names already reported as not
/// versions, refusals already logged, and tags at or below the floor already dealt with.
/// Bounded by the tags of the repository; none of it is persisted.
#[derive(Debug, Default)]
pub(super) struct Memory {
    pub(super) ignored: HashSet<String>,
    pub(super) logged: HashSet<(String, &'static str)>,
    pub(super) settled: HashSet<String>,
}

/// Judges the mirror's tags: a tag that verified before under another identity is refused
/// (moved), every poll; a tag that never verified and is at or below the floor is refused
/// once per run; tags above the floor are verified, newest first, with keys judged at `now`:
/// the first that passes becomes the newest release and raises the floor. Older tags above
/// the old floor are verified too, so that those that pass are recorded, but are superseded.
/// Only tags that verify are recorded in `state`, which is written at most once, at the end.
pub(super) fn judge(
    repo: &Repository,
    listing: Listing,
    signers: &AllowedSigners,
    state: &mut ChannelState,
    now: i64,
    memory: &mut Memory,
    context: &Context<'_>,
) -> Result<Poll, GitError> {
    let mut poll = Poll::default();
    for (name, reason) in listing.not_versions {
        if memory.ignored.insert(name.clone()) {
            tracing::warn!(group = context.group, tag = %name, %reason, "tag is not a version, ignored");
            poll.ignored.push((name, reason));
        }
    }
    let floor = state.floor();
    let mut candidates = Vec::new();
    let mut refused = Vec::new();
    for tag in listing.releases {
        let name = tag.version.name().to_owned();
        let now_id = tag.target.to_string();
        let known = state.identity(&name).is_some();
        if let Err(refusal) = state.check_identity(&name, &now_id, |was| Refusal::MovedTag {
            name: name.clone(),
            was,
            now: now_id.clone(),
        }) {
            tracing::error!(group = context.group, revision.id = %name, reason = %refusal, "release tag moved");
            refused.push((tag.version, refusal));
        } else if known {
            // Verified before, under this identity: at or below the floor, nothing to do.
        } else if above_floor(&tag.version, floor.as_ref()) {
            candidates.push(tag);
        } else if memory.settled.insert(name.clone())
            && let Err(refusal) = state.check_floor(&tag.version)
        {
            context.log_refusal(memory, &name, &refusal);
            refused.push((tag.version, refusal));
        }
    }
    for tag in candidates {
        let name = tag.version.name().to_owned();
        let identity = tag.target.to_string();
        let at = state.key_time(&name, &identity, now);
        // A tag bound to another application is refused here, before it is recorded.
        let expected = Expect::Application(context.application);
        let verified = verify_one(repo, &name, tag.target, signers, at, expected)
            .map_err(|e| context.read_error(&name, &e))?;
        match verified {
            Ok(verified) => {
                state.record_verified(&name, &identity, now);
                if poll.newest.is_none() {
                    tracing::info!(group = context.group, revision.id = %name, commit = %verified.commit, signer = %verified.signer.principal, "release tag verified");
                    state.raise_floor(&tag.version);
                    poll.newest = Some(release(tag.version, verified));
                } else {
                    memory.settled.insert(name);
                }
            }
            Err(refusal) if poll.newest.is_none() => {
                context.log_refusal(memory, &name, &refusal);
                refused.push((tag.version, refusal));
            }
            // Below the new floor: superseded, not reported.
            Err(_) => {
                memory.settled.insert(name);
            }
        }
    }
    state
        .save_if_changed()
        .map_err(|source| context.state_error(source))?;
    refused.sort_by(|a, b| b.0.cmp(&a.0));
    poll.refusals = refused
        .into_iter()
        .map(|(version, refusal)| (version.name().to_owned(), refusal))
        .collect();
    Ok(poll)
}

/// The release a verified tag makes.
pub(super) fn release(version: Version, verified: VerifiedTag) -> Release {
    Release {
        version,
        env: vec![("BUNDLE_COMMIT".to_owned(), verified.commit.clone())],
        digest: Digest::Commit(verified.commit),
        signer: verified.signer,
        rollout: None,
    }
}

/// Who is polling, for logs and errors.
pub(super) struct Context<'a> {
    pub(super) group: &'a str,
    /// The group's application: only tags bound to it are releases.
    pub(super) application: &'a str,
    pub(super) url: String,
    pub(super) mirror: &'a std::path::Path,
}

impl Context<'_> {
    fn state_error(&self, source: crate::verify::state::StateError) -> GitError {
        GitError::State {
            url: self.url.clone(),
            source,
        }
    }

    fn read_error(&self, name: &str, error: &git2::Error) -> GitError {
        GitError::Read {
            what: format!("tag {name}"),
            url: self.url.clone(),
            path: self.mirror.to_path_buf(),
            source: Cause::git(error, &[]),
        }
    }

    /// Logs a refusal at `warn` the first time this run sees it for this tag.
    fn log_refusal(&self, memory: &mut Memory, name: &str, refusal: &Refusal) {
        if memory.logged.insert((name.to_owned(), refusal.kind())) {
            tracing::warn!(group = self.group, revision.id = %name, kind = refusal.kind(), reason = %refusal, "release tag refused");
        }
    }
}
