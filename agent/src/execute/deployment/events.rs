//! Running the events of one deployment in order, recording each as it ends.

use std::path::{Path, PathBuf};

use shoal_shared::appspec::{AppSpec, FileExistsBehavior, Script, lifecycle};
use tokio::time::Instant;

use super::record::{self, EventRecord, ScriptRecord, Status};
use super::{DeployError, DeploymentRecord, Request, check_events, read_appspec};
use crate::bundle;
use crate::execute::hooks::{self, ScriptResult, ScriptRun};
use crate::execute::install;
use crate::execute::layout::Layout;
use crate::execute::scripts_log::ScriptsLog;
use crate::stop::Stop;

pub(super) struct Run<'a> {
    pub(super) request: &'a Request,
    pub(super) dir: PathBuf,
    pub(super) log: ScriptsLog,
    pub(super) previous_dir: Option<PathBuf>,
    pub(super) record: DeploymentRecord,
}

/// The AppSpec of the previous successful revision, or why it cannot be read.
type Previous = Option<(PathBuf, Result<AppSpec, DeployError>)>;

impl Run<'_> {
    pub(super) async fn all(&mut self) -> Result<(), DeployError> {
        let archive = Layout::archive_dir(&self.dir);
        if !self.begin(lifecycle::DOWNLOAD_BUNDLE)? {
            return self.interrupt(lifecycle::DOWNLOAD_BUNDLE);
        }
        let started = Instant::now();
        let unpacked = {
            let (bundle, archive, limits) = (
                self.request.bundle.clone(),
                archive.clone(),
                self.request.limits.clone(),
            );
            let (names, owners) = (bundle::APPSPEC_NAMES, self.request.owners);
            blocking(move || bundle::unpack(&bundle, &archive, &names, &limits, owners)).await
        };
        if let Err(why) = unpacked {
            return self.finish_failed(lifecycle::DOWNLOAD_BUNDLE, started, why.to_string());
        }
        self.event(lifecycle::DOWNLOAD_BUNDLE, started, Vec::new(), None);
        let pointer = self.request.layout.most_recent_install(&self.request.group);
        Layout::write_pointer(&pointer, &self.dir).map_err(|source| DeployError::State {
            path: pointer,
            source,
        })?;

        let appspec_name = self.request.appspec_name.as_deref();
        let (file, parsed) =
            match read_appspec(&archive, appspec_name).and_then(|(file, parsed)| {
                check_events(&file, &parsed.spec, &self.request.events)?;
                Ok((file, parsed))
            }) {
                Ok(found) => found,
                Err(error) => {
                    self.record.status = Status::Failed;
                    self.record.error = Some(error.to_string());
                    self.save()?;
                    return Err(error);
                }
            };
        let warnings: Vec<String> = parsed
            .warnings
            .iter()
            .filter(|w| !self.request.events.expects(&w.key))
            .map(|w| format!("{}: {w}", file.display()))
            .collect();
        self.record.warnings.extend(warnings);
        let spec = parsed.spec;
        let behavior = spec
            .file_exists_behavior
            .or(self.request.file_exists_behavior)
            .unwrap_or(FileExistsBehavior::Disallow);
        let previous: Previous = self.previous_dir.as_ref().map(|dir| {
            let archive = Layout::archive_dir(dir);
            let spec = read_appspec(&archive, appspec_name).map(|(_, p)| p.spec);
            (archive, spec)
        });

        let steps = self.request.events.steps().to_vec();
        for event in &steps {
            let name = event.name.as_str();
            if self.stopping() {
                return self.interrupt(name);
            }
            let ok = self.record.status != Status::Failed;
            match event.kind {
                lifecycle::EventKind::Agent if name == lifecycle::INSTALL => {
                    if !ok {
                        self.skip(name);
                        continue;
                    }
                    if !self.begin(name)? {
                        return self.interrupt(name);
                    }
                    self.install(&archive, &spec, behavior).await?;
                }
                lifecycle::EventKind::Agent => {}
                lifecycle::EventKind::PreviousScripts => {
                    let defined = previous.as_ref().is_some_and(|(_, s)| {
                        s.as_ref().map_or(true, |s| !s.scripts(name).is_empty())
                    });
                    if event.optional && !defined {
                        continue;
                    }
                    if !ok {
                        self.skip(name);
                        continue;
                    }
                    if !self.begin(name)? {
                        return self.interrupt(name);
                    }
                    match &previous {
                        None => {
                            let note =
                                "first deployment of this group: no previous revision to run"
                                    .to_owned();
                            self.event(name, Instant::now(), Vec::new(), Some(note));
                        }
                        Some((_, Err(why))) => {
                            let why = format!(
                                "the previous revision's AppSpec cannot be read ({why}); deploy with \
                                 --ignore-application-stop-failures, or remove {}, to go past it",
                                self.request
                                    .layout
                                    .last_successful_install(&self.request.group)
                                    .display()
                            );
                            self.fail(name, Instant::now(), Vec::new(), why);
                        }
                        Some((archive, Ok(spec))) => {
                            let scripts = spec.scripts(name).to_vec();
                            self.scripts(name, archive, &scripts).await;
                        }
                    }
                }
                lifecycle::EventKind::Scripts => {
                    let scripts = spec.scripts(name).to_vec();
                    if event.optional && scripts.is_empty() {
                        continue;
                    }
                    if !ok {
                        self.skip(name);
                        continue;
                    }
                    if !self.begin(name)? {
                        return self.interrupt(name);
                    }
                    self.scripts(name, &archive, &scripts).await;
                }
            }
        }
        if self.record.status == Status::Interrupted {
            return self.interrupt("the end of the deployment");
        }
        if self.record.status != Status::Failed {
            self.record.status = Status::Succeeded;
        }
        self.record.finished_at_ms = Some(record::now_ms());
        self.save()
    }

    async fn install(
        &mut self,
        archive: &Path,
        spec: &AppSpec,
        behavior: FileExistsBehavior,
    ) -> Result<(), DeployError> {
        let started = Instant::now();
        let (layout, group, archive_dir, spec) = (
            self.request.layout.clone(),
            self.request.group.clone(),
            archive.to_owned(),
            spec.clone(),
        );
        let result =
            blocking(move || install::install(&layout, &group, &archive_dir, &spec, behavior))
                .await;
        match result {
            Ok(report) => {
                let pointer = self
                    .request
                    .layout
                    .last_successful_install(&self.request.group);
                Layout::write_pointer(&pointer, &self.dir).map_err(|source| {
                    DeployError::State {
                        path: pointer,
                        source,
                    }
                })?;
                let note = format!(
                    "{} files and {} directories installed ({} bytes written, {} unchanged files kept in place), {} retained, {} previous paths removed",
                    report.files,
                    report.directories,
                    report.bytes,
                    report.kept,
                    report.retained,
                    report.removed
                );
                self.event(lifecycle::INSTALL, started, Vec::new(), Some(note));
            }
            Err(why) => self.fail(lifecycle::INSTALL, started, Vec::new(), why.to_string()),
        }
        self.save()
    }

    async fn scripts(&mut self, event: &str, archive: &Path, scripts: &[Script]) {
        let started = Instant::now();
        let mut env = self.env(event);
        env.extend(self.request.extra_env.iter().cloned());
        let mut records = Vec::new();
        for script in scripts {
            let outcome = hooks::run_script(ScriptRun {
                event,
                script,
                archive_dir: archive,
                env: &env,
                runas_env: &self.request.runas_env,
                log: &self.log,
                kill_grace: self.request.kill_grace,
                output_grace: self.request.output_grace,
                stop: self.request.stop.as_ref(),
            })
            .await;
            let (record, failure) = match outcome {
                Ok(outcome) => {
                    let duration_ms = record::millis(outcome.duration);
                    self.record.warnings.extend(
                        outcome
                            .warnings
                            .iter()
                            .map(|w| format!("{event} {}: {w}", script.location)),
                    );
                    let (record, why) = match outcome.result {
                        ScriptResult::Succeeded => (
                            script_record(script, "succeeded", Some(0), duration_ms),
                            None,
                        ),
                        ScriptResult::Failed { exit_code, signal } => {
                            let why = match (exit_code, signal) {
                                (Some(code), _) => format!("failed with exit code {code}"),
                                (None, Some(signal)) => format!("was killed by signal {signal}"),
                                (None, None) => "failed".to_owned(),
                            };
                            (
                                script_record(script, "failed", exit_code, duration_ms),
                                Some(why),
                            )
                        }
                        ScriptResult::Stopped { grace } => (
                            script_record(script, "stopped", None, duration_ms),
                            Some(format!(
                                "was still running {} s after the agent was told to stop, and was killed",
                                grace.as_secs()
                            )),
                        ),
                        ScriptResult::TimedOut { after } => (
                            script_record(script, "timed-out", None, duration_ms),
                            Some(format!(
                                "did not finish within its timeout of {} s and was killed",
                                after.as_secs()
                            )),
                        ),
                    };
                    let runas = script
                        .runas
                        .as_deref()
                        .map(|u| format!(" run as user {u}"))
                        .unwrap_or_default();
                    let subject = format!("script at {}{runas}", script.location);
                    (record, why.map(|why| format!("{subject} {why}")))
                }
                // The error is a sentence of its own that names the script.
                Err(error) => (
                    script_record(script, error.kind(), None, 0),
                    Some(error.to_string()),
                ),
            };
            records.push(record);
            if let Some(why) = failure {
                let stopped = records.last().is_some_and(|r| r.result == "stopped");
                if stopped {
                    self.record.status = Status::Interrupted;
                    self.push(event, Status::Interrupted, started, records, Some(why));
                } else {
                    self.fail(event, started, records, why);
                }
                let _ = self.save();
                return;
            }
        }
        self.event(event, started, records, None);
        let _ = self.save();
    }

    /// Whether the agent is shutting down.
    fn stopping(&self) -> bool {
        self.request.stop.as_ref().is_some_and(Stop::is_requested)
    }

    /// Before an event: false when the agent is shutting down; otherwise the observer (the
    /// journal) learns of the event before it runs.
    fn begin(&self, event: &str) -> Result<bool, DeployError> {
        if self.stopping() {
            return Ok(false);
        }
        if let Some(observer) = &self.request.observer {
            observer
                .before(&self.dir, &self.record, Some(event))
                .map_err(|source| DeployError::State {
                    path: self.dir.clone(),
                    source,
                })?;
        }
        Ok(true)
    }

    /// Ends the deployment at a shutdown, before `next` (or during the event that failed).
    fn interrupt(&mut self, next: &str) -> Result<(), DeployError> {
        let why = match self.record.events.last() {
            Some(last) if last.status == Status::Interrupted => format!(
                "stopped by agent shutdown during {}: {}",
                last.name,
                last.message.as_deref().unwrap_or("cut short")
            ),
            _ => format!("stopped by agent shutdown before {next}"),
        };
        tracing::warn!(deployment.id = %self.record.deployment_id, next, "deployment stopped by shutdown");
        self.record.status = Status::Interrupted;
        self.record.error = Some(why);
        self.record.finished_at_ms = Some(record::now_ms());
        self.save()
    }

    fn env(&self, event: &str) -> Vec<(String, String)> {
        let r = &self.record;
        let dir = self.dir.display().to_string();
        [
            ("LIFECYCLE_EVENT", event),
            // This host's directory of the deployment: with DEPLOYMENT_ID (the same on every
            // host of the group) it tells this agent's hooks from another agent's on one machine.
            ("SHOAL_DEPLOYMENT_DIR", dir.as_str()),
            ("DEPLOYMENT_ID", &r.deployment_id),
            ("APPLICATION_NAME", &r.application),
            ("DEPLOYMENT_GROUP_NAME", &r.group),
            ("DEPLOYMENT_GROUP_ID", &r.group),
            ("SHOAL_REVISION", &r.revision),
            (
                "SHOAL_PREVIOUS_REVISION",
                r.previous_revision.as_deref().unwrap_or(""),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        // Where the AppSpec's `files` went when not under `/` (`node.files_root`).
        .chain(
            self.request
                .layout
                .files_root()
                .map(|root| ("SHOAL_FILES_ROOT".to_owned(), root.display().to_string())),
        )
        .collect()
    }

    fn event(
        &mut self,
        name: &str,
        started: Instant,
        scripts: Vec<ScriptRecord>,
        message: Option<String>,
    ) {
        self.push(name, Status::Succeeded, started, scripts, message);
    }

    /// Records a failed event and fails the deployment, unless it is one of the previous
    /// revision's events and the request says to carry on past those.
    fn fail(&mut self, name: &str, started: Instant, scripts: Vec<ScriptRecord>, why: String) {
        let previous =
            lifecycle::find(name).is_some_and(|e| e.kind == lifecycle::EventKind::PreviousScripts);
        if previous && self.request.ignore_application_stop_failures {
            self.record
                .warnings
                .push(format!("{name} failed and was ignored: {why}"));
            self.push(name, Status::Ignored, started, scripts, Some(why));
            return;
        }
        self.record.error = Some(format!("{name}: {why}"));
        self.record.status = Status::Failed;
        self.push(name, Status::Failed, started, scripts, Some(why));
    }

    fn skip(&mut self, name: &str) {
        self.push(name, Status::Skipped, Instant::now(), Vec::new(), None);
    }

    fn push(
        &mut self,
        name: &str,
        status: Status,
        started: Instant,
        scripts: Vec<ScriptRecord>,
        message: Option<String>,
    ) {
        tracing::info!(deployment.id = %self.record.deployment_id, hook.event = name, status = status.as_str(), "event ended");
        self.record.events.push(EventRecord {
            name: name.to_owned(),
            status,
            duration_ms: record::millis(started.elapsed()),
            scripts,
            message,
        });
        if let Some(observer) = &self.request.observer {
            observer.after(&self.dir, &self.record);
        }
    }

    fn finish_failed(
        &mut self,
        name: &str,
        started: Instant,
        why: String,
    ) -> Result<(), DeployError> {
        self.fail(name, started, Vec::new(), why);
        self.record.finished_at_ms = Some(record::now_ms());
        self.save()
    }

    fn save(&self) -> Result<(), DeployError> {
        self.record
            .save(&self.dir)
            .map_err(|source| DeployError::State {
                path: self.dir.clone(),
                source,
            })
    }
}

/// Why blocking file work gave no result: its own error, or the task panicked.
#[derive(Debug, thiserror::Error)]
enum BlockingError<E> {
    #[error("{0}")]
    Failed(E),
    #[error("{0}")]
    Panicked(tokio::task::JoinError),
}

/// Runs blocking file work off the async workers.
async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, BlockingError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(BlockingError::Failed),
        Err(join) => Err(BlockingError::Panicked(join)),
    }
}

fn script_record(
    script: &Script,
    result: &str,
    exit_code: Option<i32>,
    duration_ms: u64,
) -> ScriptRecord {
    ScriptRecord {
        location: script.location.clone(),
        result: result.to_owned(),
        exit_code,
        duration_ms,
    }
}
