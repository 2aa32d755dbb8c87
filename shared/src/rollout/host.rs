//! One host's part in one group, as a pure state machine: the journal that makes it crash-safe
//! and the planner that takes turns with its peers. The agent and the simulator drive this very
//! code. They carry out the [`Work`] it asks for (run a deployment or a revert, check the
//! channel), tell it how each run [`Ended`], and persist [`GroupHost::journal`] whenever
//! [`GroupHost::take_changed`] says so, *before* carrying out anything it asked for: every
//! decision and the planner's memory reach the disk in one write.
//!
//! What follows a run:
//! - A run of the target that succeeded makes it current and last known good; the revision
//!   before becomes `previous`, where the host goes back if the group halts the release later.
//! - A run of the target that failed goes to the planner: it counts the failure and publishes
//!   it (with the halt it may cause) and, when the run changed the host and the policy says
//!   so, asks for a revert to the last known good revision, which runs only after that.
//! - A run of the target that a restart found cut short goes to the planner too. A planned
//!   stop (the agent stopped it at an event boundary, [`Ended::Stopped`]) is not a failure,
//!   nor is the first crash of the target's run on this host: the host runs the target again
//!   from the start once the channel gives it the release again, holding its slot. Only a
//!   run cut short more often counts as a failure, as above.
//! - A revert cut short by a restart is tried again, to the very revision it was installing,
//!   up to [`MAX_REVERT_ATTEMPTS`] in all. A revert that failed is not tried again: the host is
//!   failed, for the operator.
//! - A journal whose planner is mid-run with nothing in flight (left by an older agent) heals
//!   at the start: a run that never started runs again, a revert is asked for again.
//! - A shutdown leaves the run in flight, marked stopped; the next start finds it cut short.

use std::path::{Path, PathBuf};

use super::ids::revert_id;
use super::journal::{InFlight, Installed, Journal, PREPARE};
use super::plan::{
    Action, Command, CommandError, Cut, Event, Memory, Millis, Outcome, Planner, Revision,
    Settings, View,
};
use super::policy::Policy;
use crate::gossip::{GroupState, Step, Target};

/// A revert cut short is tried this many times in all, then left to the operator.
pub const MAX_REVERT_ATTEMPTS: u32 = 3;

/// What a run that did not succeed did to the host, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Why it failed (or where it was cut short).
    pub reason: String,
    /// Whether it changed the host: any event past DownloadBundle ran (a deployment refused
    /// at its AppSpec changed nothing).
    pub changed_host: bool,
    /// Whether its Install event completed: the host then has its files.
    pub installed: bool,
}

/// How a run the host carried out ([`Work::Run`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Its hooks passed and the host was healthy for the policy's `min_healthy_time`.
    Succeeded {
        /// The deployment directory it installed from.
        dir: PathBuf,
    },
    /// It failed: a hook, the health check or the healthy deadline.
    Failed(Failure),
    /// A restart found it cut short: the agent did not see it end.
    Cut(Failure),
    /// The agent is shutting down; the journal keeps the run in flight.
    Stopped,
}

/// What the host is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Run this deployment (the target's lifecycle, or a revert: `reverts` says which); it is
    /// journaled in flight. Report its end with [`GroupHost::ended`].
    Run(InFlight),
    /// A peer verified a release this host has not: check the channel now. Gossip is a hint,
    /// never a source of trust.
    CheckChannel(Target),
    /// A run that changed the host failed and is not reverted: say why on its record.
    Unreverted {
        /// The failed deployment's directory, if it made one.
        dir: Option<PathBuf>,
        /// Why it is not reverted.
        why: String,
    },
}

/// One host's journal and planner for one group.
#[derive(Debug, Clone)]
pub struct GroupHost {
    group: String,
    journal: Journal,
    planner: Planner,
    /// The target whose files this run of the agent has at hand, and where they are.
    files: Option<(String, PathBuf)>,
    /// Whether the journal changed since [`GroupHost::take_changed`] last said so.
    changed: bool,
}

impl GroupHost {
    /// The host of `group` starting at `now` from its journal (empty for a first start).
    /// `default_policy` applies when the journal holds no readable policy. Call
    /// [`GroupHost::recover`] next, before anything else.
    pub fn start(
        group: &str,
        settings: Settings,
        journal: Journal,
        default_policy: &Policy,
        now: Millis,
    ) -> Self {
        let memory = journal
            .plan
            .clone()
            .unwrap_or_else(|| first_memory(&journal));
        let planner = Planner::new(settings, memory, default_policy, now);
        let mut host = Self {
            group: group.to_owned(),
            journal,
            planner,
            files: None,
            changed: false,
        };
        host.sync();
        host
    }

    /// What must be persisted: the journal with the planner's memory.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The planner.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// The run in flight, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.journal.in_flight.as_ref()
    }

    /// The release the host waits to run without its files at hand (after a restart, or to
    /// run again after a run cut short): the channel must give it again, though it was
    /// started before.
    pub fn wants_release(&self) -> Option<&str> {
        let target = self.planner.target()?;
        let waits = match self.planner.step_now() {
            Some(Step::Waiting) => true,
            Some(Step::Running) => self.planner.memory().rerun,
            _ => false,
        };
        (waits && !self.planner.has_files()).then_some(target.revision.as_str())
    }

    /// Whether the host wants to be stepped again without news: it waits for its turn (whose
    /// conditions change with time: deadlines, linear steps, warmup), runs, or is halted.
    pub fn wants_tick(&self) -> bool {
        matches!(self.planner.step_now(), Some(Step::Waiting | Step::Running))
            || self.planner.halted().is_some()
    }

    /// Whether the journal changed since this was last asked (then it must be written before
    /// any work asked for since is carried out).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// At a start, before anything else. The run the journal has in flight was cut short;
    /// `cut` is what its record says of it (when nothing is in flight it is not used). A
    /// planner left mid-run with nothing in flight heals.
    pub fn recover(&mut self, cut: Failure, view: &View<'_>, now: Millis) -> Vec<Work> {
        if self.journal.in_flight.is_some() {
            return self.ended(Ended::Cut(cut), view, now);
        }
        match self.planner.step_now() {
            // It waits for the files to run its target again.
            Some(Step::Running) if self.planner.memory().rerun => Vec::new(),
            Some(Step::Running) => {
                let outcome = Outcome::Interrupted {
                    reason: "the agent restarted before the run started".to_owned(),
                    changed_host: false,
                    cut: Cut::NotStarted,
                };
                self.feed(Event::Ran(outcome), view, now)
            }
            Some(Step::Reverting) => match self.planner.memory().lkg.clone() {
                Some(to) => self.act(vec![Action::Revert(to)], view, now),
                None => self.feed(Event::Reverted { ok: false }, view, now),
            },
            _ => Vec::new(),
        }
    }

    /// The channel verified a release, whose files are at `files`.
    pub fn release(
        &mut self,
        target: Target,
        policy: Policy,
        files: PathBuf,
        view: &View<'_>,
        now: Millis,
    ) -> Vec<Work> {
        self.files = Some((target.id.clone(), files));
        self.feed(Event::Release { target, policy }, view, now)
    }

    /// Time passed, the view changed, or the health between deployments changed.
    pub fn step(&mut self, event: Event, view: &View<'_>, now: Millis) -> Vec<Work> {
        self.feed(event, view, now)
    }

    /// An operator's command on this host; the next step publishes and acts on it. Returns
    /// the deployment it applies to.
    pub fn command(&mut self, command: Command) -> Result<String, CommandError> {
        let deployment = self.planner.command(command)?;
        self.sync();
        Ok(deployment)
    }

    /// A release that cannot be deployed (refused when fetched, or for its policy) counts as
    /// attempted: the channel does not offer it again.
    pub fn attempted(&mut self, revision: &str) {
        if self.journal.last_target.as_deref() != Some(revision) {
            self.journal.last_target = Some(revision.to_owned());
            self.changed = true;
        }
    }

    /// The run in flight reached `step` (in the deployment directory `dir`, once it has one).
    pub fn at_step(&mut self, dir: Option<&Path>, step: &str) {
        if let Some(run) = self.journal.in_flight.as_mut() {
            if let Some(dir) = dir {
                run.dir = Some(dir.to_owned());
            }
            step.clone_into(&mut run.step);
            self.changed = true;
        }
    }

    /// The run in flight ended.
    pub fn ended(&mut self, ended: Ended, view: &View<'_>, now: Millis) -> Vec<Work> {
        let Some(run) = self.journal.in_flight.take() else {
            return Vec::new();
        };
        let (failure, cut) = match ended {
            Ended::Stopped => {
                // Still in flight, stopped on purpose: the next start finds it cut short and
                // runs it again without counting a failure.
                self.journal.in_flight = Some(InFlight {
                    stopped: true,
                    ..run
                });
                self.changed = true;
                return Vec::new();
            }
            Ended::Succeeded { dir } => {
                self.changed = true;
                let installed = Installed {
                    revision: run.revision.clone(),
                    digest: run.digest.clone(),
                    dir,
                };
                self.journal.current = Some(installed.clone());
                let before = self.journal.last_known_good.replace(installed);
                // A revert lands on the revision before: nothing older to go back to from it.
                self.journal.previous = if run.is_revert() { None } else { before };
                let event = if run.is_revert() {
                    Event::Reverted { ok: true }
                } else {
                    Event::Ran(Outcome::Done)
                };
                return self.feed(event, view, now);
            }
            Ended::Failed(failure) => (failure, false),
            Ended::Cut(failure) => (failure, true),
        };
        self.changed = true;
        if failure.installed
            && let Some(dir) = run.dir.clone()
        {
            self.journal.current = Some(Installed {
                revision: run.revision.clone(),
                digest: run.digest.clone(),
                dir,
            });
        }
        if run.is_revert() {
            let attempt = run.attempt.max(1) + 1;
            if cut && attempt <= MAX_REVERT_ATTEMPTS {
                // Again to the revision it was installing, whatever became last known good.
                let retry = InFlight {
                    dir: None,
                    step: PREPARE.to_owned(),
                    started_ms: now,
                    attempt,
                    stopped: false,
                    ..run
                };
                self.journal.in_flight = Some(retry.clone());
                return vec![Work::Run(retry)];
            }
            let why = if cut {
                format!(
                    "the revert to {} was cut short {MAX_REVERT_ATTEMPTS} times",
                    run.revision
                )
            } else {
                format!("the revert to {} failed: {}", run.revision, failure.reason)
            };
            let mut work = vec![Work::Unreverted { dir: run.dir, why }];
            work.extend(self.feed(Event::Reverted { ok: false }, view, now));
            return work;
        }
        if cut && !failure.changed_host {
            // The first check after this finds the release at the floor with nothing
            // deployed for it, and deploys it.
            self.journal.last_target = None;
        }
        let changed_host = failure.changed_host;
        let outcome = if cut {
            Outcome::Interrupted {
                reason: failure.reason,
                changed_host,
                cut: if run.stopped {
                    Cut::Stopped
                } else {
                    Cut::Crashed
                },
            }
        } else {
            Outcome::Failed {
                reason: failure.reason,
                changed_host,
            }
        };
        let mut work = self.feed(Event::Ran(outcome), view, now);
        let reverting = work
            .iter()
            .any(|w| matches!(w, Work::Run(r) if r.is_revert()));
        let memory = self.planner.memory();
        if changed_host && !reverting && memory.broken && !memory.rerun {
            let why = if self.planner.policy().is_some_and(|p| p.auto_revert) {
                "there is no last known good revision on this host to go back to".to_owned()
            } else {
                format!(
                    "auto_revert is off; {} stays installed as it is",
                    run.revision
                )
            };
            work.insert(0, Work::Unreverted { dir: run.dir, why });
        }
        work
    }

    /// Steps the planner with `event` and turns what it asks into work.
    fn feed(&mut self, event: Event, view: &View<'_>, now: Millis) -> Vec<Work> {
        let actions = self.planner.step(event, view, now);
        self.act(actions, view, now)
    }

    fn act(&mut self, actions: Vec<Action>, view: &View<'_>, now: Millis) -> Vec<Work> {
        let mut work = Vec::new();
        for action in actions {
            match action {
                Action::CheckChannel(target) => work.push(Work::CheckChannel(target)),
                Action::Deploy(target) => match self.begin(&target, now) {
                    Some(run) => work.push(Work::Run(run)),
                    None => {
                        // After a restart the channel gives the release's files again first.
                        let outcome = Outcome::Interrupted {
                            reason: "the release is not fetched yet".to_owned(),
                            changed_host: false,
                            cut: Cut::NotStarted,
                        };
                        work.extend(self.feed(Event::Ran(outcome), view, now));
                    }
                },
                Action::Revert(to) => match self.begin_revert(&to, now) {
                    Some(run) => work.push(Work::Run(run)),
                    None => {
                        let why = format!(
                            "the revision to go back to, {}, is not on this host",
                            to.name
                        );
                        work.push(Work::Unreverted { dir: None, why });
                        work.extend(self.feed(Event::Reverted { ok: false }, view, now));
                    }
                },
            }
        }
        self.sync();
        work
    }

    /// Journals the target's run in flight, if its files are at hand and nothing else runs.
    fn begin(&mut self, target: &Target, now: Millis) -> Option<InFlight> {
        let (_, files) = self.files.as_ref().filter(|(id, _)| *id == target.id)?;
        if self.journal.in_flight.is_some() {
            return None;
        }
        let run = InFlight {
            deployment_id: target.id.clone(),
            revision: target.revision.clone(),
            digest: target.digest.clone(),
            bundle: files.clone(),
            reverts: None,
            auto_revert: self.planner.policy().is_some_and(|p| p.auto_revert),
            dir: None,
            step: PREPARE.to_owned(),
            started_ms: now,
            attempt: 0,
            stopped: false,
        };
        self.journal.last_target = Some(target.revision.clone());
        self.journal.in_flight = Some(run.clone());
        self.changed = true;
        Some(run)
    }

    /// Journals a revert to `to` of the target in flight, if the host has `to` installed.
    fn begin_revert(&mut self, to: &Revision, now: Millis) -> Option<InFlight> {
        let installed = self.journal.installed(&to.digest)?.clone();
        let failed = self.planner.target()?.id.clone();
        if self.journal.in_flight.is_some() {
            return None;
        }
        let run = InFlight {
            deployment_id: revert_id(&self.group, &installed.digest, &failed),
            revision: installed.revision.clone(),
            digest: installed.digest.clone(),
            bundle: installed.archive(),
            reverts: Some(failed),
            auto_revert: false,
            dir: None,
            step: PREPARE.to_owned(),
            started_ms: now,
            attempt: 1,
            stopped: false,
        };
        self.journal.in_flight = Some(run.clone());
        self.changed = true;
        Some(run)
    }

    /// Puts the planner's memory into the journal when it changed.
    fn sync(&mut self) {
        let memory = self.planner.memory();
        if self.journal.plan.as_ref() != Some(memory) {
            self.journal.plan = Some(memory.clone());
            self.changed = true;
        }
    }
}

/// The planner's memory on a host whose journal predates the mesh: what it runs.
fn first_memory(journal: &Journal) -> Memory {
    let state = journal.current.as_ref().map(|c| GroupState {
        revision: Some(c.revision.clone()),
        digest: Some(c.digest.clone()),
        ..GroupState::default()
    });
    Memory {
        state,
        ..Memory::default()
    }
}
