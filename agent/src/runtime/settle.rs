//! A group task settling a deployment: success makes it current and last known good; a
//! failure (or a deployment a previous run of the agent did not see end) is decided by
//! [`super::after_failure`] and may start a revert, journaled in the same write.

use std::path::{Path, PathBuf};

use shoal_shared::appspec::lifecycle;
use shoal_shared::rollout::revert_id;
use shoal_shared::status::Phase;
use tracing::{error, info, warn};

use super::deploying::{Ended, dir_name, save};
use super::group::GroupTask;
use super::journal::{InFlight, Installed};
use super::observer::PREPARE;
use super::{Next, after_failure, changed_host, mark_interrupted};
use crate::execute::deployment::{DeploymentRecord, Status, record::now_ms};
use crate::execute::layout::Layout;
use crate::report::board::summarize;

/// How a deployment and whatever followed it on this host (a revert) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Settled {
    /// It succeeded (for a revert: the host runs its last known good revision again).
    Succeeded,
    /// It failed.
    Failed {
        /// Why it failed.
        reason: String,
        /// Whether it changed the host.
        changed: bool,
        /// Whether a revert followed and succeeded.
        reverted: bool,
    },
    /// Cut short before it changed the host: it can run again.
    Again,
    /// The agent is shutting down; the journal keeps it in flight.
    Stopped,
}

impl GroupTask {
    /// After a deployment ended: record success, or decide and run the revert.
    pub(super) async fn settle(&mut self, in_flight: InFlight, ended: Ended) -> Settled {
        self.settle_from(in_flight, ended, None).await
    }

    /// [`GroupTask::settle`], where `failure` is why an earlier deployment failed when
    /// `in_flight` is the revert that followed it.
    async fn settle_from(
        &mut self,
        mut in_flight: InFlight,
        mut ended: Ended,
        mut failure: Option<String>,
    ) -> Settled {
        loop {
            let next = match ended {
                Ended::Stopped => {
                    info!(deployment.id = %in_flight.deployment_id, "deployment left in flight by shutdown");
                    self.metrics
                        .deployment_ended(&self.group.name, "interrupted");
                    return Settled::Stopped;
                }
                Ended::Succeeded { dir } => {
                    self.succeeded(&in_flight, dir);
                    return match failure {
                        Some(reason) => Settled::Failed {
                            reason,
                            changed: true,
                            reverted: true,
                        },
                        None => Settled::Succeeded,
                    };
                }
                Ended::Failed { record } => {
                    let reason = failure_reason(record.as_deref());
                    failure.get_or_insert(reason);
                    self.failed(&in_flight, record.as_deref(), false)
                }
            };
            // A failure that left the host as it was.
            let changed = next != Next::Stay;
            let Some(revert) = self.start_next(&in_flight, next) else {
                return Settled::Failed {
                    reason: failure.unwrap_or_default(),
                    changed,
                    reverted: false,
                };
            };
            in_flight = revert;
            ended = self.run_deployment(&in_flight, Vec::new(), None).await;
        }
    }

    fn succeeded(&mut self, in_flight: &InFlight, dir: PathBuf) {
        if let Ok(Some(record)) = DeploymentRecord::load(&dir) {
            self.show_record(&dir, &record);
        }
        let installed = Installed {
            revision: in_flight.revision.clone(),
            digest: in_flight.digest.clone(),
            dir,
        };
        let is_revert = in_flight.reverts.is_some();
        let written = self.journal().change(|j| {
            j.current = Some(installed.clone());
            let before = j.last_known_good.replace(installed.clone());
            // A revert lands on the revision before: nothing older to go back to from it.
            j.previous = if is_revert { None } else { before };
            j.in_flight = None;
        });
        if let Err(e) = written {
            error!(error = %e, "cannot write the journal");
        }
        info!(deployment.id = %in_flight.deployment_id, revision.id = %in_flight.revision, "deployment succeeded");
        self.metrics.deployment_ended(&self.group.name, "succeeded");
        self.metrics
            .set_revision(&self.group.name, Some(&in_flight.revision));
        self.show(|g| {
            g.current_revision = Some(installed.revision.clone());
            g.last_known_good = Some(installed.revision.clone());
            g.target_revision = None;
            g.current_event = None;
            g.phase = Phase::Idle;
        });
    }

    /// Counts the failure, notes what is installed now, and decides what comes next.
    fn failed(
        &mut self,
        in_flight: &InFlight,
        record: Option<&DeploymentRecord>,
        cut_short: bool,
    ) -> Next {
        let result = if cut_short { "interrupted" } else { "failed" };
        self.metrics.deployment_ended(&self.group.name, result);
        let changed = record.is_some_and(changed_host);
        let installed = record.is_some_and(|r| {
            r.events
                .iter()
                .any(|e| e.name == lifecycle::INSTALL && e.status == Status::Succeeded)
        });
        warn!(deployment.id = %in_flight.deployment_id, revision.id = %in_flight.revision,
              error = record.and_then(|r| r.error.as_deref()).unwrap_or(""), "deployment {result}");
        let dir = in_flight.dir.clone().or_else(|| {
            let journal = self.journal();
            journal
                .journal
                .in_flight
                .as_ref()
                .and_then(|f| f.dir.clone())
        });
        if let (Some(dir), Some(record)) = (&dir, record) {
            self.show_record(dir, record);
            let summary = summarize(&dir_name(dir), record);
            self.show(|g| g.last_failure = Some(summary));
        }
        if installed {
            let current = dir.map(|dir| Installed {
                revision: in_flight.revision.clone(),
                digest: in_flight.digest.clone(),
                dir,
            });
            let _ = self.journal().change(|j| j.current = current.clone());
            let revision = in_flight.revision.clone();
            self.metrics.set_revision(&self.group.name, Some(&revision));
            self.show(|g| g.current_revision = Some(revision));
        }
        let journal = self.journal().journal.clone();
        after_failure(&journal, in_flight, changed, cut_short)
    }

    /// Journals the revert (or the end of the deployment) in one write and returns the revert
    /// to run, if any.
    fn start_next(&mut self, failed: &InFlight, next: Next) -> Option<InFlight> {
        match next {
            Next::Stay | Next::Again | Next::Failed { .. } => {
                let phase = if matches!(next, Next::Failed { .. }) {
                    Phase::Failed
                } else {
                    Phase::Idle
                };
                if let Next::Failed { why } = &next {
                    error!(deployment.id = %failed.deployment_id, reason = %why, "not reverted");
                    self.note_on_record(failed, why);
                }
                let again = next == Next::Again;
                if again {
                    // The first check after this finds the release at the floor with nothing
                    // deployed for it, and deploys it.
                    info!(revision.id = %failed.revision, "deployment cut short before it changed the host; it will run again");
                }
                let written = self.journal().change(|j| {
                    j.in_flight = None;
                    if again {
                        j.last_target = None;
                    }
                });
                if let Err(e) = written {
                    error!(error = %e, "cannot write the journal");
                }
                self.show(|g| {
                    g.phase = phase;
                    g.target_revision = None;
                    g.current_event = None;
                });
                None
            }
            Next::Revert {
                to,
                failed: failed_id,
                attempt,
            } => self.start_revert(to, failed_id, attempt),
        }
    }

    /// Journals a revert to `to` of the deployment `failed_id` and returns it to run.
    pub(super) fn start_revert(
        &mut self,
        to: Installed,
        failed_id: String,
        attempt: u32,
    ) -> Option<InFlight> {
        let revert = InFlight {
            deployment_id: revert_id(&self.group.name, &to.digest, &failed_id),
            revision: to.revision.clone(),
            digest: to.digest.clone(),
            bundle: Layout::archive_dir(&to.dir),
            reverts: Some(failed_id),
            auto_revert: false,
            dir: None,
            step: PREPARE.to_owned(),
            started_ms: now_ms(),
            attempt,
        };
        info!(deployment.id = %revert.deployment_id, revision.id = %to.revision, attempt, "reverting to the last known good revision");
        if !self.begin(&revert, None) {
            return None;
        }
        self.show(|g| {
            g.phase = Phase::Reverting;
            g.target_revision = Some(to.revision.clone());
            g.current_event = Some(PREPARE.to_owned());
        });
        Some(revert)
    }

    /// Adds why nothing was reverted to the failed deployment's record.
    fn note_on_record(&self, failed: &InFlight, why: &str) {
        let dir = failed.dir.clone().or_else(|| {
            self.journal()
                .journal
                .in_flight
                .as_ref()
                .and_then(|f| f.dir.clone())
        });
        let Some(dir) = dir else { return };
        if let Ok(Some(mut record)) = DeploymentRecord::load(&dir) {
            record.warnings.push(format!("not reverted: {why}"));
            save(&dir, &record);
            self.show_record(&dir, &record);
        }
    }

    fn show_record(&self, dir: &Path, record: &DeploymentRecord) {
        let summary = summarize(&dir_name(dir), record);
        self.show(|g| g.last_deployment = Some(summary));
    }

    /// At start: a deployment the journal has in flight was cut short by a crash or a
    /// shutdown. Its record says so, and it is reverted (or retried, for a revert) per policy.
    /// Returns the cut-short deployment and how it settled, for the planner.
    pub(super) async fn recover(&mut self) -> Option<(InFlight, Settled)> {
        let in_flight = self.journal().journal.in_flight.clone()?;
        warn!(deployment.id = %in_flight.deployment_id, step = %in_flight.step, "deployment interrupted by agent restart");
        let stopped = match &in_flight.dir {
            Some(dir) => super::orphans::stop_leftovers(&in_flight.deployment_id, dir).await,
            // No directory yet: no hook ran.
            None => Vec::new(),
        };
        if !stopped.is_empty() {
            warn!(deployment.id = %in_flight.deployment_id, groups = ?stopped, "stopped scripts the previous agent left running");
        }
        let record = in_flight.dir.clone().and_then(|dir| {
            let mut record = DeploymentRecord::load(&dir).ok().flatten()?;
            mark_interrupted(&mut record, &in_flight.step, now_ms());
            if !stopped.is_empty() {
                record.warnings.push(format!(
                    "scripts the previous agent left running were stopped (process groups {stopped:?})"
                ));
            }
            save(&dir, &record);
            self.show_record(&dir, &record);
            Some(record)
        });
        let reason = failure_reason(record.as_ref());
        let next = self.failed(&in_flight, record.as_ref(), true);
        let again = next == Next::Again;
        let Some(revert) = self.start_next(&in_flight, next) else {
            let settled = if again {
                Settled::Again
            } else {
                Settled::Failed {
                    reason,
                    changed: true,
                    reverted: false,
                }
            };
            return Some((in_flight, settled));
        };
        let ended = self.run_deployment(&revert, Vec::new(), None).await;
        let settled = self.settle_from(revert, ended, Some(reason)).await;
        Some((in_flight, settled))
    }
}

/// Why a deployment failed, from its record.
fn failure_reason(record: Option<&DeploymentRecord>) -> String {
    record
        .and_then(|r| r.error.clone())
        .unwrap_or_else(|| "the deployment failed".to_owned())
}
