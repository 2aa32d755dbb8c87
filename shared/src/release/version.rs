//! Release versions: a tag or store version name that reads as semver after an optional
//! leading `v`, ordered by semver. Names that are not semver are not releases.

use std::cmp::Ordering;
use std::fmt;

/// A release version: the name as written (`v1.4.0`) and its semver reading (`1.4.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    name: String,
    semver: semver::Version,
}

/// Why a name is not a release version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a semver version (like v1.4.0 or 2.0.0-rc.1): {reason}")]
pub struct VersionError {
    /// The name as written.
    pub name: String,
    /// What semver parsing said.
    pub reason: String,
}

impl Version {
    /// Reads `name` as semver after an optional leading `v`.
    pub fn parse(name: &str) -> Result<Self, VersionError> {
        let bare = name.strip_prefix('v').unwrap_or(name);
        semver::Version::parse(bare)
            .map(|semver| Self {
                name: name.to_owned(),
                semver,
            })
            .map_err(|e| VersionError {
                name: name.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The name as written: the tag or the store directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The semver reading.
    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }
}

impl Ord for Version {
    /// Semver order (build metadata breaks ties, as `semver` orders it), then the name, so that
    /// `v1.0.0` and `1.0.0` are distinct but adjacent.
    fn cmp(&self, other: &Self) -> Ordering {
        self.semver
            .cmp(&other.semver)
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Whether `candidate` is strictly above the anti-rollback `floor` (semver precedence only, so
/// `v1.0.0` is not above a floor of `1.0.0`).
pub fn above_floor(candidate: &Version, floor: Option<&Version>) -> bool {
    floor.is_none_or(|floor| candidate.semver.cmp_precedence(&floor.semver) == Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Version {
        Version::parse(name).expect(name)
    }

    #[test]
    fn orders_as_semver_not_as_text() {
        let mut versions = [
            v("v1.10.0"),
            v("v1.9.0"),
            v("v1.10.0-rc.1"),
            v("2.0.0"),
            v("v1.9.1"),
        ];
        versions.sort();
        let names: Vec<_> = versions.iter().map(Version::name).collect();
        assert_eq!(
            names,
            ["v1.9.0", "v1.9.1", "v1.10.0-rc.1", "v1.10.0", "2.0.0"]
        );
    }

    #[test]
    fn non_semver_names_are_not_versions() {
        for name in [
            "latest",
            "v1",
            "v1.2",
            "1.2.3.4",
            "vv1.2.3",
            "release-1.2.3",
            "",
        ] {
            let err = Version::parse(name).expect_err(name);
            assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
        }
    }

    #[test]
    fn floor_is_strict_and_ignores_the_v() {
        assert!(above_floor(&v("v1.0.1"), Some(&v("v1.0.0"))));
        assert!(!above_floor(&v("v1.0.0"), Some(&v("1.0.0"))));
        assert!(!above_floor(&v("v0.9.0"), Some(&v("v1.0.0"))));
        assert!(!above_floor(
            &v("v1.0.0+build.2"),
            Some(&v("v1.0.0+build.1"))
        ));
        assert!(above_floor(&v("v0.0.1"), None));
    }
}
