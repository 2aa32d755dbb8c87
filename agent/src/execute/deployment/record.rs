//! What happened in a deployment, kept as `shoal-deployment.json` in its directory and
//! rewritten after each event, so `shoal status`/`logs` and a restarted agent can read it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::execute::layout::{Layout, write_atomically};

/// How an event or a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Still running (or the agent died while it ran).
    InProgress,
    /// Done and fine.
    Succeeded,
    /// Done and failed.
    Failed,
    /// Not run because an earlier event failed.
    Skipped,
    /// Failed, but the deployment went on (`--ignore-application-stop-failures`).
    Ignored,
    /// Cut short: the agent died or was stopped while it ran.
    Interrupted,
}

impl Status {
    /// The lowercase name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Ignored => "failed-ignored",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One script of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRecord {
    /// Location as written in the AppSpec.
    pub location: String,
    /// `succeeded`, `failed`, `timed-out`, or the error kind.
    pub result: String,
    /// Exit code, when the script exited.
    pub exit_code: Option<i32>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Event name, e.g. `AfterInstall`.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Scripts run, in order.
    pub scripts: Vec<ScriptRecord>,
    /// Why it failed, or what to know about it.
    pub message: Option<String>,
}

/// The whole deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// `d-…` id.
    pub deployment_id: String,
    /// Deployment group.
    pub group: String,
    /// Application name.
    pub application: String,
    /// The revision deployed.
    pub revision: String,
    /// The revision this one replaces, if any.
    pub previous_revision: Option<String>,
    /// The deployment this one reverts (it reinstalls the last known good revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    /// Where the bundle came from.
    pub bundle: String,
    /// How it ended (so far).
    pub status: Status,
    /// Start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// End, milliseconds since the Unix epoch.
    pub finished_at_ms: Option<u64>,
    /// Events in the order they ran.
    pub events: Vec<EventRecord>,
    /// Warnings (AppSpec warnings, output left open, …).
    pub warnings: Vec<String>,
    /// Why the deployment failed.
    pub error: Option<String>,
}

impl DeploymentRecord {
    /// Writes the record into `deployment_dir`, replacing the previous one atomically.
    pub fn save(&self, deployment_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(&Layout::record_file(deployment_dir), &json)
    }

    /// Reads the record of `deployment_dir`, if it has one.
    pub fn load(deployment_dir: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(Layout::record_file(deployment_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub use crate::clock::now_ms;

/// A duration in whole milliseconds.
pub fn millis(duration: Duration) -> u64 {
    duration.as_millis().try_into().unwrap_or(u64::MAX)
}
