//! Which application a release is for, against the group's: a release names it inside what is
//! signed (a tag's `Shoal-Application:` line, `release.yaml`'s `application:`), and a group
//! takes only releases bound to its own `application` (its name when unset). One signing key
//! may so serve many applications without one's release installing on another (cross-channel
//! replay). Refusals here say how to make the release again, bound.

use shoal_shared::release::{BindingError, TRAILER_KEY};

use super::Refusal;

/// The application a release must be bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// This one: a group's `application` (its name when unset). What every agent path uses.
    Application(&'a str),
    /// Any, as long as the release names one: only for `shoal verify` without
    /// `--application`, which reports the one it names.
    AnyApplication,
}

impl Expect<'_> {
    /// The name to show in a fix: the expected application, or a placeholder.
    fn shown(&self) -> &str {
        match self {
            Self::Application(name) => name,
            Self::AnyApplication => "APP",
        }
    }
}

/// The kind of release, for messages: each is bound, and made again, its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A signed git tag.
    Tag,
    /// A store release (`release.yaml`).
    Store,
}

/// A release and the application its refusal is about (this group's, or `APP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// What kind of release.
    pub origin: Origin,
    /// Its name: the tag, or the version directory.
    pub name: String,
    /// The application this group expects.
    pub expected: String,
}

impl Subject {
    fn new(origin: Origin, name: &str, expected: Expect<'_>) -> Self {
        Self {
            origin,
            name: name.to_owned(),
            expected: expected.shown().to_owned(),
        }
    }

    /// "tag `v1.2.0`" or "release 1.2.0".
    pub fn release(&self) -> String {
        match self.origin {
            Origin::Tag => format!("tag `{}`", self.name),
            Origin::Store => format!("release {}", self.name),
        }
    }

    /// How to make this release again, bound to the expected application: for a tag, the
    /// recipe in docs/signing-and-releases.md; for a store release, `shoal release`. Either
    /// way the name changes identity, so an agent that already recorded it (an older shoal
    /// verified it) refuses it as moved: then a new version is the way.
    pub fn remake(&self) -> String {
        let (name, app) = (&self.name, &self.expected);
        match self.origin {
            Origin::Tag => format!(
                "tag it again with `git tag -s -f {name} -m \"release {name}\" -m \"{TRAILER_KEY}: {app}\"` and `git push -f origin {name}` (or release a new version so), since shoal installs only releases bound to their application"
            ),
            Origin::Store => format!(
                "publish it again with `shoal release --application {app} --version {name} ...` (after removing `{name}/`, or as a new version), since shoal installs only releases bound to their application"
            ),
        }
    }

    /// How this group's own releases are bound.
    pub fn own(&self) -> String {
        let app = &self.expected;
        match self.origin {
            Origin::Tag => {
                format!("its own releases are tagged with the line `{TRAILER_KEY}: {app}`")
            }
            Origin::Store => {
                format!("its own releases are published with `shoal release --application {app}`")
            }
        }
    }
}

/// The refusal for a tag whose signed message names no single application.
pub(super) fn unreadable_tag(name: &str, error: &BindingError, expected: Expect<'_>) -> Refusal {
    let subject = Box::new(Subject::new(Origin::Tag, name, expected));
    let reason = error.to_string();
    match error {
        BindingError::Missing => Refusal::Unbound { subject, reason },
        BindingError::Repeated { .. } | BindingError::NotUtf8 | BindingError::Invalid { .. } => {
            Refusal::BadBinding { subject, reason }
        }
    }
}

/// The refusal for a `release.yaml` without `application:`.
pub(super) fn unbound_manifest(directory: &str, expected: Expect<'_>) -> Refusal {
    Refusal::Unbound {
        subject: Box::new(Subject::new(Origin::Store, directory, expected)),
        reason: "its release.yaml has no `application:`".to_owned(),
    }
}

/// Checks that a release `name` bound to `signed_for` is one `expected` takes.
pub(super) fn check(
    origin: Origin,
    name: &str,
    signed_for: &str,
    expected: Expect<'_>,
) -> Result<(), Refusal> {
    match expected {
        Expect::Application(app) if app != signed_for => Err(Refusal::WrongApplication {
            subject: Box::new(Subject::new(origin, name, expected)),
            signed_for: signed_for.to_owned(),
        }),
        _ => Ok(()),
    }
}
