//! Releases and trust: who may sign ([`allowed_signers`]), how an SSH signature is checked
//! ([`signature`]), how a signed git tag splits into payload and signature ([`tag`]), how
//! versions order ([`version`]), the store channel's `release.yaml` ([`manifest`]), and what
//! application a release is bound to ([`binding`]), and an operator's signed order to roll a
//! group back ([`rollback`]).

pub mod allowed_signers;
pub mod binding;
pub mod manifest;
pub mod rollback;
pub mod signature;
pub mod tag;
pub mod version;

pub use allowed_signers::AllowedSigners;
pub use binding::{
    ApplicationNameError, BindingError, TRAILER_KEY, check_application, tag_application,
};
pub use manifest::Manifest;
pub use signature::{SignatureError, Signer, verify};
pub use tag::{SignedTag, TagError, split_signed_tag};
pub use version::Version;

/// The signature namespace of git tags (`git tag -s` signs with `-n git`).
pub const GIT_NAMESPACE: &str = "git";

/// The signature namespace of store releases (`ssh-keygen -Y sign -n shoal-release`).
pub const RELEASE_NAMESPACE: &str = "shoal-release";
