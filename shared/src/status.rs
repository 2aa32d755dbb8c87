//! What the status endpoint serves and `shoal status` reads: this host's groups, their
//! revisions and phases, and its deployments. The JSON shape is the stable `--json` contract,
//! so fields are only ever added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This host.
    pub node: NodeInfo,
    /// Its groups, in config order.
    pub groups: Vec<GroupStatus>,
}

/// Who this host is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `node.id` (default: the hostname).
    pub id: String,
    /// The agent's version.
    pub version: String,
    /// `node.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the agent started (RFC 3339, UTC).
    pub started: String,
    /// Whether every group has made its first channel check.
    pub ready: bool,
    /// The gossip addresses of other live hosts that gossip under this node id (cloned
    /// images, a copied config): while any does, this host takes no rollout slot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicated_by: Vec<String>,
}

/// Where a group is in its life on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Not yet checked its channel.
    Starting,
    /// Waiting for a new release.
    Idle,
    /// A release verified; waiting for its turn in the group's rollout.
    Waiting,
    /// The group's rollout of the target is halted.
    Halted,
    /// Running the lifecycle of a new revision.
    Deploying,
    /// Hooks done; the health check must hold for `min_healthy_time`.
    CheckingHealth,
    /// Going back to the last known good revision.
    Reverting,
    /// The last deployment failed and nothing was (or could be) reverted.
    Failed,
    /// The agent is shutting down.
    Stopping,
}

impl Phase {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Idle => "idle",
            Self::Waiting => "waiting",
            Self::Halted => "halted",
            Self::Deploying => "deploying",
            Self::CheckingHealth => "checking-health",
            Self::Reverting => "reverting",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
        }
    }
}

/// The result of the group's health check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The group has no health check.
    #[default]
    None,
    /// Not checked yet.
    Unknown,
    /// The last check passed.
    Healthy,
    /// The last check failed.
    Unhealthy,
}

impl Health {
    /// Its name in the status JSON and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One group on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// Application name.
    pub application: String,
    /// Where releases come from (credentials never shown).
    pub channel: String,
    /// The revision installed and running, if any.
    pub current_revision: Option<String>,
    /// The newest revision that completed here and passed its health checks.
    pub last_known_good: Option<String>,
    /// The revision being deployed (or reverted to), if any.
    pub target_revision: Option<String>,
    /// What the group is doing.
    pub phase: Phase,
    /// The lifecycle event running now.
    pub current_event: Option<String>,
    /// When it began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_since: Option<String>,
    /// The anti-rollback floor: the highest version verified.
    pub floor: Option<String>,
    /// The health check's last result.
    pub health: Health,
    /// When the channel was last checked (RFC 3339).
    pub last_check: Option<String>,
    /// The last time a channel check, or the fetch of the release it found, failed, and why
    /// (cleared by a good check).
    pub last_channel_error: Option<Notice>,
    /// The newest deployment on this host.
    pub last_deployment: Option<DeploymentSummary>,
    /// The newest deployment that failed or was cut short (when a revert followed, the
    /// revert is `last_deployment`).
    #[serde(default)]
    pub last_failure: Option<DeploymentSummary>,
    /// The newest release refused.
    pub last_refusal: Option<Refusal>,
    /// This host's part in the group's rollout of its target, if it has one.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// The newest release this host verified, and who signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// Whether this host polls a remote channel's origin for the group, once it has heard the
    /// mesh (`false`: the group's few pollers do, and gossip announces their releases);
    /// absent for a local channel and without a mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<bool>,
}

/// A release this host verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The release (tag or store version).
    pub name: String,
    /// Who signed it: the principal of `allowed_signers` whose key verified it.
    pub signer: String,
    /// When (RFC 3339).
    pub when: String,
}

/// This host's part in a group's rollout. Times are RFC 3339.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The deployment id (the same on every host of the group).
    pub deployment: String,
    /// The release.
    pub revision: String,
    /// `waiting`, `running`, `done`, `failed`, `reverting` or `reverted`.
    pub step: String,
    /// Why it is not starting yet, while waiting.
    pub waiting_for: Option<String>,
    /// Its place in the rollout order (0 first) among `members` known members.
    pub position: Option<usize>,
    /// Members of the group it knows, itself included.
    pub members: usize,
    /// The halt in force, if any.
    pub halted: Option<HaltInfo>,
    /// It is one of the deployment's canaries.
    #[serde(default)]
    pub canary: bool,
    /// The canaries are done and the rollout waits for `shoal promote <group>`.
    #[serde(default)]
    pub promote_pending: bool,
    /// When this host learned of the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// When its step began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_since: Option<String>,
    /// While the rollout goes on: when it fails for standing still, unless a host moves
    /// before (the last progress this host saw plus the policy's `progress_deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// When it became done on the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
    /// When it failed on the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// The last lines of its failed script's output (empty where logs are private to the
    /// reader: see `status.public_logs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_output: Vec<String>,
}

/// A halted rollout: which host's failure (or which operator) halted it, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltInfo {
    /// The host that failed, or the host the operator halted from.
    pub host: String,
    /// Why.
    pub reason: String,
    /// When that host failed (RFC 3339), if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The last lines of the failed script's output, as that host gossips them (empty where
    /// logs are private to the reader: see `status.public_logs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// Output was left out because logs are private to the reader.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_hidden: bool,
    /// The operator who halted it (`user@node`); none for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `GET /v1/fleet`: every node the mesh knows, and each group's rollout, from gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    /// The node that answered.
    pub node: String,
    /// Every node, alive or dead, by id.
    pub nodes: Vec<FleetNode>,
    /// Every group any node belongs to, by name.
    pub groups: Vec<FleetGroup>,
}

/// One node of the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetNode {
    /// Node id.
    pub id: String,
    /// Whether the failure detector of the answering node deems it alive.
    pub alive: bool,
    /// Several live hosts gossip under this node id: none of them takes a rollout slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Its groups.
    pub groups: Vec<FleetNodeGroup>,
}

/// One group on one node. Times are RFC 3339, on that node's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetNodeGroup {
    /// Group name.
    pub name: String,
    /// The revision it runs: the one it moves to once that one's files are installed.
    pub revision: Option<String>,
    /// Its step in the group's newest deployment (`waiting`, `running`, `done`, `failed`,
    /// `reverting`, `reverted`), or `idle`.
    pub phase: String,
    /// Its health.
    pub health: Health,
    /// The revision it moves to, while not done with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// It is one of the deployment's canaries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    /// The lifecycle event it runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// When that event began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_since: Option<String>,
    /// When its phase began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<String>,
    /// Why it waits, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Why it failed, when it failed on the group's deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// One group's rollout across the mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetGroup {
    /// Group name.
    pub name: String,
    /// The newest deployment any member works on.
    pub deployment: Option<String>,
    /// Its release.
    pub target: Option<String>,
    /// Members done with it.
    pub done: usize,
    /// Members of the group (alive or dead).
    pub total: usize,
    /// The halt in force, if any member knows one for it.
    pub halted: Option<HaltInfo>,
    /// Members running it now.
    #[serde(default)]
    pub running: usize,
    /// Members it failed on.
    #[serde(default)]
    pub failed: usize,
    /// When the first member learned of it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When the last member became done with it, once every member is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// While it goes on: when it fails for standing still, unless a host moves before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The canaries are done and it waits for `shoal promote <group>`.
    #[serde(default)]
    pub promote_pending: bool,
    /// Who promoted it (`user@node`), once promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    /// Who last resumed it (`user@node`), once resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_by: Option<String>,
    /// When it is an operator's rollback (`shoal rollback`): what it rolls back from, and who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackInfo>,
}

/// An operator's rollback, as the fleet view shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackInfo {
    /// The release rolled back from.
    pub from: String,
    /// Who gave the order (`user@node`).
    pub by: String,
    /// Who signed it (the principal of `allowed_signers`, as the members that took it read
    /// it).
    pub signer: String,
    /// When it was given (RFC 3339).
    pub issued: String,
}

/// The optional body of `POST /v1/groups/{group}/halt` (resume and promote take none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltRequest {
    /// Why the operator halts the rollout.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /v1/groups/{group}/forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetRequest {
    /// The node id of the member to forget.
    pub node: String,
}

/// The body of `POST /v1/groups/{group}/rollback`. Without `order`: asks for the order to
/// sign, back to `to` (else the newest release below the floor this host ran). With `order`
/// and its `signature`: gives the signed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The release to go back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The order's text, as the first call answered it and as signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// The armored SSH signature of `order` (namespace `shoal-rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The answer of `POST /v1/groups/{group}/rollback`: the order to sign (`200`), or the order
/// given (`202`; the group then rolls back as a rollout of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackAnswer {
    /// Group name.
    pub group: String,
    /// The order's text.
    pub order: String,
    /// The deployment that rolls the group back.
    pub deployment: String,
    /// The release rolled back from (the newest this host verified).
    pub from: String,
    /// The release rolled back to.
    pub to: String,
    /// Whether the order was given (else it is to be signed).
    #[serde(default)]
    pub given: bool,
    /// Who signed it, once given (the principal of `allowed_signers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Whether the agent gossips with a mesh, so the order spreads to the group.
    #[serde(default)]
    pub gossip: bool,
}

/// The `202 Accepted` answer of `POST /v1/groups/{group}/{halt|resume|promote}`: the command
/// is recorded on this host, which publishes it to the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAccepted {
    /// Group name.
    pub group: String,
    /// `halt`, `resume` or `promote`.
    pub action: String,
    /// The deployment it applies to.
    pub deployment: String,
    /// Whether the agent gossips with a mesh, so the command spreads to the group's other
    /// members (an agent without a mesh is a group of one).
    #[serde(default)]
    pub gossip: bool,
}

impl GroupStatus {
    /// A group that has not checked its channel yet: nothing known beyond its names.
    pub fn starting(name: &str, application: &str, channel: &str) -> Self {
        Self {
            name: name.to_owned(),
            application: application.to_owned(),
            channel: channel.to_owned(),
            current_revision: None,
            last_known_good: None,
            target_revision: None,
            phase: Phase::Starting,
            current_event: None,
            event_since: None,
            floor: None,
            health: Health::None,
            last_check: None,
            last_channel_error: None,
            last_deployment: None,
            last_failure: None,
            last_refusal: None,
            rollout: None,
            verified: None,
            polls: None,
        }
    }

    /// Whether the group has looked at its channel once (a failed look counts), or left it
    /// to its pollers once the mesh was heard (and stays so if it becomes a poller later).
    pub fn has_checked(&self) -> bool {
        let left_to_pollers = self.polls.is_some() && self.phase != Phase::Starting;
        self.last_check.is_some() || self.last_channel_error.is_some() || left_to_pollers
    }
}

/// Something that happened, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What.
    pub message: String,
    /// When (RFC 3339).
    pub when: String,
}

/// A refused release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The tag or version refused.
    pub name: String,
    /// A stable name for the reason (also the metric label), e.g. `unsigned_tag`.
    pub kind: String,
    /// The reason, in a sentence.
    pub reason: String,
    /// When it was refused (RFC 3339).
    pub when: String,
}

/// One deployment on this host (`GET /v1/deployments`, and `last_deployment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSummary {
    /// `d-` + 12 hex digits, the same on every host of the group; a local retry adds `.N`.
    pub id: String,
    /// Deployment group.
    pub group: String,
    /// The revision deployed.
    pub revision: String,
    /// The revision it replaced, if any.
    pub previous_revision: Option<String>,
    /// The deployment this one reverts, when it is a revert.
    pub reverts: Option<String>,
    /// `in-progress`, `succeeded`, `failed` or `interrupted`.
    pub result: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339), once ended.
    pub finished: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Events in the order they ran.
    pub events: Vec<EventSummary>,
}

/// One lifecycle event of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    /// Event name, e.g. `ValidateService`.
    pub name: String,
    /// `succeeded`, `failed`, `skipped`, `failed-ignored`, `in-progress`, `interrupted`.
    pub status: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The exit code of its last script, when that script exited.
    pub exit_code: Option<i32>,
    /// Why it failed, or what to know about it.
    pub message: Option<String>,
}

/// `GET /v1/deployments/{id}`: the summary, the warnings and the end of the hook output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    /// The deployment.
    #[serde(flatten)]
    pub summary: DeploymentSummary,
    /// Warnings (AppSpec, scripts).
    pub warnings: Vec<String>,
    /// The last lines of `logs/scripts.log` (at most about 64 KiB, starting at a line); empty
    /// when no hook has written anything yet.
    pub log_tail: String,
    /// The size of `logs/scripts.log` in bytes: more than `log_tail` holds when the tail was cut.
    #[serde(default)]
    pub log_size: u64,
    /// The tail was left out: hook output needs the admin token (`status.public_logs` off).
    #[serde(default)]
    pub log_hidden: bool,
}

/// `GET /ready` (200 when ready, 503 when not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether every group has made its first channel check.
    pub ready: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// The groups that have not checked their channel yet.
    #[serde(default)]
    pub waiting: Vec<String>,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_checked_after_a_look_or_once_it_left_the_look_to_its_pollers() {
        let mut group = GroupStatus::starting("web", "shop", "git");
        assert!(!group.has_checked(), "nothing yet");
        group.polls = Some(true);
        assert!(
            !group.has_checked(),
            "a poller whose first look has not ended"
        );
        group.last_check = Some("2026-12-07T00:00:00Z".to_owned());
        group.phase = Phase::Idle;
        assert!(group.has_checked(), "a poller that looked");

        let mut group = GroupStatus::starting("web", "shop", "git");
        group.polls = Some(false);
        group.phase = Phase::Idle;
        assert!(
            group.has_checked(),
            "a host that heard the mesh and leaves it to the pollers"
        );
        group.polls = Some(true);
        assert!(
            group.has_checked(),
            "and stays checked when it becomes a poller"
        );
    }

    #[test]
    fn phases_serialize_as_their_names() {
        for phase in [
            Phase::Starting,
            Phase::Idle,
            Phase::Deploying,
            Phase::CheckingHealth,
            Phase::Reverting,
            Phase::Failed,
            Phase::Stopping,
        ] {
            let json = serde_json_like(phase.as_str());
            let back: Phase = serde_saphyr::from_str(&json).expect("phase");
            assert_eq!(back, phase);
        }
    }

    fn serde_json_like(name: &str) -> String {
        format!("\"{name}\"")
    }
}
