//! What happened to a group's rollouts, as the fleet saw it: the events every host records in
//! its history (`shoal history`) and the ones it sends as notifications (`notify:`).

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new release reached the group (a member verified it).
    ReleaseSeen,
    /// The first member started it.
    RolloutStarted,
    /// A member's deployment of it failed.
    HostFailed,
    /// Its rollout halted (a failure, or an operator).
    Halted,
    /// An operator resumed it.
    Resumed,
    /// An operator promoted it past its canaries.
    Promoted,
    /// Every member is done with it.
    Completed,
    /// An operator rolled the group back to an older release.
    RolledBack,
}

impl EventKind {
    /// Every kind, in the order a rollout meets them.
    pub const ALL: [EventKind; 8] = [
        Self::ReleaseSeen,
        Self::RolloutStarted,
        Self::HostFailed,
        Self::Halted,
        Self::Resumed,
        Self::Promoted,
        Self::Completed,
        Self::RolledBack,
    ];

    /// The name in JSON, in `notify:` filters and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReleaseSeen => "release_seen",
            Self::RolloutStarted => "rollout_started",
            Self::HostFailed => "host_failed",
            Self::Halted => "halted",
            Self::Resumed => "resumed",
            Self::Promoted => "promoted",
            Self::Completed => "completed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event of a group's rollout. Sent as the JSON body of a webhook and on a notify
/// command's stdin; fields are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetEvent {
    /// What happened.
    pub event: EventKind,
    /// The group.
    pub group: String,
    /// The deployment it is about.
    pub deployment: String,
    /// Its release.
    pub revision: String,
    /// When it was seen (RFC 3339, the sending host's clock).
    pub at: String,
    /// The host it is about: the one that failed, halted, or took the operator's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The operator, for commands: `user@node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why: a failure's or a halt's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The failed script's last lines, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// The node that sent the notification.
    #[serde(default)]
    pub node: String,
}
