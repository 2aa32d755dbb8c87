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
//!
//! The planner's parts: `types` (what it is given, asks for and keeps), `members` (who is in
//! the group and alive), `turn` (whether this host's turn has come), `progress` (its way
//! through a deployment) and `halt` (halts, resumes and promotes).

mod halt;
mod members;
mod progress;
mod turn;
mod types;

use std::collections::BTreeSet;

pub use turn::rollout_order;
pub use types::{
    Action, Command, CommandError, Cut, Cuts, Event, MAX_INTERRUPTIONS, Memory, Millis, Outcome,
    Peer, RECENT_ROUNDS, Revision, Settings, View, Wait,
};

use super::policy::{Policy, Strategy};
use crate::gossip::{GroupState, GroupValues, Halt, Health, Step, Target};

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
    /// When the target last advanced: it arrived, or a host finished (or none was left to).
    /// Unlike `progress`, not moved while the deadline is not judged (halted, waiting for a
    /// promote, cut off from a majority): it tells how long a rollout has stood still.
    advanced: Millis,
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
    /// The deployment and epoch whose revert failed on this host during this run of the agent:
    /// the halt does not send it back again and again (a restart tries once more).
    gave_up: Option<(String, u32)>,
}

impl Planner {
    /// A planner starting at `now` from what was persisted (default for a first start).
    /// `default_policy` applies when the memory holds no readable policy.
    pub fn new(
        settings: Settings,
        mut memory: Memory,
        default_policy: &Policy,
        now: Millis,
    ) -> Self {
        // Older journals kept only the members still in the order.
        let members: Vec<String> = memory.members.keys().cloned().collect();
        memory.known.extend(members);
        // A host that left and starts again rejoins.
        if let Some(state) = memory.state.as_mut() {
            state.leaving = false;
        }
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
            advanced: now,
            linear_open: None,
            order: None,
            wait: Wait::Nothing,
            health,
            fetched: None,
            members_hash: None,
            forgotten: BTreeSet::new(),
            ignored: BTreeSet::new(),
            gave_up: None,
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

    /// When the target's rollout last advanced, as this host saw it (ms since the epoch): it
    /// arrived, or a host finished it.
    pub fn advanced_at(&self) -> Millis {
        self.advanced
    }

    /// The health this host was last told of (what it publishes).
    pub fn health(&self) -> Health {
        self.health
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
            live: None,
            rollback: None,
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

    /// Whether this run of the agent has the target's files at hand ([`Event::Release`] gave
    /// them; a restart or a run cut short needs them again).
    pub fn has_files(&self) -> bool {
        self.target()
            .is_some_and(|t| self.fetched.as_deref() == Some(t.id.as_str()))
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

    /// Whether the rollout of the target is expected to move: there is one, it is not
    /// complete, halted or waiting for `shoal promote` (each of which waits on a person).
    pub fn going(&self) -> bool {
        self.target().is_some()
            && !self.complete()
            && self.halted().is_none()
            && !matches!(self.wait, Wait::Promotion)
    }

    /// While the rollout goes on: when it fails for standing still, unless it moves before
    /// (the last progress plus the policy's `progress_deadline`).
    pub fn deadline(&self) -> Option<Millis> {
        let policy = self.policy().filter(|_| self.going())?;
        let span = u64::try_from(policy.progress_deadline.as_millis()).unwrap_or(u64::MAX);
        Some(self.advanced_at().saturating_add(span))
    }

    /// Whether this host is one of the target's canaries: the first `canary` hosts of the
    /// order of a canary policy.
    pub fn is_canary(&self) -> bool {
        let order = self.order();
        let Some(policy) = self.policy().filter(|p| p.strategy == Strategy::Canary) else {
            return false;
        };
        order
            .iter()
            .position(|n| *n == self.settings.node)
            .is_some_and(|me| me < policy.canary.of(order.len()))
    }

    /// The members of the group this host knows (itself included), in the target's order.
    pub fn order(&self) -> &[String] {
        self.order.as_ref().map_or(&[], |(_, _, order)| order)
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
        if self.memory.rerun && self.step_now() == Some(Step::Running) {
            // Its run was cut short: it holds its slot and runs the target again from the
            // start once it has the files and passes every start's gates (warmed up, a
            // majority in sight); a halt sends it back instead.
            match self.rerun_blocked(view, now) {
                Some(wait) => self.wait = wait,
                None => {
                    if let Some(target) = self.target().cloned() {
                        self.memory.rerun = false;
                        actions.push(Action::Deploy(target));
                    }
                }
            }
        }
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

    /// The target's deployment id and this host's epoch of it.
    fn deployment_epoch(&self) -> Option<(String, u32)> {
        let state = self.state()?;
        Some((state.target.as_ref()?.id.clone(), state.epoch))
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
}
