//! The deployer: carries out one run a group's host asked for (the lifecycle of a release, or
//! a revert) and its health window, and says how it [`Ended`]; at a start, reads what a run
//! cut short did to the host from its deployment record. What follows a run is the pure
//! [`shoal_shared::rollout::GroupHost`]'s to decide.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::appspec::lifecycle;
use shoal_shared::rollout::journal::{HEALTH_CHECK, PREPARE};
use shoal_shared::rollout::{Ended, Failure, Policy};
use shoal_shared::status::{Health, Phase};
use tokio::time::{Instant, sleep};
use tracing::{error, info, warn};

use super::health::{self, Verdict, Window};
use super::journal::InFlight;
use super::keeper::Keeper;
use super::observer::{StepObserver, dir_name};
use super::release_file;
use crate::bundle::{Limits, Owners};
use crate::config::{Group, HealthCheck};
use crate::execute::deployment::{
    self, DeploymentRecord, EventRecord, Request, Status, record::now_ms,
};
use crate::execute::layout::Layout;
use crate::report::board::{at_event, summarize};
use crate::report::{Board, Metrics};
use crate::stop::Stop;

/// What a group's runs need.
pub(super) struct Deployer {
    pub(super) group: Group,
    pub(super) layout: Layout,
    /// The names of the agent's variables a runas script gets (`hooks.runas_env`).
    pub(super) runas_env: Vec<String>,
    pub(super) keeper: Keeper,
    pub(super) board: Board,
    pub(super) metrics: Metrics,
    pub(super) stop: Stop,
}

impl Deployer {
    /// Runs `run` (journaled in flight) and, for a release with its `policy`, the health
    /// window. `extra_env` is the release's own environment for its hooks.
    pub(super) async fn run(
        &self,
        run: &InFlight,
        extra_env: Vec<(String, String)>,
        policy: Option<&Policy>,
    ) -> Ended {
        let phase = if run.is_revert() {
            info!(deployment.id = %run.deployment_id, revision.id = %run.revision, attempt = run.attempt, "reverting to the last known good revision");
            Phase::Reverting
        } else {
            info!(deployment.id = %run.deployment_id, revision.id = %run.revision, "deployment started");
            Phase::Deploying
        };
        self.show(|g| {
            g.phase = phase;
            g.target_revision = Some(run.revision.clone());
            at_event(g, Some(PREPARE));
        });
        let protect = self.keeper.read(|host| {
            host.journal()
                .last_known_good
                .iter()
                .map(|lkg| lkg.dir.clone())
                .collect()
        });
        // The release's own settings, read from its unpacked bundle (a revert's: the archive
        // of the revision going back in).
        let settings = release_file::settings(&run.bundle);
        let observer = StepObserver {
            group: self.group.name.clone(),
            keeper: self.keeper.clone(),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
        };
        let request = Request {
            bundle: run.bundle.clone(),
            layout: self.layout.clone(),
            group: self.group.name.clone(),
            application: self.group.application.clone(),
            revision: run.revision.clone(),
            file_exists_behavior: None,
            appspec_name: None,
            kill_grace: self.group.kill_grace,
            output_grace: Duration::from_secs(2),
            limits: Limits::default(),
            extra_env,
            runas_env: self.runas_env.clone(),
            max_revisions: self.group.max_revisions,
            events: lifecycle::RunOrder::default(),
            owners: Owners::Kept,
            ignore_application_stop_failures: settings.ignore_application_stop_failures,
            deployment_id: Some(run.deployment_id.clone()),
            reverts: run.reverts.clone(),
            observer: Some(Arc::new(observer)),
            stop: Some(self.stop.clone()),
            protect,
        };
        let outcome = match deployment::deploy(&request).await {
            Ok(outcome) => outcome,
            Err(e) => {
                warn!(deployment.id = %run.deployment_id, error = %e, "deployment could not run");
                let dir = self
                    .keeper
                    .read(|host| host.journal().in_flight_dir().map(Path::to_owned));
                let record = dir.and_then(|d| DeploymentRecord::load(&d).ok().flatten());
                let mut failure = failure_of(record.as_ref());
                if record.is_none() {
                    failure.reason = e.to_string();
                }
                return Ended::Failed(failure);
            }
        };
        match outcome.record.status {
            Status::Interrupted => return Ended::Stopped,
            Status::Succeeded => {}
            _ => return Ended::Failed(failure_of(Some(&outcome.record))),
        }
        match policy {
            Some(policy) => {
                let check = release_file::health_check(&settings, self.group.health.as_ref());
                self.health_window(run, policy, check, outcome.dir, outcome.record)
                    .await
            }
            // A revert: the revision ran here before.
            None => Ended::Succeeded { dir: outcome.dir },
        }
    }

    /// After the hooks: the host must stay healthy for the policy's `min_healthy_time` before
    /// the run counts as done. With a `health:` check that is the check passing throughout;
    /// without one it is ValidateService having passed and the host staying up that long.
    async fn health_window(
        &self,
        run: &InFlight,
        policy: &Policy,
        check: Option<&HealthCheck>,
        dir: PathBuf,
        mut record: DeploymentRecord,
    ) -> Ended {
        self.keeper.note(|host| host.at_step(None, HEALTH_CHECK));
        self.show(|g| {
            g.phase = Phase::CheckingHealth;
            at_event(g, Some(HEALTH_CHECK));
        });
        let opened = Instant::now();
        let Some(check) = check else {
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop.requested() => return Ended::Stopped,
                () = sleep(policy.min_healthy_time) => {}
            }
            let note = format!(
                "no health check configured: the host stayed up for min_healthy_time ({} s) after ValidateService",
                policy.min_healthy_time.as_secs()
            );
            push_event(&mut record, Status::Succeeded, opened, Some(note));
            save(&dir, &record);
            return Ended::Succeeded { dir };
        };
        let env = health_env(&self.group, &run.revision);
        let mut window = Window::new(policy.min_healthy_time, policy.healthy_deadline);
        loop {
            let result = health::probe(check, &env).await;
            let health = if result.is_ok() {
                Health::Healthy
            } else {
                Health::Unhealthy
            };
            self.show(|g| g.health = health);
            match window.observe(opened.elapsed(), &result) {
                Verdict::Continue => {}
                Verdict::Healthy => {
                    push_event(&mut record, Status::Succeeded, opened, None);
                    save(&dir, &record);
                    return Ended::Succeeded { dir };
                }
                Verdict::Failed(why) => {
                    push_event(&mut record, Status::Failed, opened, Some(why.clone()));
                    record.status = Status::Failed;
                    record.error = Some(format!("{HEALTH_CHECK}: {why}"));
                    save(&dir, &record);
                    return Ended::Failed(failure_of(Some(&record)));
                }
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop.requested() => return Ended::Stopped,
                () = sleep(check.interval) => {}
            }
        }
    }

    /// At a start: the run `run` was cut short by a crash or a shutdown. Stops the scripts the
    /// previous agent left running, marks its record interrupted, and says what it did.
    pub(super) async fn cut_short(&self, run: &InFlight) -> Failure {
        warn!(deployment.id = %run.deployment_id, step = %run.step, "deployment interrupted by agent restart");
        let stopped = match &run.dir {
            Some(dir) => super::orphans::stop_leftovers(&run.deployment_id, dir).await,
            // No directory yet: no hook ran.
            None => Vec::new(),
        };
        if !stopped.is_empty() {
            warn!(deployment.id = %run.deployment_id, groups = ?stopped, "stopped scripts the previous agent left running");
        }
        let record = run.dir.as_deref().and_then(|dir| {
            let mut record = DeploymentRecord::load(dir).ok().flatten()?;
            mark_interrupted(&mut record, &run.step, now_ms());
            if !stopped.is_empty() {
                record.warnings.push(format!(
                    "scripts the previous agent left running were stopped (process groups {stopped:?})"
                ));
            }
            save(dir, &record);
            Some(record)
        });
        let mut failure = failure_of(record.as_ref());
        failure.reason = format!("interrupted by agent restart during {}", run.step);
        failure
    }

    fn show(&self, change: impl FnOnce(&mut shoal_shared::status::GroupStatus)) {
        self.board.update(&self.group.name, change);
    }
}

/// What a run that did not succeed did to the host, from its record.
pub(super) fn failure_of(record: Option<&DeploymentRecord>) -> Failure {
    Failure {
        reason: record
            .and_then(|r| r.error.clone())
            .unwrap_or_else(|| "the deployment failed".to_owned()),
        changed_host: record.is_some_and(changed_host),
        installed: record.is_some_and(|r| {
            r.events
                .iter()
                .any(|e| e.name == lifecycle::INSTALL && e.status == Status::Succeeded)
        }),
    }
}

/// Whether a deployment touched the host: any event past DownloadBundle ran (the previous
/// revision's ApplicationStop included). A deployment refused at its AppSpec changed nothing.
pub fn changed_host(record: &DeploymentRecord) -> bool {
    record.events.iter().any(|event| {
        event.name != lifecycle::DOWNLOAD_BUNDLE && !matches!(event.status, Status::Skipped)
    })
}

/// Marks the record of a deployment the agent did not see end: the step it was at becomes
/// an interrupted event and the deployment is `interrupted`.
pub fn mark_interrupted(record: &mut DeploymentRecord, step: &str, now_ms: u64) {
    // Hooks that all passed leave the record `succeeded` while the health window runs.
    let in_health_window = step == HEALTH_CHECK && record.status == Status::Succeeded;
    if record.status == Status::InProgress || in_health_window {
        record.status = Status::Interrupted;
        record.error = Some(format!("interrupted by agent restart during {step}"));
        if !record.events.iter().any(|e| e.name == step) {
            record.events.push(EventRecord {
                name: step.to_owned(),
                status: Status::Interrupted,
                duration_ms: now_ms.saturating_sub(record.started_at_ms),
                scripts: Vec::new(),
                message: Some("the agent stopped while this step ran".to_owned()),
            });
        }
    }
    record.finished_at_ms.get_or_insert(now_ms);
}

/// Adds why a failed run is not reverted to its record; its summary, for status.
pub(super) fn note_unreverted(
    dir: &Path,
    why: &str,
) -> Option<shoal_shared::status::DeploymentSummary> {
    let mut record = DeploymentRecord::load(dir).ok().flatten()?;
    record.warnings.push(format!("not reverted: {why}"));
    save(dir, &record);
    Some(summarize(&dir_name(dir), &record))
}

/// The environment of the health check.
pub(super) fn health_env(group: &Group, revision: &str) -> Vec<(String, String)> {
    vec![
        ("DEPLOYMENT_GROUP_NAME".to_owned(), group.name.clone()),
        ("APPLICATION_NAME".to_owned(), group.application.clone()),
        ("SHOAL_REVISION".to_owned(), revision.to_owned()),
    ]
}

/// The status summary of the record in `dir`.
pub(super) fn summary_of(dir: &Path) -> Option<shoal_shared::status::DeploymentSummary> {
    let record = DeploymentRecord::load(dir).ok().flatten()?;
    Some(summarize(&dir_name(dir), &record))
}

fn push_event(
    record: &mut DeploymentRecord,
    status: Status,
    started: Instant,
    message: Option<String>,
) {
    record.events.push(EventRecord {
        name: HEALTH_CHECK.to_owned(),
        status,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        scripts: Vec::new(),
        message,
    });
    record.finished_at_ms = Some(now_ms());
}

fn save(dir: &Path, record: &DeploymentRecord) {
    if let Err(e) = record.save(dir) {
        error!(path = %dir.display(), error = %e, "cannot write the deployment record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(events: &[(&str, Status)]) -> DeploymentRecord {
        DeploymentRecord {
            deployment_id: "d-2".into(),
            group: "web".into(),
            application: "shop".into(),
            revision: "v2".into(),
            previous_revision: Some("v1".into()),
            reverts: None,
            bundle: "/cache/v2".into(),
            status: Status::InProgress,
            started_at_ms: 1_000,
            finished_at_ms: None,
            events: events
                .iter()
                .map(|(name, status)| EventRecord {
                    name: (*name).into(),
                    status: *status,
                    duration_ms: 1,
                    scripts: Vec::new(),
                    message: None,
                })
                .collect(),
            warnings: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn only_events_past_the_download_change_the_host() {
        assert!(!changed_host(&record(&[(
            "DownloadBundle",
            Status::Failed
        )])));
        assert!(changed_host(&record(&[
            ("DownloadBundle", Status::Succeeded),
            ("ApplicationStop", Status::Succeeded)
        ])));
    }

    #[test]
    fn a_failure_says_whether_the_files_were_installed() {
        let before = failure_of(Some(&record(&[("BeforeInstall", Status::Failed)])));
        assert!(before.changed_host && !before.installed);
        let after = failure_of(Some(&record(&[
            ("Install", Status::Succeeded),
            ("AfterInstall", Status::Failed),
        ])));
        assert!(after.changed_host && after.installed);
        let none = failure_of(None);
        assert!(!none.changed_host && !none.installed);
    }

    #[test]
    fn an_interrupted_record_names_the_step_it_was_at() {
        let mut cut = record(&[("DownloadBundle", Status::Succeeded)]);
        mark_interrupted(&mut cut, "BeforeInstall", 4_000);
        assert_eq!(cut.status, Status::Interrupted);
        assert_eq!(
            cut.error.as_deref(),
            Some("interrupted by agent restart during BeforeInstall")
        );
        let last = cut.events.last().expect("event");
        assert_eq!(
            (last.name.as_str(), last.status),
            ("BeforeInstall", Status::Interrupted)
        );
        assert_eq!(cut.finished_at_ms, Some(4_000));
    }

    #[test]
    fn a_deployment_cut_short_in_its_health_window_is_interrupted_not_succeeded() {
        let mut cut = record(&[("ValidateService", Status::Succeeded)]);
        cut.status = Status::Succeeded;
        mark_interrupted(&mut cut, "HealthCheck", 4_000);
        assert_eq!(cut.status, Status::Interrupted);
        assert_eq!(
            cut.error.as_deref(),
            Some("interrupted by agent restart during HealthCheck")
        );
        let mut done = record(&[("ValidateService", Status::Succeeded)]);
        done.status = Status::Succeeded;
        mark_interrupted(&mut done, "ValidateService", 4_000);
        assert_eq!(
            done.status,
            Status::Succeeded,
            "only the health window reopens a result"
        );
    }
}
