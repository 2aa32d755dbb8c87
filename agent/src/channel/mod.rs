//! Release channels: where releases come from. A channel lists candidates (signed git tags,
//! or store releases), hands each to [`crate::verify`], and materialises a verified release's
//! bundle into the content-addressed [`cache`].
//!
//! Gossip may hint that a release exists, but only a channel's own fetch and signature check
//! make it a release.

pub mod cache;
pub mod git;
pub mod store;
pub mod watch;

use std::fmt;
use std::time::Duration;

use shoal_shared::release::{Signer, Version};
use shoal_shared::rollout::RawPolicy;

use crate::verify::Refusal;

/// What identifies a release's content: the git commit, or the sha256 of the store bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digest {
    /// A git commit id (hex).
    Commit(String),
    /// The lowercase hex sha256 of a bundle archive.
    Sha256(String),
}

impl Digest {
    /// A name safe as one path component: `git-<commit>` or `sha256-<hex>`.
    pub fn file_name(&self) -> String {
        match self {
            Self::Commit(id) => format!("git-{id}"),
            Self::Sha256(hex) => format!("sha256-{hex}"),
        }
    }

    /// The digest as it is displayed (`git:<commit>`, `sha256:<hex>`), which is how journals
    /// and gossip carry it; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Self::split(text, ':')
    }

    /// The digest a cache entry named by [`Digest::file_name`] holds; `None` for other names.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::split(name, '-')
    }

    fn split(text: &str, separator: char) -> Option<Self> {
        let (kind, hex) = text.split_once(separator)?;
        let hex_ok = !hex.is_empty()
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match kind {
            "git" if hex_ok => Some(Self::Commit(hex.to_owned())),
            "sha256" if hex_ok && hex.len() == 64 => Some(Self::Sha256(hex.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Commit(id) => write!(f, "git:{id}"),
            Self::Sha256(hex) => write!(f, "sha256:{hex}"),
        }
    }
}

/// A release whose signature verified against `allowed_signers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The tag or store version.
    pub version: Version,
    /// What the content is.
    pub digest: Digest,
    /// Who signed it.
    pub signer: Signer,
    /// The rollout policy the release carries (store manifests; git releases carry theirs in
    /// the bundle's `shoal.yaml`).
    pub rollout: Option<RawPolicy>,
    /// Variables for every hook script: `BUNDLE_COMMIT` (git) or `BUNDLE_*` (store), as the
    /// CodeDeploy agent sets them for GitHub and S3 revisions.
    pub env: Vec<(String, String)>,
}

/// What one look at a channel found.
#[derive(Debug, Default)]
pub struct Poll {
    /// The newest release above the floor that verified, if any.
    pub newest: Option<Release>,
    /// Candidates that were refused, newest first, each with its reason: bad signatures, moved
    /// names, and new versions at or below the floor (reported at their first sighting).
    pub refusals: Vec<(String, Refusal)>,
    /// Names that are not releases (not semver), with why; reported once per name.
    pub ignored: Vec<(String, String)>,
    /// Object names a store channel skipped because they cannot be read (`prefix//x`, `.` or
    /// `..` segments, control characters, not UTF-8), escaped; reported once per name.
    pub unreadable: Vec<String>,
}

/// The wait before the next poll of a remote channel: `poll` ±10 %, so hosts that started
/// together do not poll in step. `unit` is a random number in [0, 1) from the caller's
/// (seedable) source.
pub fn jittered(poll: Duration, unit: f64) -> Duration {
    let factor = 0.9 + 0.2 * unit.clamp(0.0, 1.0);
    poll.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let poll = Duration::from_secs(30);
        assert_eq!(jittered(poll, 0.0), Duration::from_secs(27));
        assert_eq!(jittered(poll, 0.5), Duration::from_secs(30));
        assert_eq!(jittered(poll, 1.0), Duration::from_secs(33));
        assert_eq!(jittered(poll, 7.0), Duration::from_secs(33));
    }

    #[test]
    fn digests_name_their_kind() {
        assert_eq!(Digest::Commit("ab".into()).to_string(), "git:ab");
        assert_eq!(Digest::Sha256("cd".into()).file_name(), "sha256-cd");
    }

    #[test]
    fn digests_read_back_from_their_text_and_file_names() {
        let sha = Digest::Sha256("0f".repeat(32));
        let commit = Digest::Commit("ab12".into());
        for digest in [&sha, &commit] {
            assert_eq!(Digest::parse(&digest.to_string()).as_ref(), Some(digest));
            assert_eq!(
                Digest::from_file_name(&digest.file_name()).as_ref(),
                Some(digest)
            );
        }
        for bad in [
            "git:",
            "git:AB",
            "sha256:0f",
            "md5:00",
            "git:../x",
            "git-ab.partial",
        ] {
            assert_eq!(Digest::parse(bad), None, "{bad}");
            assert_eq!(Digest::from_file_name(bad), None, "{bad}");
        }
    }
}
