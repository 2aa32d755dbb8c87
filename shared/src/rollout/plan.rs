//! The rollout planner: one host's part in a group's rollout, decided from its own memory and
//! what its peers publish over gossip. Pure and deterministic — `(memory, event, view, now) ->
//! (memory', actions)` with no clock and no I/O — so the agent and the simulator run the very
//! same code.
//!
//! How hosts take turns without a leader or a lock:
//! - Every host orders the group's known members (alive, or dead but remembered) by
//!   sha256(deployment id ‖ 0x00 ‖ node id). Every host computes the same order.
//! - A host in the order may start once the hosts *before* it that are not settled (done,
//!   failed or reverted), plus the hosts *after* it that are running, are fewer than the batch.
//!   Settling is final within an epoch, so a stale view only ever over-counts, and two hosts
//!   never both take the last slot. A host ahead that gossip deems dead still counts unless
//!   it is known to have settled: it may be alive on the other side of a partition that just
//!   healed, or only suspected, and start at the same moment. It keeps its slot until it comes
//!   back and settles or is forgotten (`forget_after`, the mesh's dead-node grace).
//! - Hosts take turns only once every member they see alive knows the same members (a hash
//!   of them is in every state), so they all compute the same order.
//! - Canaries are the first hosts of the order; the others wait until every canary is done
//!   (healthy for `min_healthy_time`) and the deployment is promoted.
//! - A host starts nothing while it sees no majority of the members it knows alive, nor right
//!   after a (re)start, before it has heard from a majority.
//! - Failures beyond `max_failures` halt the deployment; the halt spreads through gossip, is kept
//!   by every host that learns it, and (with `auto_revert`) sends every host that moved back to
//!   its last known good revision. `shoal resume` starts a new epoch.
//! - A halt is taken from a peer only if it is a member whose own state is on that deployment.
//!   Once a host has seen every member it knows done, the deployment is complete for it for
//!   good: a halt from a peer still shows, but sends it back no more, and failures claimed then
//!   halt nothing, so a holder of the cluster key who joins later cannot undo a completed
//!   release. Only `shoal halt` on the host itself sends that host back. Halts not acted on are
//!   counted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::{Policy, RawPolicy, Strategy};
use crate::gossip::{
    GroupState, GroupValues, Halt, Health, Promote, Resume, Step, Target, short_reason,
};

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
    /// How long a member not seen alive is remembered (the dead-node grace).
    pub forget_after: Millis,
}

/// One other member of the group as gossip shows it to this host.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// Its node id.
    pub node: &'a str,
    /// Whether the failure detector deems it alive.
    pub alive: bool,
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
            state,
            halt: None,
            resume: None,
            promote: None,
        }
    }
}

/// What gossip shows of the group's other members. An entry for this host itself is ignored.
#[derive(Debug, Clone, Default)]
pub struct View<'a> {
    /// Every other member gossip knows, alive or dead.
    pub peers: Vec<Peer<'a>>,
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
    /// The agent restarted in the middle of it. It counts as a failure if it had changed the
    /// host, which then goes back to its last known good revision first; unless that halts the
    /// deployment the host takes its turn again.
    Interrupted {
        /// Why (which step was cut short).
        reason: String,
        /// Whether the host had been changed (files installed or hooks run) before it stopped.
        changed_host: bool,
    },
}

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
    },
    /// Resume a halted rollout (a new epoch).
    Resume,
    /// Let a canary rollout go on past its canaries.
    Promote,
}

impl Command {
    /// The command's name, as the CLI and the endpoint spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Halt { .. } => "halt",
            Self::Resume => "resume",
            Self::Promote => "promote",
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
            Self::Resuming => f.write_str("waiting for every member to learn of the resume"),
            Self::Canaries => f.write_str("waiting for the canaries to be healthy"),
            Self::Promotion => f.write_str("canaries healthy; waiting for `shoal promote`"),
            Self::Step => f.write_str("waiting for the next linear step"),
            Self::Turn { busy, batch } => {
                write!(f, "waiting for its turn ({busy} of {batch} slots taken)")
            }
        }
    }
}

/// One host's planner for one group.
#[derive(Debug, Clone)]
pub struct Planner {
    settings: Settings,
    memory: Memory,
    policy: Option<Policy>,
    /// When this planner started (this run of the agent).
    up_since: Millis,
    /// Members seen alive since the start.
    heard: BTreeSet<String>,
    /// Releases announced by peers that were already passed on as [`Action::CheckChannel`].
    hinted: BTreeSet<Target>,
    /// Done hosts counted and when that count last rose (progress deadline).
    progress: (usize, Millis),
    /// Linear: the step found open and when it opened.
    linear_open: Option<(usize, Millis)>,
    /// The order of the members for the target: (deployment id, members, order).
    order: Option<(String, Vec<String>, Vec<String>)>,
    /// Why it is not starting, as of the last step.
    wait: Wait,
    /// Health between deployments.
    health: Health,
    /// The target whose files this run of the agent has at hand ([`Event::Release`] says so;
    /// after a restart the channel is read again first).
    fetched: Option<String>,
    /// [`Planner::members_hash`] of the members now.
    members_hash: Option<String>,
    /// Members forgotten while dead (not taken back until seen alive).
    forgotten: BTreeSet<String>,
    /// Halts from peers not taken (the deployment was complete, or the peer was not in it),
    /// each counted once: (deployment id, epoch, peer).
    ignored: BTreeSet<(String, u32, String)>,
}

impl Planner {
    /// A planner starting at `now` from what was persisted (default for a first start).
    /// `default_policy` applies when the memory holds no readable policy.
    pub fn new(settings: Settings, memory: Memory, default_policy: &Policy, now: Millis) -> Self {
        let policy = memory
            .state
            .as_ref()
            .and_then(|s| s.target.as_ref())
            .map(|_| {
                memory
                    .policy
                    .as_ref()
                    .and_then(|raw| raw.check(default_policy).ok())
                    .unwrap_or_else(|| default_policy.clone())
            });
        let health = memory.state.as_ref().map_or(Health::None, |s| s.health);
        Self {
            settings,
            memory,
            policy,
            up_since: now,
            heard: BTreeSet::new(),
            hinted: BTreeSet::new(),
            progress: (0, now),
            linear_open: None,
            order: None,
            wait: Wait::Nothing,
            health,
            fetched: None,
            members_hash: None,
            forgotten: BTreeSet::new(),
            ignored: BTreeSet::new(),
        }
    }

    /// How many halts from peers this planner did not act on since it started: from a peer that
    /// was not in the deployment, or for a deployment that was complete.
    pub fn ignored_halts(&self) -> usize {
        self.ignored.len()
    }

    /// Whether it saw every member it knows done on the target.
    pub fn complete(&self) -> bool {
        self.memory.complete
    }

    /// What must be persisted.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// This host's node id.
    pub fn node(&self) -> &str {
        &self.settings.node
    }

    /// What this host publishes as `g:<group>:state`.
    pub fn published(&self) -> Option<&GroupState> {
        self.memory.state.as_ref()
    }

    /// Everything this host publishes about the group.
    pub fn values(&self) -> GroupValues {
        GroupValues {
            state: self.memory.state.clone(),
            halt: self.memory.halt.clone(),
            resume: self.memory.resume.clone(),
            promote: self.memory.promote.clone(),
        }
    }

    /// The target release, if any.
    pub fn target(&self) -> Option<&Target> {
        self.state()?.target.as_ref()
    }

    /// This host's step in the target's deployment.
    pub fn step_now(&self) -> Option<Step> {
        self.state()?.step
    }

    /// The target's policy.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Why it is not starting the target, as of the last step.
    pub fn wait(&self) -> &Wait {
        &self.wait
    }

    /// The halt in force for the target, if any.
    pub fn halted(&self) -> Option<&Halt> {
        let state = self.state()?;
        let target = state.target.as_ref()?;
        self.memory
            .halt
            .as_ref()
            .filter(|h| h.id == target.id && h.epoch >= state.epoch)
    }

    /// The members of the group this host knows (itself included), in the target's order.
    pub fn order(&self) -> &[String] {
        self.order.as_ref().map_or(&[], |(_, _, order)| order)
    }

    /// Records an operator command and what it publishes; the next [`Planner::step`] acts on
    /// it. Returns the deployment it applies to.
    pub fn command(&mut self, command: Command) -> Result<String, CommandError> {
        let target = self
            .target()
            .cloned()
            .ok_or(CommandError::NoRelease(command.name()))?;
        match command {
            Command::Halt { reason } => {
                let reason = format!("halted by the operator on {}: {reason}", self.node());
                let node = self.node().to_owned();
                // The operator on this host may send it back even from a completed release.
                self.memory.complete = false;
                self.halt(node, &reason);
            }
            Command::Resume => {
                if self.halted().is_none() {
                    return Err(CommandError::NotHalted(target.id));
                }
                self.resume();
            }
            Command::Promote => {
                if self.policy.as_ref().map(|p| p.strategy) != Some(Strategy::Canary) {
                    return Err(CommandError::NotCanary(target.id));
                }
                self.memory.promote = Some(Promote {
                    id: target.id.clone(),
                });
            }
        }
        Ok(target.id)
    }

    /// Takes one event with the current view of the group at `now`; returns what to do.
    pub fn step(&mut self, event: Event, view: &View<'_>, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.learn_members(view, now) || self.members_hash.is_none() {
            self.members_hash = Some(self.members_hash());
        }
        let members = self.members_hash.clone();
        self.state_mut().members = members;
        match event {
            Event::Tick => {}
            Event::Release { target, policy } => self.release(target, policy, now),
            Event::Ran(outcome) => self.ran(outcome, now, &mut actions),
            Event::Reverted { ok } => self.reverted(ok, now),
            Event::Health(health) => {
                self.health = health;
                if let Some(state) = self.memory.state.as_mut() {
                    state.health = health;
                }
            }
        }
        self.note_complete(view);
        self.learn(view, &mut actions);
        self.count_failures(view);
        self.check_progress(view, now);
        if self.halted().is_some() {
            self.revert_if_moved(&mut actions);
        }
        self.wait = Wait::Nothing;
        if self.step_now() == Some(Step::Waiting) {
            match self.blocked(view, now) {
                Some(wait) => self.wait = wait,
                None => {
                    self.set_step(Step::Running);
                    if let Some(target) = self.target().cloned() {
                        actions.push(Action::Deploy(target));
                    }
                }
            }
        }
        actions
    }

    fn state(&self) -> Option<&GroupState> {
        self.memory.state.as_ref()
    }

    fn state_mut(&mut self) -> &mut GroupState {
        let health = self.health;
        self.memory.state.get_or_insert(GroupState {
            health,
            ..GroupState::default()
        })
    }

    fn set_step(&mut self, step: Step) {
        self.state_mut().step = Some(step);
    }

    fn current(&self) -> Option<Revision> {
        let state = self.state()?;
        Some(Revision {
            name: state.revision.clone()?,
            digest: state.digest.clone()?,
        })
    }

    fn release(&mut self, target: Target, policy: Policy, now: Millis) {
        if self.target() == Some(&target) {
            self.fetched = Some(target.id);
            return;
        }
        if self.step_now() == Some(Step::Running) || self.step_now() == Some(Step::Reverting) {
            // Finish what runs first; the new release follows.
            self.memory.next = Some((target, policy.to_raw()));
            return;
        }
        self.adopt(target, policy, now);
    }

    fn adopt(&mut self, target: Target, policy: Policy, now: Millis) {
        self.memory.lkg = self.current();
        self.memory.complete = false;
        self.memory.policy = Some(policy.to_raw());
        self.memory.halt = None;
        self.memory.resume = None;
        self.memory.promote = None;
        self.policy = Some(policy);
        self.fetched = Some(target.id.clone());
        self.progress = (0, now);
        self.linear_open = None;
        let broken = self.memory.broken;
        let state = self.state_mut();
        state.target = Some(target);
        state.step = Some(Step::Waiting);
        state.epoch = 0;
        state.failures = 0;
        // A half-installed host keeps the failure that left it so on record.
        if !broken {
            state.reason = None;
        }
    }

    fn ran(&mut self, outcome: Outcome, now: Millis, actions: &mut Vec<Action>) {
        let Some(target) = self.target().cloned() else {
            return;
        };
        match outcome {
            Outcome::Done => {
                let state = self.state_mut();
                state.revision = Some(target.revision.clone());
                state.digest = Some(target.digest.clone());
                state.step = Some(Step::Done);
                state.reason = None;
                self.memory.broken = false;
            }
            Outcome::Failed {
                reason,
                changed_host,
            } => {
                self.count_failure(&reason);
                if changed_host {
                    self.go_back(&target, false, actions);
                } else {
                    // It changed nothing: the host is as it was (half-installed by an earlier
                    // run, perhaps).
                    let step = if self.memory.broken {
                        Step::Failed
                    } else {
                        Step::Reverted
                    };
                    self.set_step(step);
                }
            }
            Outcome::Interrupted {
                reason,
                changed_host,
            } => {
                // It runs again unless that halts the deployment, or it was cut short too
                // often; once the channel gave it the release's files again.
                self.fetched = None;
                if changed_host {
                    self.count_failure(&reason);
                }
                let failures = self.state().map_or(0, |s| s.failures);
                let again = failures < MAX_INTERRUPTIONS;
                if changed_host {
                    self.go_back(&target, again, actions);
                } else if again {
                    self.set_step(Step::Waiting);
                } else {
                    self.set_step(Step::Failed);
                }
            }
        }
        self.take_next(now);
    }

    /// Its own run of `target` changed the host and did not complete: it goes back to its last
    /// known good revision when the policy says so ([`Action::Revert`], reported by
    /// [`Event::Reverted`]); otherwise it stays half-installed, failed or (`again`) waiting to
    /// run again. The failure is counted and published before the revert runs.
    fn go_back(&mut self, target: &Target, again: bool, actions: &mut Vec<Action>) {
        self.memory.broken = true;
        let auto_revert = self.policy.as_ref().is_some_and(|p| p.auto_revert);
        let lkg = self
            .memory
            .lkg
            .clone()
            .filter(|lkg| lkg.digest != target.digest);
        match lkg {
            Some(lkg) if auto_revert => {
                self.memory.again = again;
                self.set_step(Step::Reverting);
                actions.push(Action::Revert(lkg));
            }
            _ => self.set_step(if again { Step::Waiting } else { Step::Failed }),
        }
    }

    /// Counts a failed run of the target on this host.
    fn count_failure(&mut self, reason: &str) {
        let state = self.state_mut();
        state.failures += 1;
        state.reason = Some(short_reason(reason));
    }

    /// The host runs its last known good revision again.
    fn back_on_lkg(&mut self) {
        if let Some(lkg) = self.memory.lkg.clone() {
            let state = self.state_mut();
            state.revision = Some(lkg.name);
            state.digest = Some(lkg.digest);
        }
    }

    fn reverted(&mut self, ok: bool, now: Millis) {
        self.memory.broken = !ok;
        if ok {
            self.back_on_lkg();
        }
        // Back from a run cut short, it takes its turn again (once it has the files at hand)
        // unless the deployment halted meanwhile.
        let again = std::mem::take(&mut self.memory.again) && ok && self.halted().is_none();
        if again {
            self.fetched = None;
        }
        let state = self.state_mut();
        if !ok {
            state.step = Some(Step::Failed);
            state.reason = Some("the revert to the last known good revision failed".to_owned());
        } else if again {
            state.step = Some(Step::Waiting);
        } else {
            state.step = Some(Step::Reverted);
        }
        // A resume that came while it went back applies now that it is back.
        let epoch = self.state().map_or(0, |s| s.epoch);
        if let Some(resume) = self.memory.resume.clone().filter(|r| r.epoch >= epoch)
            && self.target().is_some_and(|t| t.id == resume.id)
        {
            self.apply_resume(resume);
        }
        self.take_next(now);
    }

    /// A release that arrived while the lifecycle ran becomes the target once it is over.
    fn take_next(&mut self, now: Millis) {
        if matches!(self.step_now(), Some(Step::Running | Step::Reverting)) {
            return;
        }
        if let Some((target, raw)) = self.memory.next.take() {
            let base = self.policy.clone().unwrap_or_default();
            let policy = raw.check(&base).unwrap_or(base);
            self.adopt(target, policy, now);
        }
    }

    /// Halted: a host done on the target goes back to its last known good revision (one still
    /// running goes back once it is done). A half-installed one (waiting to run again, or
    /// failed) fails, and goes back too when the policy says so.
    fn revert_if_moved(&mut self, actions: &mut Vec<Action>) {
        if self.memory.complete {
            return; // a completed release is not undone by a peer's halt
        }
        // A host whose revert failed is left failed: it is not sent back again and again.
        let broken = self.memory.broken && self.step_now() == Some(Step::Waiting);
        if broken {
            self.set_step(Step::Failed);
        } else if self.step_now() != Some(Step::Done) {
            return;
        }
        let Some(target) = self.target().cloned() else {
            return;
        };
        let auto_revert = self.policy.as_ref().is_some_and(|p| p.auto_revert);
        let Some(lkg) = self.memory.lkg.clone() else {
            return;
        };
        if !auto_revert || (!broken && lkg.digest == target.digest) {
            return;
        }
        self.set_step(Step::Reverting);
        actions.push(Action::Revert(lkg));
    }

    fn halt(&mut self, host: String, reason: &str) {
        let Some(state) = self.state() else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some() {
            return;
        }
        self.memory.halt = Some(Halt {
            id: target.id.clone(),
            epoch: state.epoch,
            host,
            reason: short_reason(reason),
        });
    }

    fn resume(&mut self) {
        let Some(halt) = self.halted().cloned() else {
            return;
        };
        let resume = Resume {
            id: halt.id,
            epoch: halt.epoch,
        };
        self.apply_resume(resume);
    }

    /// A resume of `epoch` voids the halts up to it and starts the next epoch: failures are
    /// counted afresh, and hosts that failed or went back wait for their turn again.
    fn apply_resume(&mut self, resume: Resume) {
        if self.step_now() == Some(Step::Reverting) {
            // It takes the new epoch once it is back: moving to it now would show a settled step
            // in the new epoch that becomes `waiting` later, and hosts behind it would count a
            // slot free that it takes again. Meanwhile it stays behind, so the others wait.
            self.memory.resume = Some(resume);
            return;
        }
        let broken = self.memory.broken;
        let state = self.state_mut();
        state.epoch = resume.epoch + 1;
        state.failures = 0;
        // A half-installed host keeps its failure's reason while it waits to run again: its
        // state then never hides that it is half-installed.
        if !broken {
            state.reason = None;
        }
        if matches!(state.step, Some(Step::Failed | Step::Reverted)) {
            state.step = Some(Step::Waiting);
        }
        self.memory.resume = Some(resume);
    }

    /// Takes what peers publish: resumes, halts and promotes of the target; releases this host
    /// has not verified.
    fn learn(&mut self, view: &View<'_>, actions: &mut Vec<Action>) {
        let Some(target) = self.target().cloned() else {
            for peer in &view.peers {
                self.hint(peer, None, actions);
            }
            return;
        };
        for peer in &view.peers {
            if peer.node == self.settings.node {
                continue;
            }
            let epoch = self.state().map_or(0, |s| s.epoch);
            if let Some(resume) = peer
                .resume
                .filter(|r| r.id == target.id && r.epoch >= epoch)
            {
                self.apply_resume(resume.clone());
            }
            let epoch = self.state().map_or(0, |s| s.epoch);
            if let Some(halt) = peer.halt.filter(|h| h.id == target.id && h.epoch >= epoch) {
                let newer = self
                    .memory
                    .halt
                    .as_ref()
                    .is_none_or(|known| known.id != halt.id || known.epoch < halt.epoch);
                let from_member = self.takes_halt_from(peer, &target);
                if newer && from_member {
                    self.memory.halt = Some(halt.clone());
                }
                if newer && (!from_member || self.memory.complete) {
                    self.ignored
                        .insert((halt.id.clone(), halt.epoch, peer.node.to_owned()));
                }
            }
            if let Some(promote) = peer.promote.filter(|p| p.id == target.id) {
                self.memory.promote = Some(promote.clone());
            }
            self.hint(peer, Some(&target), actions);
        }
    }

    /// Whether a halt `peer` publishes for `target` is taken: the peer is a member whose own
    /// state is on that deployment.
    fn takes_halt_from(&self, peer: &Peer<'_>, target: &Target) -> bool {
        self.memory.members.contains_key(peer.node)
            && peer
                .state
                .and_then(|s| s.target.as_ref())
                .is_some_and(|t| t.id == target.id)
    }

    /// Notes, once and for good, that every member it knows is done on the target (and it too,
    /// with no halt in force).
    fn note_complete(&mut self, view: &View<'_>) {
        if self.memory.complete || self.step_now() != Some(Step::Done) || self.halted().is_some() {
            return;
        }
        let Some(target) = self.target() else {
            return;
        };
        let done: BTreeSet<&str> = view
            .peers
            .iter()
            .filter(|p| {
                p.state.is_some_and(|s| {
                    s.step == Some(Step::Done)
                        && s.target.as_ref().is_some_and(|t| t.id == target.id)
                })
            })
            .map(|p| p.node)
            .collect();
        let all = self
            .memory
            .members
            .keys()
            .filter(|node| **node != self.settings.node)
            .all(|node| done.contains(node.as_str()));
        if all {
            self.memory.complete = true;
        }
    }

    fn hint(&mut self, peer: &Peer<'_>, mine: Option<&Target>, actions: &mut Vec<Action>) {
        let Some(theirs) = peer.state.and_then(|s| s.target.as_ref()) else {
            return;
        };
        if peer.alive && Some(theirs) != mine && self.hinted.insert(theirs.clone()) {
            actions.push(Action::CheckChannel(theirs.clone()));
        }
    }

    /// Halts the target once its failures in this epoch exceed `max_failures` (never once it is
    /// complete: failures claimed after that send no one back).
    fn count_failures(&mut self, view: &View<'_>) {
        if self.memory.complete {
            return;
        }
        let (Some(state), Some(policy)) = (self.state(), self.policy.as_ref()) else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some() {
            return;
        }
        let mut total = state.failures;
        let mut first: Option<(&str, Option<&str>)> =
            (state.failures > 0).then_some((self.settings.node.as_str(), state.reason.as_deref()));
        for peer in &view.peers {
            let Some(theirs) = peer.state else { continue };
            if peer.node == self.settings.node
                || !self.memory.members.contains_key(peer.node)
                || theirs.target.as_ref().map(|t| &t.id) != Some(&target.id)
                || theirs.epoch != state.epoch
                || theirs.failures == 0
            {
                continue;
            }
            total += theirs.failures;
            if first.is_none_or(|(node, _)| peer.node < node)
                && first.map(|(n, _)| n) != Some(self.settings.node.as_str())
            {
                first = Some((peer.node, theirs.reason.as_deref()));
            }
        }
        if total <= policy.max_failures {
            return;
        }
        let (host, reason) = first.unwrap_or((self.settings.node.as_str(), None));
        let reason = format!("{host} failed: {}", reason.unwrap_or("deployment failed"));
        let host = host.to_owned();
        self.halt(host, &reason);
    }

    /// Halts the target when no host completed it within `progress_deadline`.
    fn check_progress(&mut self, view: &View<'_>, now: Millis) {
        let (Some(state), Some(policy)) = (self.state(), self.policy.as_ref()) else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some()
            || matches!(self.wait, Wait::Promotion)
            || !self.sees_majority(view)
        {
            // Cut off from most of the group it cannot tell whether the others progress: a
            // minority side must not halt a rollout the majority carries on.
            self.progress.1 = now;
            return;
        }
        let on_target = |s: &GroupState| s.target.as_ref().map(|t| &t.id) == Some(&target.id);
        let mut done = usize::from(state.step == Some(Step::Done));
        let mut open = !settled(state.step);
        for peer in &view.peers {
            let Some(theirs) = peer.state.filter(|s| on_target(s)) else {
                open |= peer.alive;
                continue;
            };
            done += usize::from(theirs.step == Some(Step::Done));
            // A dead runner matters only to the live hosts waiting behind it: once every live
            // host has settled, nothing is stalled and a halt would only revert done hosts.
            open |= !settled(theirs.step) && peer.alive;
        }
        if done > self.progress.0 || !open {
            self.progress = (done.max(self.progress.0), now);
            return;
        }
        let deadline = policy.progress_deadline;
        if u128::from(now.saturating_sub(self.progress.1)) > deadline.as_millis() {
            let reason = format!(
                "progress deadline: no host completed {} within {}",
                target.revision,
                crate::duration::format_duration(deadline)
            );
            let node = self.settings.node.clone();
            self.halt(node, &reason);
        }
    }

    /// Whether it sees a majority of the members it knows alive (itself included).
    fn sees_majority(&self, view: &View<'_>) -> bool {
        let (alive, members) = self.alive_members(view);
        alive * 2 > members
    }

    /// Members it sees alive and members it knows, itself included in both.
    fn alive_members(&self, view: &View<'_>) -> (usize, usize) {
        let alive = view
            .peers
            .iter()
            .filter(|p| {
                p.alive && p.node != self.settings.node && self.memory.members.contains_key(p.node)
            })
            .count();
        (alive + 1, self.memory.members.len() + 1)
    }

    /// Remembers the members gossip shows; forgets those not seen alive for `forget_after`.
    /// Returns whether the set of members changed.
    fn learn_members(&mut self, view: &View<'_>, now: Millis) -> bool {
        let mut changed = false;
        for peer in &view.peers {
            if peer.node == self.settings.node {
                continue;
            }
            if peer.alive {
                // Coarse, so the memory (persisted when it changes) changes rarely.
                let coarse = self.settings.forget_after / 16;
                let seen = self.memory.members.get(peer.node).copied();
                if seen.is_none_or(|seen| now.saturating_sub(seen) >= coarse) {
                    changed |= seen.is_none();
                    self.memory.members.insert(peer.node.to_owned(), now);
                }
                if !self.heard.contains(peer.node) {
                    self.heard.insert(peer.node.to_owned());
                }
                self.forgotten.remove(peer.node);
            } else if !self.memory.members.contains_key(peer.node)
                && !self.forgotten.contains(peer.node)
            {
                // A dead member it did not know of (learned after a restart): remembered, so
                // it counts until forgotten. One it forgot stays forgotten while it is dead.
                changed = true;
                self.memory.members.insert(peer.node.to_owned(), now);
            }
        }
        let forget_after = self.settings.forget_after;
        let forgotten = &mut self.forgotten;
        let before = self.memory.members.len();
        self.memory.members.retain(|node, seen| {
            let keep = now.saturating_sub(*seen) <= forget_after;
            if !keep {
                forgotten.insert(node.clone());
            }
            keep
        });
        changed || self.memory.members.len() != before
    }

    /// Why this host may not start the target now; `None` when it may.
    fn blocked(&mut self, view: &View<'_>, now: Millis) -> Option<Wait> {
        if self.halted().is_some() {
            return Some(Wait::Halted);
        }
        let state = self.state()?;
        let target = state.target.clone()?;
        let epoch = state.epoch;
        if self.fetched.as_deref() != Some(target.id.as_str()) {
            return Some(Wait::Fetching);
        }
        let policy = self.policy.clone().unwrap_or_default();
        let peers: BTreeMap<&str, &Peer<'_>> = view
            .peers
            .iter()
            .filter(|p| p.node != self.settings.node)
            .map(|p| (p.node, p))
            .collect();
        let (alive, members) = self.alive_members(view);
        if alive * 2 <= members {
            return Some(Wait::NoMajority { alive, members });
        }
        let heard = 1 + self
            .memory
            .members
            .keys()
            .filter(|m| self.heard.contains(*m))
            .count();
        if now.saturating_sub(self.up_since) < self.settings.warmup || heard * 2 <= members {
            return Some(Wait::WarmingUp);
        }
        let mine = self.state().and_then(|s| s.members.clone());
        let disagree = |p: &&&Peer<'_>| p.alive && p.state.and_then(|s| s.members.clone()) != mine;
        if peers.values().any(|p| disagree(&p)) {
            return Some(Wait::Membership);
        }
        let behind = |p: &&&Peer<'_>| {
            p.alive
                && p.state.is_some_and(|s| {
                    s.target.as_ref().map(|t| &t.id) == Some(&target.id) && s.epoch < epoch
                })
        };
        if epoch > 0 && peers.values().any(|p| behind(&p)) {
            return Some(Wait::Resuming);
        }
        self.refresh_order(&target.id);
        let order = self.order().to_vec();
        let me = order.iter().position(|n| *n == self.settings.node)?;
        let slot = |node: &str| -> Slot {
            let Some(peer) = peers.get(node) else {
                // Remembered but not in gossip (yet): it may be running.
                return Slot::Unknown;
            };
            let on_target = peer
                .state
                .filter(|s| s.target.as_ref().map(|t| &t.id) == Some(&target.id));
            // Failed or gone back in an epoch a resume has voided, it will wait for its turn
            // again once it learns of the resume: it is not settled in this epoch.
            let voided = on_target.is_some_and(|s| s.epoch < epoch);
            match on_target.and_then(|s| s.step) {
                Some(Step::Running) => Slot::Running,
                Some(Step::Done) => Slot::Done,
                Some(step) if settled(Some(step)) && !voided => Slot::Settled,
                _ if peer.alive => Slot::NotStarted,
                _ => Slot::Skipped,
            }
        };
        let slots: Vec<Slot> = order
            .iter()
            .map(|n| {
                if *n == self.settings.node {
                    Slot::Me
                } else {
                    slot(n)
                }
            })
            .collect();
        let n = order.len();
        let (batch, first) = match policy.strategy {
            Strategy::AllAtOnce => (n, 0),
            Strategy::OneAtATime => (1, 0),
            Strategy::HalfAtATime => (n.div_ceil(2), 0),
            Strategy::Rolling => (policy.max_parallel.of(n), 0),
            Strategy::Canary => {
                let canaries = policy.canary.of(n);
                if me < canaries {
                    (canaries, 0)
                } else {
                    if !slots[..canaries].iter().all(|s| *s == Slot::Done) {
                        return Some(Wait::Canaries);
                    }
                    let promoted = policy.auto_promote
                        || self
                            .memory
                            .promote
                            .as_ref()
                            .is_some_and(|p| p.id == target.id);
                    if !promoted {
                        return Some(Wait::Promotion);
                    }
                    (policy.max_parallel.of(n), canaries)
                }
            }
            Strategy::Linear => {
                let (step, every) = policy.linear.map_or((policy.max_parallel.of(n), 0), |l| {
                    (
                        l.step.of(n),
                        u64::try_from(l.every.as_millis()).unwrap_or(u64::MAX),
                    )
                });
                let stage = me / step;
                let first = stage * step;
                if stage > 0 {
                    if slots[..first].iter().any(|s| s.unsettled()) {
                        self.linear_open = None;
                        return Some(Wait::Step);
                    }
                    let opened = match self.linear_open {
                        Some((open, at)) if open == stage => at,
                        _ => {
                            self.linear_open = Some((stage, now));
                            now
                        }
                    };
                    if now.saturating_sub(opened) < every {
                        return Some(Wait::Step);
                    }
                }
                (step, first)
            }
        };
        let before = slots[first..me].iter().filter(|s| s.unsettled()).count();
        let after = slots[me + 1..].iter().filter(|s| s.may_run()).count();
        let busy = before + after;
        (busy >= batch).then_some(Wait::Turn { busy, batch })
    }

    /// 8 hex digits of sha256 over the sorted members (this host included), 0-separated.
    fn members_hash(&self) -> String {
        let mut members: Vec<&str> = self.memory.members.keys().map(String::as_str).collect();
        members.push(&self.settings.node);
        members.sort_unstable();
        members.dedup();
        let mut hash = Sha256::new();
        for member in members {
            hash.update(member.as_bytes());
            hash.update([0]);
        }
        hash.finalize()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn refresh_order(&mut self, id: &str) {
        let mut members: Vec<String> = self.memory.members.keys().cloned().collect();
        members.push(self.settings.node.clone());
        members.sort();
        members.dedup();
        if let Some((cached, known, _)) = &self.order
            && cached == id
            && *known == members
        {
            return;
        }
        let order = rollout_order(id, &members);
        self.order = Some((id.to_owned(), members, order));
    }
}

/// A run interrupted this many times on one host fails for good.
pub const MAX_INTERRUPTIONS: u32 = 3;

/// Where another member stands, as this host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Me,
    /// Running the target's lifecycle (alive or not: a dead runner keeps its slot).
    Running,
    /// Done with the target.
    Done,
    /// Failed or went back.
    Settled,
    /// Alive and not started.
    NotStarted,
    /// Dead and not running: it may still start unseen, so it counts like one not started.
    Skipped,
    /// Remembered but not seen in gossip since this host started.
    Unknown,
}

impl Slot {
    /// Counts against the batch when it is ahead of this host in the order.
    fn unsettled(self) -> bool {
        matches!(
            self,
            Self::Running | Self::NotStarted | Self::Skipped | Self::Unknown
        )
    }

    /// Counts against the batch when it is after this host in the order.
    fn may_run(self) -> bool {
        matches!(self, Self::Running | Self::Unknown)
    }
}

fn settled(step: Option<Step>) -> bool {
    matches!(
        step,
        Some(Step::Done | Step::Failed | Step::Reverting | Step::Reverted)
    )
}

/// The members in the order a deployment takes them: by sha256(deployment id ‖ 0x00 ‖ node id).
pub fn rollout_order(id: &str, members: &[String]) -> Vec<String> {
    let mut keyed: Vec<([u8; 32], &String)> = members
        .iter()
        .map(|m| {
            let mut hash = Sha256::new();
            hash.update(id.as_bytes());
            hash.update([0]);
            hash.update(m.as_bytes());
            (hash.finalize().into(), m)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, m)| m.clone()).collect()
}
