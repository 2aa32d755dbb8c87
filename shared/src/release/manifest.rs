//! `release.yaml`, the manifest of a store-channel release: its version, the application it
//! is for, the bundle it pins (path, sha256, size), when it was made, and optionally its
//! rollout policy. The signature (`release.yaml.sig`) covers these exact bytes, so the bundle
//! is trusted through them.

use serde::{Deserialize, Serialize};

use super::binding::check_application;
use super::version::Version;
use crate::rollout::RawPolicy;
use crate::time::{format_rfc3339, parse_rfc3339};
use crate::yaml_limits;

/// Bundle file endings a release may name.
pub const BUNDLE_SUFFIXES: [&str; 4] = [".tar.gz", ".tgz", ".tar", ".zip"];

/// A checked release manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The release version; must equal the store directory it sits in.
    pub version: Version,
    /// The application the release is for (`application:`); an agent installs it only in
    /// groups whose `application` is this (see [`super::binding`]).
    pub application: String,
    /// The bundle, beside `release.yaml`.
    pub bundle: BundleRef,
    /// When the release was made, in seconds since the Unix epoch (the time the signing key's
    /// validity is checked at).
    pub created: i64,
    /// The rollout policy the release carries, if any.
    pub rollout: Option<RawPolicy>,
}

/// The bundle a manifest pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRef {
    /// File name beside `release.yaml`, e.g. `bundle.tar.gz`.
    pub path: String,
    /// Lowercase hex sha256 of the bundle's bytes.
    pub sha256: String,
    /// The bundle's size in bytes.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    version: String,
    // Optional here only so that a manifest without it gets its own refusal (`Unbound`).
    #[serde(default)]
    application: Option<String>,
    created: String,
    bundle: RawBundle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<RawPolicy>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    path: String,
    sha256: String,
    size: u64,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML of the manifest's shape (the message names the line and key).
    #[error("{0}")]
    Syntax(String),
    /// A key has a value that is not accepted.
    #[error("{key}: {message}")]
    Value {
        /// The key, e.g. `bundle.sha256`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// No `application:` key: a manifest from before releases named their application.
    #[error(
        "names no application (no `application:` key); publish it again with `shoal release --application NAME`"
    )]
    Unbound,
}

impl Manifest {
    /// Reads and checks the text of a `release.yaml`.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let limits = yaml_limits::MANIFEST;
        let raw: RawManifest = serde_saphyr::from_str_with_options(text, limits.options())
            .map_err(|e| match limits.refusal(&e) {
                Some(sentence) => ManifestError::Syntax(match e.location() {
                    Some(at) if at.line() > 0 => format!("line {}: {sentence}", at.line()),
                    _ => sentence,
                }),
                None => ManifestError::Syntax(e.to_string()),
            })?;
        let value = |key: &str, message: String| ManifestError::Value {
            key: key.to_owned(),
            message,
        };
        let version = Version::parse(&raw.version).map_err(|e| value("version", e.to_string()))?;
        let application = raw.application.ok_or(ManifestError::Unbound)?;
        check_application(&application).map_err(|e| value("application", e.to_string()))?;
        let created = parse_rfc3339(&raw.created).ok_or_else(|| {
            value(
                "created",
                format!(
                    "`{}` is not a UTC time like 2026-11-21T19:57:40Z",
                    raw.created
                ),
            )
        })?;
        check_bundle_path(&raw.bundle.path).map_err(|e| value("bundle.path", e.to_string()))?;
        let sha = &raw.bundle.sha256;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(value(
                "bundle.sha256",
                format!("`{sha}` is not 64 lowercase hex digits"),
            ));
        }
        if let Some(policy) = &raw.rollout {
            policy
                .check(&crate::rollout::Policy::default())
                .map_err(|e| value(&format!("rollout.{}", e.key), e.message))?;
        }
        Ok(Self {
            version,
            application,
            bundle: BundleRef {
                path: raw.bundle.path,
                sha256: raw.bundle.sha256,
                size: raw.bundle.size,
            },
            created,
            rollout: raw.rollout,
        })
    }

    /// The manifest as `release.yaml` text; [`Manifest::parse`] reads it back equal.
    pub fn render(&self) -> String {
        let raw = RawManifest {
            version: self.version.name().to_owned(),
            application: Some(self.application.clone()),
            created: format_rfc3339(self.created),
            bundle: RawBundle {
                path: self.bundle.path.clone(),
                sha256: self.bundle.sha256.clone(),
                size: self.bundle.size,
            },
            rollout: self.rollout.clone(),
        };
        // Serialising plain strings, integers and booleans cannot fail.
        serde_saphyr::to_string(&raw).unwrap_or_default()
    }
}

/// Why a `bundle.path` is refused; the sentence follows the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BundlePathError {
    /// Not one plain file name: it could point elsewhere.
    #[error("`{0}` must be a plain file name beside release.yaml, like bundle.tar.gz")]
    NotPlain(String),
    /// Not a bundle's ending.
    #[error("`{0}` must end in .tar.gz, .tgz, .tar or .zip")]
    Suffix(String),
}

/// A bundle path is one file name with a bundle ending: nothing that could point elsewhere.
fn check_bundle_path(path: &str) -> Result<(), BundlePathError> {
    if path.is_empty()
        || path.contains('/')
        || path.contains('\\')
        || path.starts_with('.')
        || path.contains('\0')
    {
        return Err(BundlePathError::NotPlain(path.to_owned()));
    }
    if !BUNDLE_SUFFIXES.iter().any(|s| path.ends_with(s)) {
        return Err(BundlePathError::Suffix(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn text(path: &str, sha: &str) -> String {
        format!(
            "version: v1.4.0\napplication: web\ncreated: 2026-11-21T19:57:40Z\nbundle:\n  path: {path}\n  sha256: {sha}\n  size: 1234\n"
        )
    }

    #[test]
    fn reads_and_writes_the_same_manifest() {
        let manifest = Manifest::parse(&text("bundle.tar.gz", SHA)).expect("valid");
        assert_eq!(manifest.version.name(), "v1.4.0");
        assert_eq!(manifest.application, "web");
        assert_eq!(manifest.bundle.size, 1234);
        assert_eq!(manifest.created, 1_795_291_060);
        assert_eq!(Manifest::parse(&manifest.render()), Ok(manifest));
    }

    #[test]
    fn carries_a_rollout_policy() {
        let yaml = format!(
            "{}rollout:\n  strategy: canary\n  canary: 1\n",
            text("b.zip", SHA)
        );
        let manifest = Manifest::parse(&yaml).expect("valid");
        assert_eq!(
            manifest
                .rollout
                .as_ref()
                .and_then(|r| r.strategy.as_deref()),
            Some("canary")
        );
        assert_eq!(Manifest::parse(&manifest.render()), Ok(manifest));
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (
                text("../evil.tar.gz", SHA),
                "bundle.path: `../evil.tar.gz` must be a plain file name",
            ),
            (text("sub/b.tar.gz", SHA), "bundle.path"),
            (
                text("bundle.exe", SHA),
                "bundle.path: `bundle.exe` must end in .tar.gz",
            ),
            (text("b.tar", &SHA.to_uppercase()), "bundle.sha256: "),
            (text("b.tar", "abc"), "bundle.sha256"),
            (
                text("b.tar", SHA).replace("v1.4.0", "latest"),
                "version: `latest` is not a semver version",
            ),
            (
                text("b.tar", SHA).replace("application: web", "application: ''"),
                "application: must not be empty",
            ),
            (
                text("b.tar", SHA).replace("2026-11-21T19:57:40Z", "yesterday"),
                "created: `yesterday`",
            ),
            (
                format!("{}rollout:\n  strategy: big-bang\n", text("b.tar", SHA)),
                "rollout.strategy: `big-bang`",
            ),
        ];
        for (yaml, expected) in cases {
            let err = Manifest::parse(&yaml).expect_err(&yaml);
            assert!(err.to_string().starts_with(expected), "{yaml}\n=> {err}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_keys_are_refused() {
        let extra = format!("{}signer: mallory\n", text("b.tar", SHA));
        assert!(
            Manifest::parse(&extra)
                .expect_err("extra")
                .to_string()
                .contains("signer")
        );
        let missing = "version: v1.0.0\napplication: web\ncreated: 2026-11-21T19:57:40Z\n";
        assert!(
            Manifest::parse(missing)
                .expect_err("missing")
                .to_string()
                .contains("bundle")
        );
    }

    #[test]
    fn a_manifest_without_an_application_is_unbound() {
        let old = text("b.tar", SHA).replace("application: web\n", "");
        assert_eq!(Manifest::parse(&old), Err(ManifestError::Unbound));
    }
}
