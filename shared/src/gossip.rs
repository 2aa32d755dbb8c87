//! Every key a node publishes over gossip, and how its value is written.
//!
//! A node owns its own key space and only writes there; peers read it. Values are small compact
//! JSON objects (ids, digests, steps, counters — never manifests: chitchat sends a value whole in
//! one datagram). Every value carries `"v"`, the encoding version. A reader accepts any `v` it
//! knows how to read and ignores fields it does not know, so agents of the next shoal version
//! can add fields while older agents still read the rest during an upgrade of shoal itself.
//!
//! | key | value |
//! |---|---|
//! | `groups` | [`Groups`]: the groups this node belongs to |
//! | `g:<group>:state` | [`GroupState`]: current revision, target, step, health |
//! | `g:<group>:halt` | [`Halt`]: the newest halt this node knows for the group |
//! | `g:<group>:resume` | [`Resume`]: the newest `shoal resume` this node knows |
//! | `g:<group>:promote` | [`Promote`]: the newest `shoal promote` this node knows |
//! | `g:<group>:live` | [`Live`]: what the node is doing in its deployment, for people to watch |
//! | `g:<group>:rollback` | [`Rollback`]: the operator's signed rollback order the node took |
//!
//! Group and node names are letters, digits, `-`, `_` and `.`, so `:` separates safely.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::status::Health;

/// The encoding version written into every value.
pub const VERSION: u32 = 1;

/// The oldest encoding version this build reads.
pub const OLDEST_READABLE: u32 = 1;

/// Longest reason text published; longer ones are cut at a character boundary.
pub const MAX_REASON: usize = 200;

/// Longest value this build accepts from a peer (bytes); gossip values are small by design.
pub const MAX_VALUE: usize = 4096;

/// The key listing the node's groups.
pub const GROUPS_KEY: &str = "groups";

/// Key prefix of everything about one group (`g:<group>:`).
pub fn group_prefix(group: &str) -> String {
    format!("g:{group}:")
}

/// The key of a group's [`GroupState`].
pub fn state_key(group: &str) -> String {
    format!("g:{group}:state")
}

/// The key of a group's [`Halt`].
pub fn halt_key(group: &str) -> String {
    format!("g:{group}:halt")
}

/// The key of a group's [`Resume`].
pub fn resume_key(group: &str) -> String {
    format!("g:{group}:resume")
}

/// The key of a group's [`Promote`].
pub fn promote_key(group: &str) -> String {
    format!("g:{group}:promote")
}

/// The key of a group's [`Live`].
pub fn live_key(group: &str) -> String {
    format!("g:{group}:live")
}

/// The key of a group's [`Rollback`].
pub fn rollback_key(group: &str) -> String {
    format!("g:{group}:rollback")
}

/// Which group and which kind a key is about: `("web", "state")` for `g:web:state`.
pub fn split_group_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("g:")?;
    let (group, kind) = rest.rsplit_once(':')?;
    (!group.is_empty() && !kind.is_empty()).then_some((group, kind))
}

/// A value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_VALUE`].
    #[error("value of {0} bytes is longer than the {MAX_VALUE} accepted")]
    TooLong(usize),
    /// Written by an encoding this build does not read.
    #[error(
        "encoding version {0} is not readable here (this build reads {OLDEST_READABLE} to {VERSION} and newer with the same fields)"
    )]
    Version(u32),
    /// Not the JSON expected.
    #[error("malformed value: {0}")]
    Malformed(String),
}

/// Reads a value: bounded size, a known version, the expected fields.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    if text.len() > MAX_VALUE {
        return Err(DecodeError::TooLong(text.len()));
    }
    let Versioned { v } =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if v < OLDEST_READABLE {
        return Err(DecodeError::Version(v));
    }
    serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Writes a value with the current version.
pub fn encode<T: Serialize>(value: &T) -> String {
    #[derive(Serialize)]
    struct Versioned<'a, T> {
        v: u32,
        #[serde(flatten)]
        value: &'a T,
    }
    // Serializing these plain structs cannot fail.
    serde_json::to_string(&Versioned { v: VERSION, value }).unwrap_or_default()
}

/// `share`: the TCP port where a node serves the releases it verified to its mesh's members
/// (at its gossip address). Absent when it serves none.
pub const SHARE_KEY: &str = "share";

/// The value of [`SHARE_KEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The TCP port.
    pub port: u16,
}

/// `groups`: the groups a node belongs to. A node with none is a plain mesh member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Groups {
    /// Group names.
    pub groups: Vec<String>,
}

/// A release as gossip names it: the deployment id every host derives from the group and the
/// digest, the release's name and its digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Deployment id (`d-…`).
    pub id: String,
    /// Release name (tag or store version).
    pub revision: String,
    /// `git:<commit>` or `sha256:<hex>`.
    pub digest: String,
}

/// Where a host is in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Knows the release and waits for its turn.
    Waiting,
    /// Running the lifecycle (from ApplicationStop/BeforeInstall until healthy for
    /// `min_healthy_time`): it occupies a slot.
    Running,
    /// Healthy for `min_healthy_time` on the release.
    Done,
    /// Its deployment failed (hooks, health, deadline, interrupted); it counts against
    /// `max_failures`.
    Failed,
    /// Going back to its last known good revision after a halt or its own failure.
    Reverting,
    /// Back on its last known good revision.
    Reverted,
}

impl Step {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Reverting => "reverting",
            Self::Reverted => "reverted",
        }
    }
}

/// `g:<group>:state`: one host's state for one group, written as one value so peers always
/// read a consistent step and revision together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// Revision it runs (name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Digest of that revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The newest release it verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Its step in the deployment of `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// The halt epoch its step belongs to (see [`Halt::epoch`]).
    #[serde(default)]
    pub epoch: u32,
    /// Failures of `target` on this host in this epoch (a run interrupted by a restart counts).
    #[serde(default)]
    pub failures: u32,
    /// Why it failed, cut to [`MAX_REASON`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its health.
    #[serde(default = "no_check")]
    pub health: Health,
    /// A short hash of the group's members as this host knows them (itself included). Hosts
    /// start nothing until every member they see alive knows the same members, so they all
    /// take turns in the same order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<String>,
    /// Members the operator told this host to forget (`shoal forget`): every host drops them
    /// from the group while they are dead. At most [`MAX_FORGETS`], newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forgets: Vec<String>,
    /// The host leaves the group for good (`shoal leave`): the others drop it from the group
    /// at once, and it starts nothing more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaving: bool,
}

/// The most forgets a host publishes.
pub const MAX_FORGETS: usize = 16;

fn no_check() -> Health {
    Health::None
}

impl Default for GroupState {
    fn default() -> Self {
        Self {
            revision: None,
            digest: None,
            target: None,
            step: None,
            epoch: 0,
            failures: 0,
            reason: None,
            health: Health::None,
            members: None,
            forgets: Vec::new(),
            leaving: false,
        }
    }
}

/// `g:<group>:halt`: a deployment halted, by which host and why. Sticky: every host that
/// learns it keeps it (persisted) until a newer release or a resume of a later epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// Deployment id.
    pub id: String,
    /// The epoch it halted: a deployment starts in epoch 0; `shoal resume` voids every halt up
    /// to its epoch and starts the next, where failures are counted afresh.
    pub epoch: u32,
    /// The host whose failure (or operator) halted it.
    pub host: String,
    /// Why, cut to [`MAX_REASON`].
    pub reason: String,
    /// The operator who halted it (`user@node`); none for a halt a failure caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `g:<group>:resume`: `shoal resume` of a deployment up to `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Deployment id.
    pub id: String,
    /// The halt epoch resumed.
    pub epoch: u32,
    /// The operator who resumed it (`user@node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `g:<group>:promote`: `shoal promote` of a canary deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promote {
    /// Deployment id.
    pub id: String,
    /// The operator who promoted it (`user@node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Most lines of a failed script's output a [`Live`] carries.
pub const MAX_TAIL_LINES: usize = 8;

/// Longest line of a failed script's output a [`Live`] carries; longer ones are cut.
pub const MAX_TAIL_LINE: usize = 160;

/// `g:<group>:live`: what one host is doing in its deployment, for the people watching it
/// (fleet page, `shoal fleet`); no host decides anything from it. Times are the host's wall
/// clock in seconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// The deployment it is about.
    pub id: String,
    /// When this host learned of the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<u64>,
    /// When its current step (waiting, running, ...) began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_since: Option<u64>,
    /// The lifecycle event it runs now (`BeforeInstall`, ..., `HealthCheck`), while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// When that event began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_since: Option<u64>,
    /// The files of the deployment's release are installed: the host serves it (in its
    /// health window, say) although it is not done yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub installed: bool,
    /// It is one of the deployment's canaries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    /// Why it waits, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// It waits for `shoal promote`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_pending: bool,
    /// While the rollout goes on: when it fails for standing still as this host sees it (its
    /// last progress plus the policy's `progress_deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// When it became done on the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<u64>,
    /// When it failed, and the last lines of the failed script's output (at most
    /// [`MAX_TAIL_LINES`] of [`MAX_TAIL_LINE`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<u64>,
    /// See `failed_at`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
}

/// The last [`MAX_TAIL_LINES`] non-empty lines of `output`, each cut to [`MAX_TAIL_LINE`].
pub fn output_tail(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let from = lines.len().saturating_sub(MAX_TAIL_LINES);
    lines[from..]
        .iter()
        .map(|line| cut(line, MAX_TAIL_LINE))
        .collect()
}

/// `g:<group>:rollback`: an operator's signed order to roll the group back
/// ([`crate::release::rollback`]), as the node took it. Gossip only carries it: every host
/// checks the signature against its own `allowed_signers` before it takes the order, and
/// publishes it once taken, so it reaches hosts that were away when it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// The order's text, as signed.
    pub order: String,
    /// Its armored SSH signature.
    pub signature: String,
    /// Who signed it, as the publishing node read its `allowed_signers` (shown to people; a
    /// host taking the order finds the signer itself).
    #[serde(default)]
    pub signer: String,
}

/// Everything one node publishes about one group (decoded); `None` is an absent key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupValues {
    /// `g:<group>:state`.
    pub state: Option<GroupState>,
    /// `g:<group>:halt`.
    pub halt: Option<Halt>,
    /// `g:<group>:resume`.
    pub resume: Option<Resume>,
    /// `g:<group>:promote`.
    pub promote: Option<Promote>,
    /// `g:<group>:live` (not the planner's: [`crate::rollout`] never reads or writes it).
    pub live: Option<Live>,
    /// `g:<group>:rollback` (not the planner's: the channel watcher takes it).
    pub rollback: Option<Rollback>,
}

impl GroupValues {
    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Cuts a reason to [`MAX_REASON`] bytes at a character boundary.
pub fn short_reason(reason: &str) -> String {
    cut(reason, MAX_REASON)
}

/// `text` cut to `max` bytes at a character boundary, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_a_version_marker() {
        let state = GroupState {
            revision: Some("v1".into()),
            digest: Some("git:abc".into()),
            target: Some(Target {
                id: "d-0123456789ab".into(),
                revision: "v2".into(),
                digest: "git:def".into(),
            }),
            step: Some(Step::Running),
            epoch: 0,
            failures: 0,
            reason: None,
            health: Health::Healthy,
            members: Some("0a1b2c3d".into()),
            forgets: Vec::new(),
            leaving: false,
        };
        let text = encode(&state);
        assert!(text.starts_with(r#"{"v":1,"#), "{text}");
        assert_eq!(decode::<GroupState>(&text), Ok(state));
    }

    #[test]
    fn newer_fields_are_ignored_and_unknown_versions_refused() {
        let newer = r#"{"v":2,"id":"d-1","epoch":3,"host":"a","reason":"x","signed_by":"k"}"#;
        let halt: Halt = decode(newer).expect("a newer writer's halt still reads");
        assert_eq!(halt.epoch, 3);
        assert_eq!(
            decode::<Halt>(r#"{"v":0,"id":"d-1","epoch":1,"host":"a","reason":"x"}"#),
            Err(DecodeError::Version(0))
        );
        assert!(matches!(
            decode::<Halt>(r#"{"id":"d-1"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Halt>(&"x".repeat(MAX_VALUE + 1)),
            Err(DecodeError::TooLong(_))
        ));
    }

    #[test]
    fn group_keys_split_back() {
        assert_eq!(
            split_group_key(&state_key("web.eu")),
            Some(("web.eu", "state"))
        );
        assert_eq!(split_group_key("groups"), None);
        assert_eq!(split_group_key("g::state"), None);
    }

    #[test]
    fn an_output_tail_keeps_the_last_lines_cut_short() {
        let output: String = (1..=20).map(|i| format!("line {i}\n\n")).collect();
        let tail = output_tail(&output);
        assert_eq!(tail.len(), MAX_TAIL_LINES);
        assert_eq!(tail.first().map(String::as_str), Some("line 13"));
        assert_eq!(tail.last().map(String::as_str), Some("line 20"));
        let long = output_tail(&"x".repeat(1000));
        assert!(long[0].len() <= MAX_TAIL_LINE + '…'.len_utf8());
        // A whole tail fits a value with room to spare.
        let live = Live {
            id: "d-0123456789ab".into(),
            tail: output_tail(&format!("{}\n", "é".repeat(500)).repeat(20)),
            waiting_for: Some(short_reason(&"w".repeat(500))),
            ..Live::default()
        };
        assert!(
            encode(&live).len() < MAX_VALUE / 2,
            "{}",
            encode(&live).len()
        );
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(150);
        let short = short_reason(&long);
        assert!(short.len() <= MAX_REASON + '…'.len_utf8());
        assert!(short.ends_with('…'));
        assert_eq!(short_reason("ok"), "ok");
    }
}
