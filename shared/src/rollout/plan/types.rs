//! The planner's vocabulary: what it is given (settings, a view of the peers, events), what
//! it asks for (actions), what it keeps across restarts (memory) and why it waits.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::gossip::{GroupState, Halt, Health, Promote, Resume, Target};
use crate::rollout::policy::{Policy, RawPolicy};

/// Milliseconds on the host's clock. Only differences of one host's own readings are used, so
/// clocks of different hosts need not agree.
pub type Millis = u64;

/// A revision a host runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// Release name.
    pub name: String,
    /// `git:<commit>` or `sha256:<hex>`.
    pub digest: String,
}

/// Fixed settings of a planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// This host's node id.
    pub node: String,
    /// After a (re)start, how long to listen to gossip before starting anything.
    pub warmup: Millis,
    /// How long a member not seen alive keeps its place in the rollout order (the dead-node
    /// grace). It still counts in the quorum after that, until it leaves (`shoal leave`), is
    /// forgotten (`shoal forget`), or `expected_members` is set.
    pub forget_after: Millis,
    /// The group's expected size, if configured: the quorum is a majority of it (or of the
    /// members known, when more), and members gone quiet stop counting after `forget_after`.
    pub expected_members: Option<usize>,
}

/// One other member of the group as gossip shows it to this host.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// Its node id.
    pub node: &'a str,
    /// Whether the failure detector deems it alive.
    pub alive: bool,
    /// Whether this host heard from it (a newer heartbeat) within the last
    /// [`RECENT_ROUNDS`] gossip rounds: a host starts a deployment only while it has heard
    /// from a majority that recently, not merely while the failure detector, which takes
    /// longer, has not yet declared them dead.
    pub recent: bool,
    /// Its `g:<group>:state`, if published and readable.
    pub state: Option<&'a GroupState>,
    /// The halt it publishes.
    pub halt: Option<&'a Halt>,
    /// The resume it publishes.
    pub resume: Option<&'a Resume>,
    /// The promote it publishes.
    pub promote: Option<&'a Promote>,
}

impl<'a> Peer<'a> {
    /// A peer that publishes only a state.
    pub fn new(node: &'a str, alive: bool, state: Option<&'a GroupState>) -> Self {
        Self {
            node,
            alive,
            recent: alive,
            state,
            halt: None,
            resume: None,
            promote: None,
        }
    }
}

/// How recently a host must have heard from a member for it to count towards the majority a
/// start needs: 3 gossip rounds. A member's heartbeat rises every round and reaches the others
/// within a round or two in the meshes this is for, so a live member is heard well within 3;
/// chitchat's failure detector needs about 4 to 15 rounds to declare a silent one dead, which
/// left a host cut off from the majority a few seconds in which it could still start.
pub const RECENT_ROUNDS: u32 = 3;

/// What gossip shows of the group's other members. An entry for this host itself is ignored.
#[derive(Debug, Clone, Default)]
pub struct View<'a> {
    /// Every other member gossip knows, alive or dead.
    pub peers: Vec<Peer<'a>>,
    /// Another live host gossips under this host's node id: its state and the other's are
    /// one to the group, so it takes no slot until each has its own id.
    pub duplicate: bool,
}

/// How this host's lifecycle of the target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Hooks passed and the host was healthy for `min_healthy_time`.
    Done,
    /// A hook, the health check or the healthy deadline failed. If it changed the host, the
    /// planner sends it back to its last known good revision when the policy says so
    /// ([`Action::Revert`]), after publishing the failure.
    Failed {
        /// Why.
        reason: String,
        /// Whether it changed the host (a refused AppSpec, say, changes nothing).
        changed_host: bool,
    },
    /// It was cut short: the agent stopped, crashed or restarted in the middle of it. A
    /// planned stop never counts as a failure, nor does the first crash of the target's run on
    /// a host: the host runs the target again from the start, keeping its slot (hooks are
    /// meant to be re-runnable). A run cut short more often than that counts as a failure if
    /// it had changed the host, which then goes back to its last known good revision first;
    /// unless that halts the deployment the host takes its turn again.
    Interrupted {
        /// Why (which step was cut short).
        reason: String,
        /// Whether the host had been changed (files installed or hooks run) before it stopped.
        changed_host: bool,
        /// What cut it short.
        cut: Cut,
    },
}

/// What cut a run short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The agent stopped it on purpose at a safe point (a shutdown, a restart, an upgrade).
    Stopped,
    /// The agent died in the middle of it (kill -9, a power cut, an out-of-memory kill).
    Crashed,
    /// It never started: the agent restarted before it began, or the release's files were
    /// not at hand yet. Nothing is counted.
    NotStarted,
}

/// A run interrupted this many times on one host fails for good; a target's run stopped or
/// cut short up to this many times on one host is run again without counting a failure
/// (crashes: only the first).
pub const MAX_INTERRUPTIONS: u32 = 3;

/// Something that happens to the planner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Time passed or the view changed.
    Tick,
    /// The channel verified a release newer than anything this host deployed.
    Release {
        /// The release.
        target: Target,
        /// Its rollout policy.
        policy: Policy,
    },
    /// The lifecycle started by [`Action::Deploy`] ended.
    Ran(Outcome),
    /// The revert started by [`Action::Revert`] ended.
    Reverted {
        /// Whether the last known good revision runs again.
        ok: bool,
    },
    /// The health of the running revision, between deployments.
    Health(Health),
}

/// An operator's command on this host: `shoal halt`, `shoal resume` or `shoal promote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Halt the target's rollout.
    Halt {
        /// The operator's reason.
        reason: String,
        /// Who (`user@node`), if known.
        by: Option<String>,
    },
    /// Resume a halted rollout (a new epoch).
    Resume {
        /// Who (`user@node`), if known.
        by: Option<String>,
    },
    /// Let a canary rollout go on past its canaries.
    Promote {
        /// Who (`user@node`), if known.
        by: Option<String>,
    },
    /// Drop a dead member from the group (decommissioned without `shoal leave`): it no
    /// longer counts in the quorum, on every host.
    Forget {
        /// Its node id.
        node: String,
    },
    /// This host leaves the group for good: the others drop it at once, and it starts
    /// nothing more (until the agent starts again).
    Leave,
}

impl Command {
    /// The command's name, as the CLI and the endpoint spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Halt { .. } => "halt",
            Self::Resume { .. } => "resume",
            Self::Promote { .. } => "promote",
            Self::Forget { .. } => "forget",
            Self::Leave => "leave",
        }
    }
}

/// What the planner asks the agent to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the lifecycle of this release, then report [`Event::Ran`].
    Deploy(Target),
    /// Go back to this revision, then report [`Event::Reverted`].
    Revert(Revision),
    /// A peer verified a release this host has not: check the channel now. Gossip is a hint,
    /// never a source of trust.
    CheckChannel(Target),
}

/// An operator command that cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Nothing to steer.
    #[error("the group has no release to {0}")]
    NoRelease(&'static str),
    /// Resume of a deployment that is not halted.
    #[error("deployment {0} is not halted")]
    NotHalted(String),
    /// Promote outside a canary deployment.
    #[error("deployment {0} is not a canary deployment")]
    NotCanary(String),
    /// Promote of a halted deployment.
    #[error(
        "deployment {deployment} is halted ({host}: {reason}); nothing goes on until `shoal resume`"
    )]
    Halted {
        /// The deployment.
        deployment: String,
        /// The host that halted it.
        host: String,
        /// Why.
        reason: String,
    },
    /// Promote of a deployment every host finished.
    #[error("deployment {0} is complete: every host runs it")]
    Complete(String),
    /// Promote of a deployment whose policy promotes it once its canaries are healthy.
    #[error("deployment {0} promotes itself once its canaries are healthy (auto_promote: true)")]
    AutoPromote(String),
    /// A second promote.
    #[error("deployment {0} is already promoted")]
    Promoted(String),
    /// Forget of a node the group does not know.
    #[error(
        "{node} is not a member of this group as this host knows it; its members are {members}"
    )]
    NotAMember {
        /// The node asked for.
        node: String,
        /// The members known, comma-separated.
        members: String,
    },
    /// Forget of this host itself.
    #[error("{0} is this host; run `shoal leave` on a host to take it out of its groups")]
    Itself(String),
}

/// What a host keeps across restarts (the agent persists it before acting on any change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// What this host publishes as `g:<group>:state`.
    pub state: Option<GroupState>,
    /// The revision it goes back to (its last known good before the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lkg: Option<Revision>,
    /// The target's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RawPolicy>,
    /// A release that arrived while the lifecycle ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<(Target, RawPolicy)>,
    /// The newest halt it knows for the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    /// The newest resume it knows for the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// The promote it knows for the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<Promote>,
    /// Members of the group and when each was last seen alive (this host's clock).
    #[serde(default)]
    pub members: BTreeMap<String, Millis>,
    /// The host is half-installed: a run changed it and it could not go back. A halt before
    /// it runs again fails it, so it never shows as merely waiting.
    #[serde(default)]
    pub broken: bool,
    /// It saw every member it knows done on the target: no halt from a peer sends it back any
    /// more, and failures claimed then halt nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete: bool,
    /// It goes back to its last known good revision after its run was cut short, and takes
    /// its turn again once back (unless the deployment halted meanwhile).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
    /// Its run of the target was cut short and it runs it again from the start, keeping its
    /// slot (`running`), once it has the release's files at hand again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerun: bool,
    /// Runs of the target cut short on this host (stopped or crashed), and of those, crashes.
    #[serde(default, skip_serializing_if = "Cuts::is_zero")]
    pub cuts: Cuts,
    /// Every member it has known, kept when they go quiet, however long: the quorum counts
    /// against them, so a minority cut off for hours never becomes a majority of itself. A
    /// member leaves it by `shoal leave`, `shoal forget`, or (with `expected_members`) once
    /// forgotten.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub known: BTreeSet<String>,
    /// The failures of the target each peer published, by peer: (epoch, failures, reason).
    /// Kept when the peer goes quiet, so its failures still count towards `max_failures`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, (u32, u32, Option<String>)>,
}

/// Runs of a target cut short on one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cuts {
    /// Every run cut short, planned or not.
    pub all: u32,
    /// Those the agent did not stop on purpose.
    pub crashed: u32,
}

impl Cuts {
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Counts a run cut short by `cut`; returns whether it is forgiven: run again without
    /// counting a failure.
    pub fn count(&mut self, cut: Cut) -> bool {
        match cut {
            Cut::NotStarted => return true,
            Cut::Stopped => self.all += 1,
            Cut::Crashed => {
                self.all += 1;
                self.crashed += 1;
            }
        }
        self.all <= MAX_INTERRUPTIONS && self.crashed <= 1
    }
}

/// Why a host is not starting the target (shown in status and traces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// No release to deploy, or already past `Waiting`.
    Nothing,
    /// Halted.
    Halted,
    /// Sees `alive` of `members` alive: not a majority.
    NoMajority {
        /// Members seen alive, itself included.
        alive: usize,
        /// Members known.
        members: usize,
    },
    /// Just (re)started; listening to gossip first.
    WarmingUp,
    /// Some alive members know other members than this host does (one just joined, or was
    /// just forgotten): the order is not agreed yet.
    Membership,
    /// The release's files are not at hand yet (after a restart, until the channel is read).
    Fetching,
    /// It leaves the group (`shoal leave`): it starts nothing more.
    Leaving,
    /// Another live host gossips under this host's node id.
    DuplicateId,
    /// Some alive members have not learned of the last resume yet.
    Resuming,
    /// Canaries not all done yet.
    Canaries,
    /// Canaries done; waiting for `shoal promote`.
    Promotion,
    /// Linear: the previous step is not done, or `every` has not passed since.
    Step,
    /// Its turn has not come: this many hosts occupy the batch.
    Turn {
        /// Hosts ahead of it not settled, plus hosts after it running.
        busy: usize,
        /// The batch size.
        batch: usize,
    },
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("nothing to do"),
            Self::Halted => f.write_str("halted"),
            Self::NoMajority { alive, members } => {
                write!(f, "sees {alive} of {members} members alive, not a majority")
            }
            Self::WarmingUp => f.write_str("listening to gossip after a start"),
            Self::Membership => f.write_str("waiting for every member to know the same members"),
            Self::Fetching => f.write_str("fetching the release"),
            Self::Leaving => f.write_str("leaving the group (`shoal leave`)"),
            Self::DuplicateId => f.write_str(
                "another live host gossips under this node id; give each host its own node.id",
            ),
            Self::Resuming => f.write_str("waiting for every member to learn of the resume"),
            Self::Canaries => f.write_str("waiting for the canaries to be healthy"),
            Self::Promotion => f.write_str("canaries healthy; waiting for `shoal promote`"),
            Self::Step => f.write_str("waiting for the next linear step"),
            Self::Turn { busy, batch } => {
                let hosts = if *busy == 1 { "host" } else { "hosts" };
                write!(
                    f,
                    "waiting for its turn: {busy} {hosts} ahead of it or running, {batch} at a time"
                )
            }
        }
    }
}
