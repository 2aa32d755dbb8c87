//! The journal of one group on one host: what it runs, its last known good revision, the
//! deployment in flight with the step it is at, and the planner's memory. The agent writes it
//! durably before each step starts, so a restarted agent always knows what was cut short;
//! [`super::host::GroupHost`] decides every change to it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::Memory;

/// The journal format; a newer agent reads older ones.
pub const FORMAT: u32 = 1;

/// The directory, inside a deployment directory, that keeps the bundle it installed: a revert
/// reinstalls the revision from there.
pub const ARCHIVE_DIR: &str = "deployment-archive";

/// The step of a deployment before any lifecycle event: unpacking and checking the bundle.
pub const PREPARE: &str = "Prepare";

/// The step after the hooks: the health window.
pub const HEALTH_CHECK: &str = "HealthCheck";

/// A revision installed on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Version name (tag or store version).
    pub revision: String,
    /// Content digest (`git:<commit>` or `sha256:<hex>`).
    pub digest: String,
    /// The deployment directory it was installed from (its [`ARCHIVE_DIR`] is the bundle a
    /// revert reinstalls).
    pub dir: PathBuf,
}

impl Installed {
    /// The bundle a revert to this revision installs.
    pub fn archive(&self) -> PathBuf {
        self.dir.join(ARCHIVE_DIR)
    }
}

/// A deployment that has started and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// The deployment id (the same on every host of the group).
    pub deployment_id: String,
    /// The revision being installed.
    pub revision: String,
    /// Its digest.
    pub digest: String,
    /// The directory of its files (release cache tree, or the archive of the revision reverted to).
    pub bundle: PathBuf,
    /// The deployment this one reverts, when it is a revert.
    pub reverts: Option<String>,
    /// Whether a failure of this deployment reverts to the last known good revision.
    pub auto_revert: bool,
    /// The deployment directory, once created.
    pub dir: Option<PathBuf>,
    /// The step about to run or running: [`PREPARE`], a lifecycle event, or [`HEALTH_CHECK`].
    pub step: String,
    /// When the deployment started (ms since the epoch).
    pub started_ms: u64,
    /// How many times this revert has been tried (a revert cut short is tried again, a few times).
    #[serde(default)]
    pub attempt: u32,
    /// The agent stopped it on purpose (a shutdown or restart), at an event boundary: a
    /// planned stop, not a crash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl InFlight {
    /// Whether it is a revert.
    pub fn is_revert(&self) -> bool {
        self.reverts.is_some()
    }
}

/// One group's journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: u32,
    /// What is installed now (it may have failed: see `last_known_good`).
    pub current: Option<Installed>,
    /// The newest revision that completed here and passed its health checks.
    pub last_known_good: Option<Installed>,
    /// The deployment cut short or running.
    pub in_flight: Option<InFlight>,
    /// The newest revision a deployment was started for (so a release verified just before a
    /// crash is still deployed after it).
    pub last_target: Option<String>,
    /// The last known good revision before `last_known_good`: where a host goes back when the
    /// group halts a rollout this host had completed.
    #[serde(default)]
    pub previous: Option<Installed>,
    /// The rollout planner's memory (its step, the halts it knows, the members it remembers).
    #[serde(default)]
    pub plan: Option<Memory>,
}

impl Journal {
    /// An empty journal of the current format.
    pub fn empty() -> Self {
        Self {
            format: FORMAT,
            ..Self::default()
        }
    }

    /// The installed revision with `digest` that a revert can go back to, if this host has it.
    pub fn installed(&self, digest: &str) -> Option<&Installed> {
        [&self.previous, &self.last_known_good, &self.current]
            .into_iter()
            .flatten()
            .find(|i| i.digest == digest)
    }

    /// The deployment directory of the run in flight, if it made one.
    pub fn in_flight_dir(&self) -> Option<&Path> {
        self.in_flight.as_ref()?.dir.as_deref()
    }
}
