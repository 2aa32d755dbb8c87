//! A group task deploying a verified release: fetch it into the cache, read its policy,
//! journal it, run its lifecycle and then its health window. What happens after
//! (success, revert, recovery at start) is in [`super::settle`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::gossip::Target;
use shoal_shared::rollout::{Policy, RawPolicy, Shape, deployment_id, parse_policy_file};
use shoal_shared::status::{Health, Phase};
use tokio::time::{Instant, sleep};
use tracing::{error, info, warn};

use super::group::GroupTask;
use super::health::{self, Verdict, Window};
use super::journal::InFlight;
use super::observer::{HEALTH_CHECK, PREPARE, StepObserver};
use super::settle::Settled;
use crate::bundle::Limits;
use crate::channel::Release;
use crate::execute::deployment::{
    self, DeploymentRecord, EventRecord, Request, Status, record::now_ms,
};

/// How a deployment run by the group task ended.
pub(super) enum Ended {
    /// Hooks and health window passed.
    Succeeded {
        /// The deployment directory.
        dir: PathBuf,
    },
    /// It failed; the record says why.
    Failed {
        record: Option<Box<DeploymentRecord>>,
    },
    /// The agent is shutting down; the journal keeps it in flight.
    Stopped,
}

/// A verified release, fetched and with its policy read: ready for its turn.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) release: Release,
    /// Its files in the release cache.
    pub(super) tree: PathBuf,
    pub(super) policy: Policy,
}

impl Prepared {
    /// The release as gossip names it.
    pub(super) fn target(&self, group: &str) -> Target {
        let digest = self.release.digest.to_string();
        Target {
            id: deployment_id(group, &digest),
            revision: self.release.version.name().to_owned(),
            digest,
        }
    }
}

impl GroupTask {
    /// Fetches a release that verified and reads its policy; `None` (and status says why)
    /// when it cannot be used now — a fetch that failed is retried at the next check.
    pub(super) async fn prepare(&mut self, release: Release) -> Option<Prepared> {
        let name = release.version.name().to_owned();
        let channel = self.channel.as_mut()?;
        let tree = match channel.materialize(&release, &self.cache).await {
            Ok(tree) => tree,
            Err(failure) => {
                if let Some(refusal) = &failure.refusal {
                    self.refused(&name, refusal.kind(), &failure.message);
                    self.set_last_target(&name);
                } else {
                    warn!(revision.id = %name, error = %failure.message, "cannot fetch release; retrying at the next check");
                    self.pending = Some(release);
                }
                return None;
            }
        };
        match release_policy(release.rollout.as_ref(), &tree, &self.group.rollout) {
            Ok(policy) => Some(Prepared {
                release,
                tree,
                policy,
            }),
            Err(why) => {
                self.refused(&name, "bad_policy", &why);
                self.set_last_target(&name);
                None
            }
        }
    }

    /// Runs the lifecycle of a prepared release (its turn has come), then settles it.
    pub(super) async fn run_target(&mut self, prepared: &Prepared) -> Settled {
        let name = prepared.release.version.name().to_owned();
        self.show(|g| {
            g.target_revision = Some(name.clone());
            g.phase = Phase::Deploying;
            g.current_event = Some(PREPARE.to_owned());
        });
        let digest = prepared.release.digest.to_string();
        let in_flight = InFlight {
            deployment_id: deployment_id(&self.group.name, &digest),
            revision: name.clone(),
            digest,
            bundle: prepared.tree.clone(),
            reverts: None,
            auto_revert: prepared.policy.auto_revert,
            dir: None,
            step: PREPARE.to_owned(),
            started_ms: now_ms(),
            attempt: 0,
        };
        if !self.begin(&in_flight, Some(&name)) {
            return Settled::Failed {
                reason: "cannot write the journal".to_owned(),
                changed: false,
                reverted: false,
            };
        }
        info!(deployment.id = %in_flight.deployment_id, revision.id = %name, "deployment started");
        let ended = self
            .run_deployment(
                &in_flight,
                prepared.release.env.clone(),
                Some(&prepared.policy),
            )
            .await;
        self.settle(in_flight, ended).await
    }

    /// Journals a deployment as in flight; false (and status says why) if the journal cannot
    /// be written, in which case nothing runs.
    pub(super) fn begin(&mut self, in_flight: &InFlight, target: Option<&str>) -> bool {
        let written = self.journal().change(|j| {
            if let Some(target) = target {
                j.last_target = Some(target.to_owned());
            }
            j.in_flight = Some(in_flight.clone());
        });
        if let Err(e) = written {
            error!(error = %e, "cannot write the journal; not deploying");
            self.show(|g| g.phase = Phase::Failed);
            return false;
        }
        true
    }

    pub(super) fn set_last_target(&mut self, name: &str) {
        if let Err(e) = self
            .journal()
            .change(|j| j.last_target = Some(name.to_owned()))
        {
            error!(error = %e, "cannot write the journal");
        }
    }

    /// Runs one deployment (or revert) and its health window.
    pub(super) async fn run_deployment(
        &mut self,
        in_flight: &InFlight,
        extra_env: Vec<(String, String)>,
        policy: Option<&Policy>,
    ) -> Ended {
        let protect: Vec<PathBuf> = self
            .journal()
            .journal
            .last_known_good
            .iter()
            .map(|lkg| lkg.dir.clone())
            .collect();
        let observer = StepObserver {
            group: self.group.name.clone(),
            journal: Arc::clone(&self.journal),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
        };
        let request = Request {
            bundle: in_flight.bundle.clone(),
            layout: self.layout.clone(),
            group: self.group.name.clone(),
            application: self.group.application.clone(),
            revision: in_flight.revision.clone(),
            file_exists_behavior: None,
            appspec_name: None,
            kill_grace: self.group.kill_grace,
            output_grace: Duration::from_secs(2),
            limits: Limits::default(),
            extra_env,
            runas_env: self.runas_env.clone(),
            max_revisions: self.group.max_revisions,
            ignore_application_stop_failures: false,
            deployment_id: Some(in_flight.deployment_id.clone()),
            reverts: in_flight.reverts.clone(),
            observer: Some(Arc::new(observer)),
            stop: Some(self.stop.clone()),
            protect,
        };
        let outcome = match deployment::deploy(&request).await {
            Ok(outcome) => outcome,
            Err(e) => {
                warn!(deployment.id = %in_flight.deployment_id, error = %e, "deployment could not run");
                let dir = self
                    .journal()
                    .journal
                    .in_flight
                    .as_ref()
                    .and_then(|f| f.dir.clone());
                let record = dir
                    .as_deref()
                    .and_then(|d| DeploymentRecord::load(d).ok().flatten());
                return Ended::Failed {
                    record: record.map(Box::new),
                };
            }
        };
        match outcome.record.status {
            Status::Interrupted => return Ended::Stopped,
            Status::Succeeded => {}
            _ => {
                return Ended::Failed {
                    record: Some(Box::new(outcome.record)),
                };
            }
        }
        let (Some(check), Some(policy)) = (self.group.health.clone(), policy) else {
            return Ended::Succeeded { dir: outcome.dir };
        };
        let mut record = outcome.record;
        self.step(HEALTH_CHECK);
        self.show(|g| {
            g.phase = Phase::CheckingHealth;
            g.current_event = Some(HEALTH_CHECK.to_owned());
        });
        let env = self.health_env(&in_flight.revision);
        let mut window = Window::new(policy.min_healthy_time, policy.healthy_deadline);
        let opened = Instant::now();
        loop {
            let result = health::probe(&check, &env).await;
            let health = if result.is_ok() {
                Health::Healthy
            } else {
                Health::Unhealthy
            };
            self.show(|g| g.health = health);
            let verdict = window.observe(opened.elapsed(), &result);
            let failed = match verdict {
                Verdict::Continue => None,
                Verdict::Healthy => {
                    push_event(&mut record, HEALTH_CHECK, Status::Succeeded, opened, None);
                    save(&outcome.dir, &record);
                    return Ended::Succeeded { dir: outcome.dir };
                }
                Verdict::Failed(why) => Some(why),
            };
            if let Some(why) = failed {
                push_event(
                    &mut record,
                    HEALTH_CHECK,
                    Status::Failed,
                    opened,
                    Some(why.clone()),
                );
                record.status = Status::Failed;
                record.error = Some(format!("{HEALTH_CHECK}: {why}"));
                save(&outcome.dir, &record);
                return Ended::Failed {
                    record: Some(Box::new(record)),
                };
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop.requested() => return Ended::Stopped,
                () = sleep(check.interval) => {}
            }
        }
    }

    fn step(&self, step: &str) {
        if let Err(e) = self.journal().change(|j| {
            if let Some(f) = j.in_flight.as_mut() {
                step.clone_into(&mut f.step);
            }
        }) {
            error!(error = %e, "cannot write the journal");
        }
    }
}

pub(super) fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn push_event(
    record: &mut DeploymentRecord,
    name: &str,
    status: Status,
    started: Instant,
    message: Option<String>,
) {
    record.events.push(EventRecord {
        name: name.to_owned(),
        status,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        scripts: Vec::new(),
        message,
    });
    record.finished_at_ms = Some(now_ms());
}

pub(super) fn save(dir: &Path, record: &DeploymentRecord) {
    if let Err(e) = record.save(dir) {
        error!(path = %dir.display(), error = %e, "cannot write the deployment record");
    }
}

/// The policy of a release: the store manifest's, else the bundle's `shoal.yaml`, else the
/// group's default; each checked against the default.
fn release_policy(
    manifest: Option<&RawPolicy>,
    tree: &Path,
    default: &Policy,
) -> Result<Policy, String> {
    if let Some(raw) = manifest {
        return raw.check(default).map_err(|e| format!("release.yaml: {e}"));
    }
    let path = tree.join("shoal.yaml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(default.clone()),
        Err(e) => return Err(format!("cannot read shoal.yaml in the bundle: {e}")),
    };
    let file = "the bundle's shoal.yaml";
    match parse_policy_file(&text, file, Shape::Block).map_err(|e| e.to_string())? {
        Some(raw) => raw.check(default).map_err(|e| format!("{file}: {e}")),
        None => Ok(default.clone()),
    }
}
