//! A group task's part in the group's rollout. The decisions are the pure planner's
//! ([`shoal_shared::rollout::plan`]); here they meet the world: the planner is fed what
//! happens on this host and what gossip shows of its peers, its memory is journaled before
//! anything it decided is carried out, what it publishes goes to the mesh, and its actions run.
//! Without a mesh the group is a group of one and the same planner runs with no peers.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shoal_shared::gossip::Step;
use shoal_shared::rollout::plan::CommandError;
use shoal_shared::rollout::{Action, Event, Outcome, Planner, Revision};
use shoal_shared::status::{HaltInfo, Phase, Rollout};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use super::group::GroupTask;
use super::journal::{InFlight, JournalFile};
use super::settle::Settled;

use crate::coordinate::{GroupSnapshot, Mesh};
use crate::execute::deployment::record::now_ms;

/// What a group task shares with the status endpoint's controls.
#[derive(Clone)]
pub struct GroupControl {
    /// The group's planner.
    pub planner: Arc<Mutex<Planner>>,
    /// The group's journal (the planner's memory is persisted there).
    pub journal: Arc<Mutex<JournalFile>>,
    /// Wakes the group task after a command.
    pub wake: Arc<Notify>,
}

/// Why an operator command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailed {
    /// The planner does not take it now (no release, not halted, not a canary deployment).
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// It could not be persisted.
    #[error("cannot record the command on this host: {0}")]
    Journal(#[source] super::journal::JournalError),
}

impl GroupControl {
    /// Applies `halt`, `resume` or `promote` on this host, persists it, and wakes the group
    /// task, which publishes it to the mesh. Returns the deployment it applies to.
    pub fn command(&self, event: Event) -> Result<String, CommandFailed> {
        let mut planner = lock(&self.planner);
        let before = planner.clone();
        planner.command(event)?;
        let memory = planner.memory().clone();
        let deployment = planner.target().map(|t| t.id.clone()).unwrap_or_default();
        if let Err(e) = lock(&self.journal).change(|j| j.plan = Some(memory)) {
            // Not recorded: not applied either.
            *planner = before;
            return Err(CommandFailed::Journal(e));
        }
        drop(planner);
        self.wake.notify_one();
        Ok(deployment)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often a waiting host looks again without news (deadlines, linear steps, warmup).
pub(super) const TICK: Duration = Duration::from_secs(1);

impl GroupTask {
    pub(super) fn planner(&self) -> MutexGuard<'_, Planner> {
        lock(&self.control.planner)
    }

    /// Whether the planner wants to be stepped again without news.
    pub(super) fn wants_tick(&self) -> bool {
        let planner = self.planner();
        matches!(planner.step_now(), Some(Step::Waiting | Step::Running))
            || planner.halted().is_some()
    }

    fn snapshot(&self) -> impl Future<Output = GroupSnapshot> + Send + 'static {
        let (mesh, group) = (self.mesh.clone(), self.group.name.clone());
        async move {
            match mesh {
                Some(mesh) => mesh.group(&group).await,
                None => GroupSnapshot::default(),
            }
        }
    }

    /// Steps the planner with `event` and carries out what it asks, until it asks nothing.
    pub(super) async fn drive(&mut self, event: Event) {
        let mut event = Some(event);
        while let Some(next) = event.take() {
            let snapshot = self.snapshot().await;
            let (actions, halt, ignored) = {
                let mut planner = self.planner();
                let before = planner.halted().cloned();
                let ignored_before = planner.ignored_halts();
                let actions = planner.step(next, &snapshot.view(), now_ms());
                let after = planner.halted().cloned();
                let ignored = planner.ignored_halts().saturating_sub(ignored_before);
                (
                    actions,
                    after.filter(|h| Some(h) != before.as_ref()),
                    ignored,
                )
            };
            if let Some(halt) = halt {
                warn!(deployment.id = %halt.id, halt.host = %halt.host, reason = %halt.reason, "rollout halted");
            }
            if ignored > 0 {
                warn!(
                    count = ignored,
                    "a peer's halt not acted on: it came from a node outside the deployment, or the release was already complete here"
                );
                self.metrics.ignored_halts(&self.group.name, ignored);
            }
            self.remember();
            self.publish().await;
            self.show_rollout();
            for action in actions {
                event = match action {
                    Action::CheckChannel(target) => {
                        info!(revision.id = %target.revision, digest = %target.digest, "a peer announced a release; checking the channel");
                        self.check_soon = true;
                        None
                    }
                    Action::Deploy(target) => self.take_turn(&target.digest).await,
                    Action::Revert(to) => self.revert_halted(&to).await,
                };
            }
            if self.stop.is_requested() {
                return;
            }
        }
    }

    /// Runs the target's lifecycle now that its turn has come; the event to report.
    async fn take_turn(&mut self, digest: &str) -> Option<Event> {
        let prepared = self
            .prepared
            .clone()
            .filter(|p| p.release.digest.to_string() == digest);
        let Some(prepared) = prepared else {
            // After a restart the release is fetched again at the first check.
            self.check_soon = true;
            return Some(Event::Ran(Outcome::Interrupted {
                reason: "the release is not fetched yet".to_owned(),
                changed_host: false,
                reverted: false,
            }));
        };
        let settled = self.run_target(&prepared).await;
        self.settled_event(settled, false)
    }

    /// The planner's view of how a run of the target (or of a revert, `revert`) settled.
    pub(super) fn settled_event(&self, settled: Settled, revert: bool) -> Option<Event> {
        Some(match (settled, revert) {
            (Settled::Stopped, _) => return None,
            (Settled::Succeeded, true) => Event::Reverted { ok: true },
            (_, true) => Event::Reverted { ok: false },
            (Settled::Succeeded, false) => Event::Ran(Outcome::Done),
            (
                Settled::Failed {
                    reason,
                    changed,
                    reverted,
                },
                false,
            ) => Event::Ran(Outcome::Failed {
                reason,
                changed_host: changed,
                reverted,
            }),
            (Settled::Again, false) => Event::Ran(Outcome::Interrupted {
                reason: "cut short before it changed the host".to_owned(),
                changed_host: false,
                reverted: false,
            }),
        })
    }

    /// After a restart: what the deployment cut short means to the planner.
    pub(super) fn recovered_event(&self, in_flight: &InFlight, settled: Settled) -> Option<Event> {
        let step = self.planner().step_now();
        match (step, in_flight.reverts.is_some()) {
            // A revert after a halt.
            (Some(Step::Reverting), _) => self.settled_event(settled, true),
            // The target's own run: whatever the revert after it did, the host takes its
            // turn again (or the failure halts the group).
            (Some(Step::Running), false) => match settled {
                Settled::Stopped => None,
                Settled::Again | Settled::Succeeded => Some(Event::Ran(Outcome::Interrupted {
                    reason: format!("interrupted by agent restart during {}", in_flight.step),
                    changed_host: false,
                    reverted: false,
                })),
                Settled::Failed {
                    reason, reverted, ..
                } => Some(Event::Ran(Outcome::Interrupted {
                    reason,
                    changed_host: true,
                    reverted,
                })),
            },
            // The revert after its own failure.
            (Some(Step::Running), true) => self.settled_event(settled, false),
            _ => None,
        }
    }

    /// The group halted a release this host had completed (or a run left it half-installed):
    /// go back to the revision `to`.
    async fn revert_halted(&mut self, to: &Revision) -> Option<Event> {
        let target = self.planner().target().cloned()?;
        let (current, known) = {
            let journal = &self.journal().journal;
            let known = [&journal.previous, &journal.last_known_good]
                .into_iter()
                .flatten()
                .find(|i| i.digest == to.digest)
                .cloned();
            (journal.current.clone(), known)
        };
        if current.as_ref().map(|c| &c.digest) == Some(&to.digest) {
            return Some(Event::Reverted { ok: true });
        }
        let Some(installed) = known else {
            warn!(revision.id = %to.name, "the revision to go back to is not on this host");
            return Some(Event::Reverted { ok: false });
        };
        info!(deployment.id = %target.id, revision.id = %installed.revision, "the group halted this release; going back");
        let revert = self.start_revert(installed, target.id.clone(), 1)?;
        let ended = self.run_deployment(&revert, Vec::new(), None).await;
        let settled = self.settle(revert, ended).await;
        self.settled_event(settled, true)
    }

    /// Journals the planner's memory when it changed, before anything it decided runs.
    fn remember(&mut self) {
        let memory = self.planner().memory().clone();
        let mut journal = self.journal();
        if journal.journal.plan.as_ref() == Some(&memory) {
            return;
        }
        if let Err(e) = journal.change(|j| j.plan = Some(memory)) {
            error!(error = %e, "cannot write the journal");
        }
    }

    /// Publishes what the planner publishes, when it changed.
    async fn publish(&mut self) {
        let published = self.planner().values();
        if published == self.published {
            return;
        }
        if let Some(mesh) = self.mesh.clone() {
            let group = self.group.name.clone();
            mesh.publish(&group, &published).await;
        }
        self.published = published;
    }

    /// Shows the host's part in the rollout in status.
    fn show_rollout(&self) {
        let (rollout, phase) = {
            let planner = self.planner();
            let Some(target) = planner.target() else {
                return;
            };
            let step = planner.step_now();
            let halted = planner.halted().map(|h| HaltInfo {
                host: h.host.clone(),
                reason: h.reason.clone(),
            });
            let waiting = step == Some(Step::Waiting);
            let busy = matches!(step, Some(Step::Running | Step::Reverting));
            let phase = match (step, &halted) {
                _ if busy => None,
                (_, Some(_)) => Some(Phase::Halted),
                (Some(Step::Waiting), None) => Some(Phase::Waiting),
                _ => None,
            };
            let order = planner.order();
            let rollout = Rollout {
                deployment: target.id.clone(),
                revision: target.revision.clone(),
                step: step.map_or("waiting", Step::as_str).to_owned(),
                waiting_for: waiting.then(|| planner.wait().to_string()),
                position: order.iter().position(|n| n == planner.node()),
                members: planner.memory().members.len() + 1,
                halted,
            };
            (rollout, phase)
        };
        self.show(|g| {
            g.rollout = Some(rollout);
            if let Some(phase) = phase {
                g.phase = phase;
                g.target_revision = g.rollout.as_ref().map(|r| r.revision.clone());
                g.current_event = None;
            } else if matches!(g.phase, Phase::Waiting | Phase::Halted) {
                g.phase = Phase::Idle;
                g.target_revision = None;
            }
        });
    }
}

/// The mesh a group task publishes to, if the agent has one.
pub(super) type MeshRef = Option<Arc<Mesh>>;
