//! A release's own `shoal.yaml`, signed with its bundle: besides the rollout policy (which the
//! watcher checks before the release may be planned), the health check that judges this release
//! and whether the previous revision's failing ApplicationStop may be gone past.

use std::path::Path;

use shoal_shared::rollout::{PolicyFileError, RawHealth, ReleaseFile, parse_release_file};
use tracing::warn;

use crate::bundle::{self, Outside};
use crate::config::{self, HealthCheck};

/// How a bundle's `shoal.yaml` is named in refusals.
pub(super) const NAME: &str = "the bundle's shoal.yaml";

/// Why a bundle's `shoal.yaml` cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// It exists but cannot be read.
    #[error("cannot read shoal.yaml in the bundle: {0}")]
    Read(std::io::Error),
    /// It is reached through a link out of the bundle.
    #[error("{NAME} is not read: {0}")]
    Outside(Outside),
    /// It is not a settings file.
    #[error("{0}")]
    File(PolicyFileError),
    /// Its `health:` has a bad value.
    #[error("{NAME}: {0}")]
    Health(String),
}

/// What a release sets for its own run, beside its rollout policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Settings {
    /// The release's health check, in place of the group's.
    pub(super) health: Option<HealthCheck>,
    /// Go on when the previous revision's ApplicationStop scripts fail.
    pub(super) ignore_application_stop_failures: bool,
}

/// Reads the `shoal.yaml` of the bundle at `tree` (nothing set when there is none) and checks
/// its `health:`.
pub(super) fn read(tree: &Path) -> Result<(ReleaseFile, Settings), ReadError> {
    let path = bundle::inside(tree, Path::new("shoal.yaml"), true).map_err(ReadError::Outside)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(ReadError::Read(e)),
    };
    let file = parse_release_file(&text, NAME).map_err(ReadError::File)?;
    let health = file.health.as_ref().map(check_health).transpose()?;
    let settings = Settings {
        health,
        ignore_application_stop_failures: file.ignore_application_stop_failures,
    };
    Ok((file, settings))
}

fn check_health(raw: &RawHealth) -> Result<HealthCheck, ReadError> {
    config::check_health(raw).map_err(ReadError::Health)
}

/// The settings of the release unpacked at `tree`, which were checked when it was prepared; a
/// file that no longer reads (changed on disk since) sets nothing, with a warning.
pub(super) fn settings(tree: &Path) -> Settings {
    read(tree).map_or_else(
        |why| {
            warn!(tree = %tree.display(), error = %why, "release settings unreadable; using the group's");
            Settings::default()
        },
        |(_, settings)| settings,
    )
}

/// The check that judges a release: its own, else the group's.
pub(super) fn health_check<'a>(
    settings: &'a Settings,
    group: Option<&'a HealthCheck>,
) -> Option<&'a HealthCheck> {
    settings.health.as_ref().or(group)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Probe;

    fn tree(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("shoal.yaml"), text).expect("write");
        dir
    }

    #[test]
    fn a_release_carries_its_health_check_and_stop_failure_setting() {
        let dir = tree(
            "rollout: {strategy: canary}\nhealth:\n  http: http://127.0.0.1:9/health\n  interval: 2s\n\
             ignore_application_stop_failures: true\n",
        );
        let (file, settings) = read(dir.path()).expect("valid");
        assert_eq!(
            file.rollout.and_then(|r| r.strategy).as_deref(),
            Some("canary")
        );
        let health = settings.health.expect("a health check");
        assert_eq!(
            health.probe,
            Probe::Http("http://127.0.0.1:9/health".into())
        );
        assert_eq!(health.interval, Duration::from_secs(2));
        assert!(settings.ignore_application_stop_failures);
    }

    #[test]
    fn a_bad_health_check_is_refused_naming_the_file_and_key() {
        for (text, expected) in [
            (
                "health: {http: https://x/health}\n",
                "the bundle's shoal.yaml: health.http: `https://x/health` is not an http:// URL",
            ),
            (
                "health: {command: true, interval: 5}\n",
                "the bundle's shoal.yaml: health.interval:",
            ),
            (
                "health: {interval: 5s}\n",
                "the bundle's shoal.yaml: health: set exactly one of",
            ),
        ] {
            let dir = tree(text);
            let error = read(dir.path()).expect_err(text).to_string();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }

    #[test]
    fn no_file_sets_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(settings(dir.path()), Settings::default());
    }
}
