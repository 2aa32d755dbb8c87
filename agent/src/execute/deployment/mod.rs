//! One in-place deployment of a bundle on this host, event by event.
//!
//! The order is CodeDeploy's, with one deliberate change: the new bundle is unpacked and its
//! AppSpec validated *before* the previous revision's ApplicationStop runs, so a broken bundle
//! never stops a running application.

mod events;
pub mod housekeeping;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shoal_shared::appspec::{self, AppSpec, FileExistsBehavior, lifecycle};

use super::deployments_log::DeploymentsLog;
use super::layout::{Layout, is_safe_component};
use super::scripts_log::ScriptsLog;
use crate::bundle::{self, APPSPEC_NAMES};
use crate::stop::Stop;
pub use record::{DeploymentRecord, EventRecord, ScriptRecord, Status};

/// Everything a deployment needs to know.
#[derive(Debug, Clone)]
pub struct Request {
    /// The bundle: a directory or a tar, tar.gz or zip archive.
    pub bundle: PathBuf,
    /// The deployment root.
    pub layout: Layout,
    /// Deployment group name (also its id on disk).
    pub group: String,
    /// Application name.
    pub application: String,
    /// The revision's name (`SHOAL_REVISION`).
    pub revision: String,
    /// The deployment's `file_exists_behavior`; the AppSpec's own value wins.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// An AppSpec file name other than `appspec.yml`/`appspec.yaml`.
    pub appspec_name: Option<String>,
    /// SIGTERM → SIGKILL grace for timed-out scripts.
    pub kill_grace: Duration,
    /// How long to keep reading a script's output after it exits.
    pub output_grace: Duration,
    /// Limits on the unpacked bundle.
    pub limits: bundle::Limits,
    /// Extra environment for every script (e.g. `BUNDLE_COMMIT`).
    pub extra_env: Vec<(String, String)>,
    /// The names of the agent's variables a runas script gets (`hooks.runas_env`).
    pub runas_env: Vec<String>,
    /// How many deployment directories of the group to keep, this one included.
    pub max_revisions: usize,
    /// The events to run, in order: CodeDeploy's in-place order unless a list was given.
    pub events: lifecycle::RunOrder,
    /// Whose files the unpacked bundle holds: the agent's release trees keep what their
    /// archive recorded.
    pub owners: bundle::Owners,
    /// Go on when the previous revision's ApplicationStop or block-traffic scripts fail.
    pub ignore_application_stop_failures: bool,
    /// The deployment's id, the same on every host; `None` makes a local one (`d-…-local`).
    pub deployment_id: Option<String>,
    /// The deployment this one reverts.
    pub reverts: Option<String>,
    /// Told before each step starts and after each event ends (the agent's journal and status).
    pub observer: Option<Arc<dyn Observer>>,
    /// The agent's shutdown: no event starts after it, and a running script gets its grace.
    pub stop: Option<Stop>,
    /// Deployment directories pruning must keep (the last known good one).
    pub protect: Vec<PathBuf>,
}

/// Follows a deployment step by step.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Called once the deployment's directory and record exist (`event` is `None`), and again
    /// before each event starts. An error stops the deployment: a step that could not be
    /// journaled must not run.
    fn before(
        &self,
        dir: &Path,
        record: &DeploymentRecord,
        event: Option<&str>,
    ) -> std::io::Result<()>;
    /// Called after each event ended; the record holds it.
    fn after(&self, dir: &Path, record: &DeploymentRecord);
}

/// Why a deployment could not start or stopped short of running its events.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request itself is unusable (bad group name, …).
    #[error("{0}")]
    Usage(String),
    /// The bundle's AppSpec is missing or invalid.
    #[error("{file}: {error}")]
    AppSpec {
        /// The AppSpec path.
        file: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// The group's lock cannot be taken: most often, another deployment of the group holds it.
    #[error("{0}")]
    Busy(housekeeping::LockError),
    /// The deployment directory or its record could not be written.
    #[error("cannot write the deployment state under {}", path.display())]
    State {
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    /// Whether the error is the user's input (exit code 2) rather than a runtime failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage(_) | Self::AppSpec { .. })
    }
}

/// The outcome of a deployment that ran.
#[derive(Debug)]
pub struct Outcome {
    /// The deployment's directory.
    pub dir: PathBuf,
    /// What happened.
    pub record: DeploymentRecord,
}

/// A deployment id unique to this local run: `d-` + 12 hex digits + `-local`.
pub fn local_deployment_id(group: &str, bundle: &Path) -> String {
    let mut hash = Sha256::new();
    hash.update(group.as_bytes());
    hash.update([0]);
    hash.update(bundle.as_os_str().as_encoded_bytes());
    hash.update(record::now_ms().to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    let nonce: u64 = rand_nonce();
    hash.update(nonce.to_le_bytes());
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("d-{hex}-local")
}

fn rand_nonce() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::thread::current().id())
}

/// The directory for a deployment: `<group>/<id>`, or `<id>.2`, `<id>.3`, … when an earlier
/// attempt of the same deployment (one interrupted, say) is still there.
fn free_dir(layout: &Layout, group: &str, id: &str) -> PathBuf {
    let mut dir = layout.deployment_dir(group, id);
    let mut attempt = 1;
    while dir.exists() {
        attempt += 1;
        dir = layout.deployment_dir(group, &format!("{id}.{attempt}"));
    }
    dir
}

/// Reads and validates the AppSpec of an unpacked bundle.
pub fn read_appspec(
    archive: &Path,
    name: Option<&str>,
) -> Result<(PathBuf, appspec::Parsed), DeployError> {
    let candidates: Vec<&str> = match name {
        Some(name) => vec![name],
        None => APPSPEC_NAMES.to_vec(),
    };
    let mut found = None;
    for name in &candidates {
        let path =
            bundle::inside(archive, Path::new(name), true).map_err(|why| DeployError::AppSpec {
                file: archive.join(name),
                error: format!("{why}; the AppSpec must be a file of the bundle"),
            })?;
        if path.is_file() {
            found = Some((archive.join(name), path));
            break;
        }
    }
    let Some((file, real)) = found else {
        return Err(DeployError::AppSpec {
            file: archive.join(candidates[0]),
            error: format!("the bundle has no {} at its root", candidates.join(" or ")),
        });
    };
    let bytes = std::fs::read(&real).map_err(|e| DeployError::AppSpec {
        file: file.clone(),
        error: e.to_string(),
    })?;
    let parsed =
        appspec::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| DeployError::AppSpec {
            file: file.clone(),
            error: e.to_string(),
        })?;
    Ok((file, parsed))
}

/// Refuses hooks for events an in-place deployment never runs, as the CodeDeploy agent does.
fn check_events(
    file: &Path,
    spec: &AppSpec,
    order: &lifecycle::RunOrder,
) -> Result<(), DeployError> {
    match lifecycle::refused_hooks(spec, order) {
        None => Ok(()),
        Some(error) => Err(DeployError::AppSpec {
            file: file.to_owned(),
            error,
        }),
    }
}

/// Runs a whole in-place deployment. Errors are returned only when no event could run; a
/// deployment whose events fail is an `Outcome` with status `failed`.
pub async fn deploy(request: &Request) -> Result<Outcome, DeployError> {
    if !is_safe_component(&request.group) {
        return Err(DeployError::Usage(format!(
            "group `{}` is not a valid name; use letters, digits, `-`, `_` and `.`",
            request.group
        )));
    }
    let layout = &request.layout;
    let group_dir = layout.root().join(&request.group);
    let _lock = housekeeping::GroupLock::acquire(&group_dir).map_err(DeployError::Busy)?;
    let deployment_id = request
        .deployment_id
        .clone()
        .unwrap_or_else(|| local_deployment_id(&request.group, &request.bundle));
    let dir = free_dir(layout, &request.group, &deployment_id);
    let state_error = |path: &Path| {
        let path = path.to_owned();
        move |source| DeployError::State { path, source }
    };
    std::fs::create_dir_all(dir.join("logs")).map_err(state_error(&dir))?;
    let log = ScriptsLog::open(Layout::scripts_log(&dir))
        .map_err(state_error(&dir))?
        .with_deployments_log(DeploymentsLog::of_root(layout.root()), &deployment_id);
    let previous_dir = Layout::read_pointer(&layout.last_successful_install(&request.group))
        .map_err(state_error(layout.root()))?
        .filter(|d| d.is_dir());
    let previous_revision = previous_dir
        .as_deref()
        .and_then(|d| DeploymentRecord::load(d).ok().flatten())
        .map(|r| r.revision);
    let record = DeploymentRecord {
        deployment_id: deployment_id.clone(),
        group: request.group.clone(),
        application: request.application.clone(),
        revision: request.revision.clone(),
        previous_revision,
        reverts: request.reverts.clone(),
        bundle: request.bundle.display().to_string(),
        status: Status::InProgress,
        started_at_ms: record::now_ms(),
        finished_at_ms: None,
        events: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    record.save(&dir).map_err(state_error(&dir))?;
    if let Some(observer) = &request.observer {
        observer
            .before(&dir, &record, None)
            .map_err(state_error(&dir))?;
    }
    let mut run = events::Run {
        request,
        dir: dir.clone(),
        log,
        previous_dir,
        record,
    };
    let result = run.all().await;
    let last_good = Layout::read_pointer(&layout.last_successful_install(&request.group))
        .ok()
        .flatten();
    let protect: Vec<&Path> = [Some(dir.as_path()), last_good.as_deref()]
        .into_iter()
        .flatten()
        .chain(request.protect.iter().map(PathBuf::as_path))
        .collect();
    if let Err(e) = housekeeping::prune(&group_dir, request.max_revisions, &protect) {
        tracing::warn!(group = %request.group, error = %e, "could not remove old deployment directories");
    }
    result?;
    Ok(Outcome {
        dir,
        record: run.record,
    })
}
