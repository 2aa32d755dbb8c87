//! A git release between peers: the serving host packs a release tag from its mirror (the tag
//! object and everything it needs that the asker does not have), and the fetching host indexes
//! that pack into its own mirror (`git index-pack --strict`, which hashes every object, so a
//! pack can only hold the objects it names), checks that the tag and all it reaches are there,
//! points the tag's ref at it, and then judges its tags exactly as after a fetch from the
//! origin: the signature, the allowed signers, the application, the floor and moved tags.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use git2::{ObjectType, Oid, Repository};
use shoal_shared::release::allowed_signers::pattern_matches;
use shoal_shared::release::{AllowedSigners, Version};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::fetch::{self, MirrorLock};
use super::source::GitSource;
use super::{GitChannel, GitError, tags};
use crate::channel::Poll;
use crate::channel::cache::room_in;
use crate::verify::state::ChannelState;

/// How long indexing a release may take.
const GIT_LIMIT: Duration = Duration::from_secs(600);
/// The most commits a fetcher may name as already had.
pub const MAX_HAVES: usize = 16;

/// A pack being made for a peer: `git pack-objects` writing it to `stdout` as it goes.
#[derive(Debug)]
pub struct Pack {
    /// The running `git pack-objects` (killed when dropped).
    pub child: tokio::process::Child,
    /// Its output: the pack.
    pub stdout: tokio::process::ChildStdout,
    /// The tag object's id.
    pub tag: String,
}

/// The mirror of `source` under `data_dir`.
pub fn mirror_of(data_dir: &Path, source: &GitSource) -> PathBuf {
    fetch::mirror_path(data_dir, source)
}

/// Whether `name` can be a release tag asked for by a peer: a version, in characters that are
/// safe in a ref and on a command line.
fn tag_name_ok(name: &str) -> bool {
    Version::parse(name).is_ok()
        && name.len() <= 128
        && !name.starts_with(['-', '.'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
}

/// The annotated tag `tag` of the mirror at `mirror` and every object it reaches but the
/// commits in `have` do (those the mirror has), as a pack; `None` when the mirror has no such
/// annotated tag matching the channel's pattern.
pub async fn pack_for(
    mirror: &Path,
    source: &GitSource,
    tag: &str,
    have: &[String],
) -> io::Result<Option<Pack>> {
    if !tag_name_ok(tag) || !glob_matches(&source.tags, tag) {
        return Ok(None);
    }
    let (mirror_owned, tag_owned, have_owned) =
        (mirror.to_path_buf(), tag.to_owned(), have.to_vec());
    let resolved = tokio::task::spawn_blocking(move || -> Option<(Oid, Vec<Oid>)> {
        let repo = Repository::open_bare(&mirror_owned).ok()?;
        let reference = repo
            .find_reference(&format!("refs/tags/{tag_owned}"))
            .ok()?;
        let oid = reference.target()?;
        repo.find_tag(oid).ok()?;
        let haves = have_owned
            .iter()
            .take(MAX_HAVES)
            .filter_map(|h| Oid::from_str(h).ok())
            .filter(|oid| repo.find_object(*oid, Some(ObjectType::Commit)).is_ok())
            .collect();
        Some((oid, haves))
    })
    .await
    .map_err(io::Error::other)?;
    let Some((oid, haves)) = resolved else {
        return Ok(None);
    };
    let mut revs = format!("{oid}\n");
    for have in haves {
        revs.push_str(&format!("^{have}\n"));
    }
    let mut child = git(mirror)
        .args([
            "pack-objects",
            "--stdout",
            "--revs",
            "--delta-base-offset",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(revs.as_bytes()).await?;
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("git pack-objects has no output"))?;
    Ok(Some(Pack {
        child,
        stdout,
        tag: oid.to_string(),
    }))
}

/// Whether `name` matches the channel's tag pattern, as the listing of tags reads it.
fn glob_matches(pattern: &str, name: &str) -> bool {
    pattern_matches(pattern, name)
}

/// What went wrong with a peer's pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The pack or what it holds is not the release asked for: the peer is dropped for it.
    #[error("{0}")]
    Bad(String),
    /// This host's mirror could not be opened or changed (its lock, its git).
    #[error(transparent)]
    Local(#[from] GitError),
    /// The mirror's disk has no room for the pack: no peer is to blame, and none would fare
    /// better.
    #[error("{0}")]
    NoRoom(String),
}

impl GitChannel {
    /// The commits this host's mirror has at the newest tags, to tell a peer what not to send.
    pub fn haves(&self) -> Vec<String> {
        let Ok((_lock, repo)) = self.open_locked() else {
            return Vec::new();
        };
        let Ok(listing) = tags::list(&repo, &self.source.tags) else {
            return Vec::new();
        };
        // Newest first already.
        listing
            .releases
            .iter()
            .filter_map(|tag| {
                let object = repo.find_object(tag.target, None).ok()?;
                Some(object.peel_to_commit().ok()?.id().to_string())
            })
            .take(MAX_HAVES)
            .collect()
    }

    /// Takes a peer's pack of release tag `name` (tag object `tag_oid`) from the file at
    /// `pack`: indexed into the mirror, checked complete, the tag's ref pointed at it if the
    /// mirror has none, and the mirror's tags judged as after a fetch.
    pub async fn take_pack(
        &mut self,
        name: &str,
        tag_oid: &str,
        pack: &Path,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Poll, PackError> {
        let bad = |what: String| PackError::Bad(what);
        if !tag_name_ok(name) || !glob_matches(&self.source.tags, name) {
            return Err(bad(format!(
                "`{name}` is not a release tag of this channel"
            )));
        }
        let oid =
            Oid::from_str(tag_oid).map_err(|_| bad(format!("`{tag_oid}` is not an object id")))?;
        let lock = MirrorLock::take(&self.source, &self.mirror_path)?;
        let pack_file = std::fs::File::open(pack)
            .map_err(|e| bad(format!("cannot read the received pack: {e}")))?;
        let pack_len = pack_file.metadata().map_or(0, |m| m.len());
        let indexed = git(&self.mirror_path)
            .args(["index-pack", "--strict", "--stdin", "--fix-thin"])
            .stdin(pack_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let output = tokio::time::timeout(GIT_LIMIT, indexed)
            .await
            .map_err(|_| bad("indexing the pack took too long".to_owned()))?
            .map_err(|e| bad(format!("cannot run git index-pack: {e}")))?;
        if !output.status.success() {
            // A full disk fails index-pack as a broken pack does. Once what git left is gone,
            // indexing takes the pack's size again and its index: with less than twice the
            // pack free, the disk is the cause.
            fetch::remove_leftovers(&self.mirror_path);
            let room = 2 * pack_len + (1 << 20);
            if let Err(e) = room_in(&self.mirror_path, room, "indexing the pack") {
                return Err(PackError::NoRoom(format!(
                    "cannot index a peer's pack of {name} into {}: {e}",
                    self.mirror_path.display()
                )));
            }
            return Err(bad(format!(
                "the pack does not index: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        // Everything the tag reaches must be here before a ref points at it.
        let complete = git(&self.mirror_path)
            .args(["rev-list", "--objects", "--quiet", tag_oid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let complete = tokio::time::timeout(GIT_LIMIT, complete)
            .await
            .map_err(|_| bad("checking the pack took too long".to_owned()))?
            .map_err(|e| bad(format!("cannot run git rev-list: {e}")))?;
        if !complete.success() {
            return Err(bad(format!("the pack lacks objects tag {name} needs")));
        }
        let repo = fetch::open_mirror(&self.source, &self.mirror_path)?;
        let tag = repo
            .find_tag(oid)
            .map_err(|_| bad(format!("{tag_oid} is not an annotated tag")))?;
        if tag.name().ok() != Some(name) {
            return Err(bad(format!("{tag_oid} is the tag of another name")));
        }
        drop(tag);
        let reference = format!("refs/tags/{name}");
        if repo.find_reference(&reference).is_err() {
            repo.reference(&reference, oid, false, "shoal: from a peer")
                .map_err(|e| self.read_error(&format!("tag {name}"), &e))?;
        }
        let poll = self.judge_mirror(&repo, signers, state, now)?;
        drop(repo);
        drop(lock);
        Ok(poll)
    }
}

/// `git` on the mirror at `dir`, with none of the agent's environment but `PATH`, and no
/// system or global config.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("--git-dir")
        .arg(dir)
        .kill_on_drop(true);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_version_names_that_are_safe_are_asked_for() {
        for good in ["v1.0.0", "1.2.3-rc.1", "v2.0.0+build.5"] {
            assert!(tag_name_ok(good), "{good}");
        }
        for bad in [
            "../v1.0.0",
            "-v1.0.0",
            "v1.0.0 x",
            "main",
            "v1..0",
            "v1.0.0\n",
        ] {
            assert!(!tag_name_ok(bad), "{bad}");
        }
    }
}
