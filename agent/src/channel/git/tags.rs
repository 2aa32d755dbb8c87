//! Which tags of the mirror are releases, and one poll's judgement of them: moved tags, tags
//! below the floor, and the newest tag above it whose signature verifies.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Repository};
use shoal_shared::release::allowed_signers::pattern_matches;
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{AllowedSigners, TagError, Version};

use super::error::{Cause, GitError};
use crate::channel::{Digest, Poll, Release};
use crate::verify::state::ChannelState;
use crate::verify::{self, Refusal, VerifiedTag};

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
/// object's SSH signature against `signers`. A ref to anything but a tag object is a
/// lightweight tag.
pub(super) fn verify_one(
    repo: &Repository,
    name: &str,
    target: Oid,
    signers: &AllowedSigners,
    now: i64,
) -> Result<Result<VerifiedTag, Refusal>, git2::Error> {
    let odb = repo.odb()?;
    let object = odb.read(target)?;
    if object.kind() != ObjectType::Tag {
        return Ok(Err(Refusal::Tag(TagError::Lightweight {
            name: name.to_owned(),
        })));
    }
    Ok(verify::verify_tag(name, object.data(), signers, now))
}

/// What a channel remembers between polls of one run: names already reported as not
/// versions, and refusals already logged.
#[derive(Debug, Default)]
pub(super) struct Memory {
    pub(super) ignored: HashSet<String>,
    pub(super) logged: HashSet<(String, &'static str)>,
}

/// Judges the mirror's tags: every release tag is checked against the names seen before
/// (a moved tag is refused, every poll); a tag first seen at or below the floor is refused
/// once; then tags above the floor are verified, newest first, until one passes: it becomes
/// the newest release and raises the floor. Older tags above the old floor are superseded
/// and not looked at.
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
    for tag in listing.releases {
        let name = tag.version.name().to_owned();
        let new = !state.has_seen(&name);
        let now_id = tag.target.to_string();
        let seen = state
            .check_seen(&name, &now_id, |was| Refusal::MovedTag {
                name: name.clone(),
                was,
                now: now_id.clone(),
            })
            .map_err(|source| context.state_error(source))?;
        if let Err(refusal) = seen {
            tracing::error!(group = context.group, revision.id = %name, reason = %refusal, "release tag moved");
            poll.refusals.push((name, refusal));
        } else if above_floor(&tag.version, floor.as_ref()) {
            candidates.push(tag);
        } else if new && let Err(refusal) = state.check_floor(&tag.version) {
            context.log_refusal(memory, &name, &refusal);
            poll.refusals.push((name, refusal));
        }
    }
    for tag in candidates {
        let name = tag.version.name().to_owned();
        let verified = verify_one(repo, &name, tag.target, signers, now)
            .map_err(|e| context.read_error(&name, &e))?;
        match verified {
            Ok(verified) => {
                tracing::info!(group = context.group, revision.id = %name, commit = %verified.commit, signer = %verified.signer.principal, "release tag verified");
                state
                    .raise_floor(&tag.version)
                    .map_err(|source| context.state_error(source))?;
                poll.newest = Some(release(tag.version, verified));
                break;
            }
            Err(refusal) => {
                context.log_refusal(memory, &name, &refusal);
                poll.refusals.push((name, refusal));
            }
        }
    }
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
