//! One group's loop: wait for a poll tick, a change on a watched channel, news from the mesh,
//! an operator's command or shutdown; look at the channel (the [`Watcher`]); step the group's
//! host (the pure [`GroupHost`], kept with its journal by the [`Keeper`]) and carry out the
//! work it asks for with the [`Deployer`]; between deployments, keep the health check going.
//! Without a mesh the group is a group of one and the same host runs with no peers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::gossip::{GroupValues, Target};
use shoal_shared::release::Version;
use shoal_shared::rollout::{Ended, Event, Failure, GroupHost, View, Work, pollers};
use shoal_shared::status::{GroupStatus, Health, Phase};
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use super::deployer::{Deployer, health_env, note_unreverted, summary_of};
use super::health;
use super::keeper::Keeper;
use super::release_file;
use super::watcher::{Prepared, Watcher};
use crate::channel::git;
use crate::clock::{now_ms, unix_now};
use crate::config::{Group, HealthCheck};
use crate::coordinate::{GroupSnapshot, Mesh};
use crate::execute::layout::Layout;
use crate::report::{Board, Metrics};
use crate::stop::Stop;

/// How often a waiting host looks again without news (deadlines, linear steps, warmup).
const TICK: Duration = Duration::from_secs(1);

/// One group's parts.
pub(super) struct GroupTask {
    pub(super) group: Group,
    pub(super) keeper: Keeper,
    pub(super) watcher: Watcher,
    pub(super) deployer: Deployer,
    /// The mesh, if the agent has one.
    pub(super) mesh: Option<Arc<Mesh>>,
    /// What was last published to the mesh.
    pub(super) published: GroupValues,
    pub(super) board: Board,
    pub(super) metrics: Metrics,
    pub(super) stop: Stop,
    /// A reload retires the task (to change or remove the group): it ends between
    /// deployments, never in the middle of one.
    pub(super) retire: Stop,
    /// Look at the channel at once (a peer announced a release, or the target must be fetched).
    pub(super) check_soon: bool,
    /// The next look goes ahead even on a host that does not poll the origin (one asked for,
    /// or the first without a mesh or with a local channel).
    pub(super) look_due: bool,
    /// How long a start listens to the mesh before it decides anything (the planner's warmup).
    pub(super) warmup: Duration,
    /// Whether this host polled the origin at its last timed look (for the log and metric).
    pub(super) polling: Option<bool>,
    /// Probe the running revision at once (a deployment just succeeded: its health is news
    /// for the mesh).
    pub(super) probe_soon: bool,
    /// The health check of the running revision, and the deployment it was read from.
    pub(super) running_check: Option<(PathBuf, Option<HealthCheck>)>,
}

/// What the group's host takes.
enum Input {
    Step(Event),
    Release(Box<Prepared>),
    Ended(Ended),
    Recover(Failure),
}

/// What woke the loop.
enum Wake {
    Stop,
    Check,
    Health,
    News,
}

impl GroupTask {
    /// The status of a group before its first look at the channel: what its journal holds,
    /// and its last deployment and last failure as their records under `root` say (so a
    /// restarted agent still shows why its group is halted).
    pub(super) fn initial_status(group: &Group, host: &GroupHost, root: &Path) -> GroupStatus {
        let mut status =
            GroupStatus::starting(&group.name, &group.application, &group.channel.display());
        match crate::report::deployments::list_group(root, &group.name) {
            Ok(list) => {
                let mut ours = list.into_iter();
                status.last_deployment = ours.next();
                status.last_failure = status
                    .last_deployment
                    .iter()
                    .cloned()
                    .chain(ours)
                    .find(|d| d.result == "failed");
            }
            Err(e) => warn!(error = %e, "cannot read the group's past deployments"),
        }
        super::show::show(&mut status, host, unix_now());
        let running = host.journal().current.as_ref();
        if running_check(group, running.map(|c| c.dir.as_path())).is_some() {
            status.health = Health::Unknown;
        }
        status
    }

    /// Runs until shutdown.
    pub(super) async fn run(mut self) {
        self.recover().await;
        self.watcher.open();
        // The first look waits, with a mesh and a remote channel, until the mesh has been
        // heard: then only the pollers, and a host a peer is ahead of, go to the origin, so a
        // fleet restarted host by host does not cost the origin a look per host.
        let polled = self.mesh.is_some() && !self.watcher.is_local();
        self.look_due = !polled;
        let first_look = if polled { self.warmup } else { Duration::ZERO };
        let mut news = self.mesh.as_ref().map(|m| m.changes());
        let wake = self.keeper.wake();
        let mut next_poll = Instant::now() + first_look;
        let mut next_health = self.health_interval().map(|i| Instant::now() + i);
        self.advance(Input::Step(Event::Tick)).await;
        while !self.stop.is_requested() && !self.retire.is_requested() {
            let mut stop = self.stop.clone();
            let mut retire = self.retire.clone();
            let tick = self
                .keeper
                .read(GroupHost::wants_tick)
                .then(|| Instant::now() + TICK);
            let woke = tokio::select! {
                () = stop.requested() => Wake::Stop,
                () = retire.requested() => Wake::Stop,
                () = sleep_until(next_poll) => Wake::Check,
                _ = self.watcher.changed() => Wake::Check,
                () = sleep_until_opt(next_health) => Wake::Health,
                () = mesh_changed(&mut news) => Wake::News,
                () = wake.notified() => Wake::News,
                () = sleep_until_opt(tick) => Wake::News,
            };
            match woke {
                Wake::Stop => break,
                Wake::Health => {
                    self.monitor_health().await;
                    next_health = self.health_interval().map(|i| Instant::now() + i);
                }
                Wake::News => self.advance(Input::Step(Event::Tick)).await,
                Wake::Check => {
                    if self.looks_now().await {
                        // A stop ends a fetch that hangs on a remote server, and kills its git.
                        let stop = self.stop.clone();
                        git::with_stop(stop, self.check()).await;
                    }
                    next_poll = Instant::now() + self.watcher.next_poll();
                }
            }
            if std::mem::take(&mut self.check_soon) {
                next_poll = Instant::now();
                self.look_due = true;
            }
            if std::mem::take(&mut self.probe_soon) {
                next_health = self.health_interval().map(|_| Instant::now());
            }
            // A deployment may have brought a release with a check of its own.
            if next_health.is_none() {
                next_health = self.health_interval().map(|i| Instant::now() + i);
            }
        }
        if self.stop.is_requested() {
            self.board
                .update(&self.group.name, |g| g.phase = Phase::Stopping);
        }
    }

    /// At the start: the run the journal has in flight was cut short by a crash or a
    /// shutdown; the host decides what follows (and heals a step left without a run).
    async fn recover(&mut self) {
        let in_flight = self.keeper.read(|host| host.in_flight().cloned());
        let cut = match &in_flight {
            Some(run) => {
                let cut = self.deployer.cut_short(run).await;
                self.metrics
                    .deployment_ended(&self.group.name, "interrupted");
                if let Some(summary) = run.dir.as_deref().and_then(summary_of) {
                    self.show(|g| g.last_deployment = Some(summary));
                }
                cut
            }
            None => Failure {
                reason: String::new(),
                changed_host: false,
                installed: false,
            },
        };
        self.advance(Input::Recover(cut)).await;
    }

    /// Whether this look at the channel goes ahead. With a mesh and a remote channel only a
    /// few members poll the origin ([`pollers`]); the others look when asked (a peer
    /// announcing a release, an operator's order, files the planner waits for) and
    /// while an alive peer is on a release this host does not have, so one missed announcement
    /// is not a release missed.
    async fn looks_now(&mut self) -> bool {
        let asked = std::mem::take(&mut self.look_due);
        let Some(mesh) = self.mesh.clone() else {
            return true;
        };
        if asked || self.watcher.is_local() {
            return true;
        }
        let (wanted, own) = self.keeper.read(|host| {
            (
                host.wants_release().is_some(),
                host.planner().target().map(|t| t.id.clone()),
            )
        });
        let snapshot = mesh.group(&self.group.name).await;
        let look = pollers::look(
            &self.group.name,
            mesh.node(),
            own.as_deref(),
            &snapshot.view().peers,
            self.group.pollers,
        );
        if self.polling != Some(look.polls) {
            if look.polls {
                info!(
                    pollers = self.group.pollers,
                    "this host polls the channel's origin for the group"
                );
            } else {
                info!(
                    pollers = self.group.pollers,
                    "this host leaves polling the channel's origin to other members; gossip announces releases"
                );
            }
            self.metrics.poller(&self.group.name, look.polls);
            self.polling = Some(look.polls);
        }
        let looks = look.looks || wanted;
        // A look shows the floor and the phase that follow; a host that leaves the look to the
        // pollers shows its floor and has started once it heard the mesh.
        let floor = if looks { None } else { self.watcher.floor() };
        self.show(|g| {
            g.polls = Some(look.polls);
            if !looks && g.phase == Phase::Starting {
                g.phase = Phase::Idle;
            }
            if g.floor.is_none() {
                g.floor = floor;
            }
        });
        looks
    }

    /// The release a host that does not poll the origin fetches from its peers: the newest
    /// target an alive peer has that is not this host's. `None` for a poller, a local channel
    /// or without a mesh, where looks go to the origin.
    async fn offer(&self, own: Option<&str>) -> Option<Target> {
        let mesh = self.mesh.as_ref()?;
        if self.polling != Some(false) || self.watcher.is_local() {
            return None;
        }
        let snapshot = mesh.group(&self.group.name).await;
        snapshot
            .peers
            .iter()
            .filter(|p| p.alive)
            .filter_map(|p| p.state.as_ref()?.target.clone())
            .filter(|t| Some(t.id.as_str()) != own)
            .filter_map(|t| Some((Version::parse(&t.revision).ok()?, t)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, target)| target)
    }

    /// Looks at the channel once and hands the host a release that verified.
    async fn check(&mut self) {
        let (wanted, target) = self.keeper.read(|host| {
            (
                host.wants_release().map(str::to_owned),
                host.planner().target().map(|t| t.id.clone()),
            )
        });
        let offer = self.offer(target.as_deref()).await;
        self.watcher.look(wanted, target, offer).await;
        // A rollback order taken is out before the deployment it starts, so views tell it as
        // a rollback from the first.
        self.publish().await;
        let input = match self.watcher.prepared.clone() {
            Some(prepared) => Input::Release(Box::new(prepared)),
            None => Input::Step(Event::Tick),
        };
        self.advance(input).await;
    }

    /// Gives the host `input` and carries out the work it asks for, until it asks for none.
    async fn advance(&mut self, input: Input) {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let snapshot = self.snapshot().await;
            let given = self.keeper.take_orders();
            let heard = snapshot.peers.iter().filter_map(|p| p.rollback.as_ref());
            self.check_soon |= self.watcher.hear(heard.chain(&given));
            let work = match self.take(input, &snapshot.view()) {
                Ok(work) => work,
                Err(e) => {
                    // Nothing decided is carried out before it is on disk.
                    error!(error = %e, "cannot write the journal; nothing is carried out");
                    self.show(|g| g.phase = Phase::Failed);
                    return;
                }
            };
            self.publish().await;
            for asked in work {
                match asked {
                    Work::Run(run) => {
                        let (env, policy) = self.release_of(&run);
                        let ended = self.deployer.run(&run, env, policy.as_ref()).await;
                        if ended == Ended::Stopped {
                            info!(deployment.id = %run.deployment_id, "deployment stopped by shutdown; the next start runs it again");
                            self.metrics
                                .deployment_ended(&self.group.name, "interrupted");
                            // Journaled as a planned stop: not a failure at the next start.
                            if let Err(e) = self.take(Input::Ended(ended), &snapshot.view()) {
                                error!(error = %e, "cannot write the journal; the stop will read as a crash");
                            }
                            return;
                        }
                        self.count(&run, &ended);
                        self.probe_soon |= matches!(ended, Ended::Succeeded { .. });
                        next = Some(Input::Ended(ended));
                    }
                    Work::CheckChannel(target) => {
                        info!(revision.id = %target.revision, digest = %target.digest, "a peer announced a release; checking the channel");
                        self.check_soon = true;
                    }
                    Work::Unreverted { dir, why } => {
                        error!(reason = %why, "not reverted");
                        if let Some(summary) = dir.as_deref().and_then(|d| note_unreverted(d, &why))
                        {
                            self.show(|g| g.last_deployment = Some(summary));
                        }
                    }
                }
            }
            if self.stop.is_requested() {
                return;
            }
        }
    }

    /// Steps the host with `input`; the journal is written before this returns.
    fn take(
        &mut self,
        input: Input,
        view: &View<'_>,
    ) -> Result<Vec<Work>, super::journal::JournalError> {
        let (work, halt, ignored) = self.keeper.change(|host| {
            let before = host.planner().halted().cloned();
            let ignored_before = host.planner().ignored_halts();
            let now = now_ms();
            let work = match input {
                Input::Step(event) => host.step(event, view, now),
                Input::Release(prepared) => {
                    let target = prepared.target();
                    let Prepared { policy, tree, .. } = *prepared;
                    host.release(target, policy, tree, view, now)
                }
                Input::Ended(ended) => host.ended(ended, view, now),
                Input::Recover(cut) => host.recover(cut, view, now),
            };
            let planner = host.planner();
            let halt = planner
                .halted()
                .cloned()
                .filter(|h| Some(h) != before.as_ref());
            let ignored = planner.ignored_halts().saturating_sub(ignored_before);
            (work, halt, ignored)
        })?;
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
        let keeper = self.keeper.clone();
        self.show(|g| keeper.read(|host| super::show::show(g, host, unix_now())));
        let revision = self
            .keeper
            .read(|host| host.journal().current.as_ref().map(|c| c.revision.clone()));
        self.metrics
            .set_revision(&self.group.name, revision.as_deref());
        Ok(work)
    }

    /// The release's own environment and policy for a run of it (none for a revert).
    fn release_of(
        &self,
        run: &shoal_shared::rollout::InFlight,
    ) -> (Vec<(String, String)>, Option<shoal_shared::rollout::Policy>) {
        if run.is_revert() {
            return (Vec::new(), None);
        }
        match &self.watcher.prepared {
            Some(p) if p.release.digest.to_string() == run.digest => {
                (p.release.env.clone(), Some(p.policy.clone()))
            }
            _ => (
                Vec::new(),
                self.keeper.read(|host| host.planner().policy().cloned()),
            ),
        }
    }

    /// Logs and counts how a run ended; status shows its record.
    fn count(&self, run: &shoal_shared::rollout::InFlight, ended: &Ended) {
        let result = match ended {
            Ended::Succeeded { .. } => {
                info!(deployment.id = %run.deployment_id, revision.id = %run.revision, "deployment succeeded");
                "succeeded"
            }
            Ended::Failed(failure) | Ended::Cut(failure) => {
                warn!(deployment.id = %run.deployment_id, revision.id = %run.revision, error = %failure.reason, "deployment failed");
                "failed"
            }
            Ended::Stopped => "interrupted",
        };
        self.metrics.deployment_ended(&self.group.name, result);
        let dir = match ended {
            Ended::Succeeded { dir } => Some(dir.clone()),
            _ => self.keeper.read(|host| {
                host.journal()
                    .in_flight_dir()
                    .map(std::path::Path::to_owned)
            }),
        };
        let failed = !matches!(ended, Ended::Succeeded { .. });
        let output = match (&dir, failed) {
            (Some(dir), true) => crate::report::deployments::failure_output(dir),
            _ => Vec::new(),
        };
        if let Some(summary) = dir.as_deref().and_then(summary_of) {
            self.show(|g| {
                if failed {
                    g.last_failure = Some(summary.clone());
                    if let Some(rollout) = g
                        .rollout
                        .as_mut()
                        .filter(|r| r.deployment == run.deployment_id)
                    {
                        rollout.failed_at = Some(crate::clock::now_rfc3339());
                        rollout.failure_output = output;
                    }
                }
                g.last_deployment = Some(summary);
            });
        }
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

    /// Publishes what the host publishes, when it changed.
    async fn publish(&mut self) {
        let mut published = self.keeper.read(|host| host.planner().values());
        published.rollback = self.watcher.rollback();
        if published == self.published {
            return;
        }
        if let Some(mesh) = self.mesh.clone() {
            mesh.publish(&self.group.name, &published).await;
        }
        self.published = published;
    }

    fn health_interval(&mut self) -> Option<Duration> {
        self.running_check().map(|h| h.interval)
    }

    /// The check of the running revision: its release's own, else the group's; read once per
    /// deployment.
    fn running_check(&mut self) -> Option<HealthCheck> {
        let dir = self
            .keeper
            .read(|host| host.journal().current.as_ref().map(|c| c.dir.clone()));
        match (&self.running_check, dir) {
            (Some((read, check)), Some(dir)) if *read == dir => check.clone(),
            (_, Some(dir)) => {
                let check = running_check(&self.group, Some(&dir));
                self.running_check = Some((dir, check.clone()));
                check
            }
            (_, None) => self.group.health.clone(),
        }
    }

    /// One probe of the running revision, between deployments.
    async fn monitor_health(&mut self) {
        let Some(check) = self.running_check() else {
            return;
        };
        let current = self.keeper.read(|host| host.journal().current.clone());
        let Some(current) = current else {
            return;
        };
        let env = health_env(&self.group, &current.revision);
        let result = health::probe(&check, &env).await;
        let health = if result.is_ok() {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        // Logged when it changes, not at every probe.
        let mut was = Health::Unknown;
        self.show(|g| was = std::mem::replace(&mut g.health, health));
        // Published when the planner's differs: the deployment's health window shows its
        // probes on the status board, not to the mesh.
        if self.keeper.read(|host| host.planner().health()) != health {
            self.advance(Input::Step(Event::Health(health))).await;
        }
        match &result {
            Err(why) if was != Health::Unhealthy => {
                warn!(revision.id = %current.revision, reason = %why, "health check failing");
            }
            Ok(()) if was == Health::Unhealthy => {
                info!(revision.id = %current.revision, "health check passing again");
            }
            _ => {}
        }
    }

    fn show(&self, change: impl FnOnce(&mut GroupStatus)) {
        self.board.update(&self.group.name, change);
    }
}

/// Waits for news from the mesh; forever without one (or once it is gone).
pub(super) async fn mesh_changed(news: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match news {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *news = None;
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The check that judges the revision installed from deployment `dir`: its release's own
/// `health:`, else the group's.
fn running_check(group: &Group, dir: Option<&Path>) -> Option<HealthCheck> {
    let settings = dir
        .map(|dir| release_file::settings(&Layout::archive_dir(dir)))
        .unwrap_or_default();
    release_file::health_check(&settings, group.health.as_ref()).cloned()
}
