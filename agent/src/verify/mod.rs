//! Verify: turn a fetched candidate (a raw tag object, or a manifest and its signature) into a
//! trusted release, or a typed refusal that says why not. Nothing of a release is used before
//! it passes here.
//!
//! A release is bound to the application it is for, inside what is signed, and a group takes
//! only releases bound to its own `application` ([`binding`]).

pub mod binding;
pub mod bundle;
pub mod state;

use shoal_shared::release::manifest::ManifestError;
use shoal_shared::release::{
    AllowedSigners, GIT_NAMESPACE, Manifest, RELEASE_NAMESPACE, SignatureError, Signer, TagError,
    split_signed_tag, tag_application,
};

pub use binding::{Expect, Origin, Subject};

use crate::bundle::BundleError;

/// Why a candidate is not a release. Each refusal is its own variant; [`Refusal::kind`] is the
/// stable name used in status JSON and metric labels.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not an SSH-signed annotated tag.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// The signature failed, or its key is not trusted for this.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `release.yaml` is not a valid manifest.
    #[error("release.yaml: {0}")]
    Manifest(#[from] ManifestError),
    /// A signed tag that tags something other than a commit.
    #[error("tag `{name}` points at a {object_type}, not a commit")]
    NotACommit {
        /// The tag.
        name: String,
        /// What it points at.
        object_type: String,
    },
    /// A signed tag whose object names a different tag (a signed tag copied to another name).
    #[error("ref `{name}` holds a tag object signed for `{signed_as}`")]
    TagNameMismatch {
        /// The ref's name.
        name: String,
        /// The name inside the signed object.
        signed_as: String,
    },
    /// A manifest whose version is not the directory it was found in.
    #[error("release.yaml in `{directory}/` says version `{manifest}`")]
    VersionMismatch {
        /// The store directory.
        directory: String,
        /// The version inside the manifest.
        manifest: String,
    },
    /// A release that names no application (made before releases were bound to one).
    #[error("{} names no application it is for ({reason}); {}", subject.release(), subject.remake())]
    Unbound {
        /// The release and the application expected.
        subject: Box<Subject>,
        /// What is missing.
        reason: String,
    },
    /// A release whose binding cannot be read: several, or an empty or odd value.
    #[error("{} has {reason}; {}", subject.release(), subject.remake())]
    BadBinding {
        /// The release and the application expected.
        subject: Box<Subject>,
        /// What is wrong.
        reason: String,
    },
    /// A release signed for another application: copied here by mistake or by an attacker.
    #[error(
        "{} is signed for application `{signed_for}`, not `{}` (this group's `application`): another application's release is never installed here; {}",
        subject.release(), subject.expected, subject.own()
    )]
    WrongApplication {
        /// The release and this group's application.
        subject: Box<Subject>,
        /// The application it is bound to.
        signed_for: String,
    },
    /// At or below the anti-rollback floor.
    #[error(
        "{version} is not above {floor}, the highest version already verified for this group; going back needs a revert or an operator rollback"
    )]
    BelowFloor {
        /// The candidate.
        version: String,
        /// The floor.
        floor: String,
    },
    /// A tag name seen before now points at another object.
    #[error(
        "tag `{name}` moved from {was} to {now}: a release never changes, so this is an accident or an attack; it stays refused"
    )]
    MovedTag {
        /// The tag.
        name: String,
        /// The tag object first seen.
        was: String,
        /// The tag object now.
        now: String,
    },
    /// A store release seen before has a different manifest now.
    #[error(
        "release {version} changed (release.yaml sha256 {was} is now {now}): a release never changes, so this is an accident or an attack; it stays refused"
    )]
    ChangedRelease {
        /// The version.
        version: String,
        /// The manifest digest first seen.
        was: String,
        /// The manifest digest now.
        now: String,
    },
    /// The bundle's bytes do not hash to the manifest's sha256.
    #[error("bundle sha256 is {actual}, but release.yaml pins {expected}")]
    DigestMismatch {
        /// The pinned digest.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// The bundle is not the size the manifest pins.
    #[error("bundle is {actual} bytes, but release.yaml pins {expected}")]
    SizeMismatch {
        /// The pinned size.
        expected: u64,
        /// What was downloaded (or at least this much, when it ran over).
        actual: u64,
    },
    /// The bundle's content is refused (paths escaping the root, links, limits, …).
    #[error("bundle refused: {0}")]
    Bundle(#[from] BundleError),
}

impl Refusal {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tag(e) => e.kind(),
            Self::Signature(e) => e.kind(),
            Self::Manifest(_) => "bad_manifest",
            Self::NotACommit { .. } => "tag_not_a_commit",
            Self::TagNameMismatch { .. } => "tag_name_mismatch",
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::Unbound { .. } => "unbound",
            Self::BadBinding { .. } => "bad_binding",
            Self::WrongApplication { .. } => "wrong_application",
            Self::BelowFloor { .. } => "below_floor",
            Self::MovedTag { .. } => "moved_tag",
            Self::ChangedRelease { .. } => "changed_release",
            Self::DigestMismatch { .. } => "digest_mismatch",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::Bundle(_) => "bundle_refused",
        }
    }
}

/// The time an `allowed_signers` key's `valid-after`/`valid-before` window is judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTime {
    /// Unix time on the agent's clock: now, for a release seen for the first time, or the
    /// time the channel state recorded when the release first verified. Never a time the
    /// signer wrote, which a retired key would backdate and a future key postdate.
    At(i64),
    /// The time the signer wrote (tagger date, manifest `created`; `otherwise` without one):
    /// how shoal judged before it recorded when a release verified. Only for a release such a
    /// version verified, so that it keeps its verdict.
    Signed {
        /// The time to use when the release carries none.
        otherwise: i64,
    },
}

/// A verified signed tag: the commit it releases, the application it is for, and who signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTag {
    /// The tagged commit id.
    pub commit: String,
    /// The application its `Shoal-Application:` line names.
    pub application: String,
    /// Who signed.
    pub signer: Signer,
}

/// Verifies the raw tag object of the tag `name` as `git verify-tag` would, with key validity
/// judged at `at` (see [`KeyTime`]), then that its signed message binds it to `expected`.
/// A refusal for the binding comes only after the signature checked out, so an untrusted tag
/// is reported as such, whatever it claims.
pub fn verify_tag(
    name: &str,
    raw: &[u8],
    signers: &AllowedSigners,
    at: KeyTime,
    expected: Expect<'_>,
) -> Result<VerifiedTag, Refusal> {
    let tag = split_signed_tag(name, raw)?;
    let at = match at {
        KeyTime::At(t) => t,
        KeyTime::Signed { otherwise } => tag.tagger_time.unwrap_or(otherwise),
    };
    let signer =
        shoal_shared::release::verify(tag.signature, tag.payload, GIT_NAMESPACE, signers, at)?;
    if tag.object_type != "commit" {
        return Err(Refusal::NotACommit {
            name: name.to_owned(),
            object_type: tag.object_type,
        });
    }
    if tag.name != name {
        return Err(Refusal::TagNameMismatch {
            name: name.to_owned(),
            signed_as: tag.name,
        });
    }
    let application =
        tag_application(tag.message).map_err(|e| binding::unreadable_tag(name, &e, expected))?;
    binding::check(Origin::Tag, name, &application, expected)?;
    Ok(VerifiedTag {
        commit: tag.object,
        application,
        signer,
    })
}

/// Verifies `release.yaml` (its exact bytes) against `release.yaml.sig`, then reads it; the
/// manifest must name the version of the `directory` it was found in, and be bound to
/// `expected`. Key validity is judged at `at` (see [`KeyTime`]).
pub fn verify_manifest(
    directory: &str,
    manifest: &[u8],
    signature: &[u8],
    signers: &AllowedSigners,
    at: KeyTime,
    expected: Expect<'_>,
) -> Result<(Manifest, Signer), Refusal> {
    let text = std::str::from_utf8(manifest).map_err(|_| {
        Refusal::Manifest(ManifestError::Syntax(
            "release.yaml is not UTF-8".to_owned(),
        ))
    })?;
    let parsed = Manifest::parse(text);
    // Only a release an older shoal verified is judged at its `created` time; nothing of the
    // manifest is trusted until the signature checks out below.
    let at = match at {
        KeyTime::At(t) => t,
        KeyTime::Signed { otherwise } => parsed.as_ref().map_or(otherwise, |m| m.created),
    };
    let signer =
        shoal_shared::release::verify(signature, manifest, RELEASE_NAMESPACE, signers, at)?;
    let parsed = parsed.map_err(|e| match e {
        ManifestError::Unbound => binding::unbound_manifest(directory, expected),
        other => Refusal::Manifest(other),
    })?;
    if parsed.version.name() != directory {
        return Err(Refusal::VersionMismatch {
            directory: directory.to_owned(),
            manifest: parsed.version.name().to_owned(),
        });
    }
    binding::check(Origin::Store, directory, &parsed.application, expected)?;
    Ok((parsed, signer))
}
