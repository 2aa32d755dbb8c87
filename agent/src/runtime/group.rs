//! One group's task: wait for a poll tick, a change on a watched channel, or shutdown; check
//! the channel; deploy what verified (see [`super::deploying`]); keep the health check going.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shoal_shared::release::AllowedSigners;
use shoal_shared::status::{GroupStatus, Health, Notice, Phase, Refusal as RefusalDto};
use shoal_shared::time::format_rfc3339;
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

use super::channel::{ChannelFailure, GroupChannel};
use super::deploying::Prepared;
use super::health;
use super::journal::{Journal, JournalFile};
use super::rollout::{GroupControl, MeshRef, TICK};
use crate::channel::cache::ReleaseCache;
use crate::channel::watch::Watch;
use crate::channel::{Release, jittered};
use crate::config::{self, Group};
use crate::coordinate::GroupValues;
use crate::execute::layout::Layout;
use crate::report::{Board, Metrics};
use crate::stop::Stop;
use crate::verify::state::ChannelState;
use shoal_shared::gossip::Step;
use shoal_shared::rollout::Event;

/// Everything a group task needs.
pub(super) struct GroupTask {
    pub(super) group: Group,
    pub(super) data_dir: PathBuf,
    pub(super) layout: Layout,
    /// The names of the agent's variables a runas script gets (`hooks.runas_env`).
    pub(super) runas_env: Vec<String>,
    pub(super) cache: ReleaseCache,
    pub(super) journal: Arc<Mutex<JournalFile>>,
    pub(super) board: Board,
    pub(super) metrics: Metrics,
    pub(super) stop: Stop,
    pub(super) channel: Option<GroupChannel>,
    pub(super) state: Option<ChannelState>,
    /// A verified release not deployed yet (its download failed and is retried).
    pub(super) pending: Option<Release>,
    /// Jitter source (xorshift), seeded per host and group.
    pub(super) rng: u64,
    /// Refusals already reported (release, kind): a channel may refuse one at every poll.
    pub(super) reported: BTreeSet<(String, String)>,
    /// Whether the release at the floor was checked for having been deployed (first poll).
    pub(super) floor_checked: bool,
    /// The planner and what the status endpoint's controls share with it.
    pub(super) control: GroupControl,
    /// The mesh, if the agent has one.
    pub(super) mesh: MeshRef,
    /// The release fetched and waiting for its turn.
    pub(super) prepared: Option<Prepared>,
    /// What was last published to the mesh.
    pub(super) published: GroupValues,
    /// Check the channel at once (a peer announced a release, or the target must be fetched).
    pub(super) check_soon: bool,
}

/// What woke a group task.
enum Wake {
    Stop,
    Check,
    Health,
    News,
}

impl GroupTask {
    /// The status of a group before its first check.
    pub(super) fn initial_status(group: &Group, journal: &Journal) -> GroupStatus {
        let mut status =
            GroupStatus::starting(&group.name, &group.application, &group.channel.display());
        status.current_revision = journal.current.as_ref().map(|c| c.revision.clone());
        status.last_known_good = journal.last_known_good.as_ref().map(|c| c.revision.clone());
        if group.health.is_some() {
            status.health = Health::Unknown;
        }
        status
    }

    /// Runs until shutdown.
    pub(super) async fn run(mut self) {
        if let Some((in_flight, settled)) = self.recover().await
            && let Some(event) = self.recovered_event(&in_flight, settled)
        {
            self.drive(event).await;
        }
        // Watch a local channel before the first look, so nothing published in between is
        // missed; a channel that cannot open yet is opened (and watched) at a later check.
        if let Ok(channel) = GroupChannel::open(&self.group, &self.data_dir) {
            self.channel = Some(channel);
        }
        let mut watch = self.start_watch();
        let mut news = self.mesh.as_ref().map(|m| m.changes());
        let wake = Arc::clone(&self.control.wake);
        let mut next_poll = Instant::now();
        let mut next_health = self.health_interval().map(|i| Instant::now() + i);
        self.drive(Event::Tick).await;
        while !self.stop.is_requested() {
            let mut stop = self.stop.clone();
            let tick = self.wants_tick().then(|| Instant::now() + TICK);
            let woke = tokio::select! {
                () = stop.requested() => Wake::Stop,
                () = sleep_until(next_poll) => Wake::Check,
                changed = changed(&mut watch) => {
                    if !changed {
                        warn!("channel watch stopped; polling until it can be started again");
                        watch = None;
                    }
                    Wake::Check
                }
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
                Wake::News => self.drive(Event::Tick).await,
                Wake::Check => {
                    self.check().await;
                    if watch.is_none() {
                        watch = self.start_watch();
                    }
                    next_poll = Instant::now() + jittered(self.poll_interval(), self.unit_random());
                }
            }
            if std::mem::take(&mut self.check_soon) {
                next_poll = Instant::now();
            }
        }
        self.board
            .update(&self.group.name, |g| g.phase = Phase::Stopping);
    }

    fn poll_interval(&self) -> Duration {
        match &self.group.channel {
            config::Channel::Git(source) => source.poll,
            config::Channel::Store(source) => source.poll,
        }
    }

    fn health_interval(&self) -> Option<Duration> {
        self.group.health.as_ref().map(|h| h.interval)
    }

    fn unit_random(&mut self) -> f64 {
        // xorshift64*: enough to spread polls, seeded per host and group.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn start_watch(&self) -> Option<Watch> {
        let paths = self.channel.as_ref()?.watch_paths()?;
        match Watch::start(&paths) {
            Ok(watch) => Some(watch),
            Err(e) => {
                warn!(error = %e, "cannot watch the local channel; polling only");
                None
            }
        }
    }

    pub(super) fn journal(&self) -> MutexGuard<'_, JournalFile> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn show(&self, change: impl FnOnce(&mut GroupStatus)) {
        self.board.update(&self.group.name, change);
    }

    /// Looks at the channel once and deploys a new release it verified.
    async fn check(&mut self) {
        match self.poll().await {
            Ok(()) => {}
            Err(failure) => {
                warn!(error.kind = failure.kind, error = %failure.message, "channel check failed");
                self.metrics.polled(&self.group.name, false);
                let notice = Notice {
                    message: failure.message,
                    when: now_rfc3339(),
                };
                self.show(|g| {
                    g.last_channel_error = Some(notice);
                    if g.phase == Phase::Starting {
                        g.phase = Phase::Idle;
                    }
                });
                return;
            }
        }
        if let Some(release) = self.pending.take() {
            let known = self.prepared.as_ref().is_some_and(|p| {
                p.release.digest == release.digest && p.release.version == release.version
            });
            if !known {
                self.prepared = self.prepare(release).await;
            }
        }
        let event = match &self.prepared {
            Some(prepared) => Event::Release {
                target: prepared.target(&self.group.name),
                policy: prepared.policy.clone(),
            },
            None => Event::Tick,
        };
        self.drive(event).await;
    }

    async fn poll(&mut self) -> Result<(), ChannelFailure> {
        let failure = |kind: &'static str, message: String| ChannelFailure {
            kind,
            message,
            refusal: None,
        };
        let signers_path = &self.group.allowed_signers;
        let text = std::fs::read_to_string(signers_path).map_err(|e| {
            failure(
                "allowed_signers",
                format!("cannot read {}: {e}", signers_path.display()),
            )
        })?;
        let signers = AllowedSigners::parse(&text).map_err(|e| {
            failure(
                "allowed_signers",
                format!("{}: {e}", signers_path.display()),
            )
        })?;
        if self.state.is_none() {
            let path = ChannelState::path_for(&self.data_dir, &self.group.name);
            let state = ChannelState::load(&path)
                .map_err(|e| failure("channel_state", super::channel::one_line(&e)))?;
            self.state = Some(state);
        }
        if self.channel.is_none() {
            self.channel = Some(GroupChannel::open(&self.group, &self.data_dir)?);
        }
        let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_mut()) else {
            return Ok(());
        };
        let poll = channel.poll(&signers, state, unix_now()).await?;
        let floor = state.floor().map(|f| f.name().to_owned());
        self.metrics.polled(&self.group.name, true);
        for (name, reason) in &poll.ignored {
            warn!(tag = %name, reason = %reason, "not a release");
        }
        if !poll.unreadable.is_empty() {
            // Each name once, and one line per poll however many there are.
            let shown: Vec<&str> = poll.unreadable.iter().take(5).map(String::as_str).collect();
            warn!(
                count = poll.unreadable.len(),
                names = ?shown,
                "store object names that cannot be read were skipped"
            );
            self.metrics
                .unreadable_names(&self.group.name, poll.unreadable.len());
        }
        // Newest first: the newest refusal not reported before becomes `last_refusal`. A channel
        // may refuse the same tag at every poll; it is counted and logged once.
        for (name, refusal) in poll.refusals.iter().rev() {
            self.refused(name, refusal.kind(), &refusal.to_string());
        }
        let when = now_rfc3339();
        let shown_floor = floor.clone();
        self.show(|g| {
            g.last_check = Some(when);
            g.last_channel_error = None;
            g.floor = shown_floor;
            if g.phase == Phase::Starting {
                g.phase = Phase::Idle;
            }
        });
        let mut newest = poll.newest;
        let attempted = self.journal().journal.last_target.clone();
        let wanted = self.wanted();
        // At the first check: a release verified just before a crash and never started.
        let first = !std::mem::replace(&mut self.floor_checked, true);
        let unstarted = first && floor != attempted;
        if newest.is_none() && floor.is_some() && (unstarted || wanted == floor) {
            let name = floor.clone().unwrap_or_default();
            let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_ref()) else {
                return Ok(());
            };
            newest = channel
                .floor_release(&name, &signers, state, unix_now())
                .await?;
            if newest.is_some() && unstarted {
                info!(revision.id = %name, "release verified before a restart was never deployed; deploying it now");
            }
        }
        if let Some(release) = newest {
            let name = release.version.name();
            if attempted.as_deref() == Some(name) && wanted.as_deref() != Some(name) {
                tracing::debug!(revision.id = %release.version, "release already deployed here");
            } else {
                info!(revision.id = %release.version, digest = %release.digest, signer = %release.signer.principal, "new release verified");
                self.pending = Some(release);
            }
        }
        Ok(())
    }

    /// The planner's target when it waits for its turn without its files at hand (after a
    /// restart, or to run again after an interruption): the channel must give it again, though
    /// it was started before.
    fn wanted(&self) -> Option<String> {
        let planner = self.planner();
        let target = planner.target()?;
        let prepared = self
            .prepared
            .as_ref()
            .is_some_and(|p| p.release.digest.to_string() == target.digest);
        (planner.step_now() == Some(Step::Waiting) && !prepared).then(|| target.revision.clone())
    }

    /// Shows and counts a refused release, once per release and reason.
    pub(super) fn refused(&mut self, name: &str, kind: &str, reason: &str) {
        if !self.reported.insert((name.to_owned(), kind.to_owned())) {
            return;
        }
        warn!(revision.id = %name, reason = %reason, "release refused");
        self.metrics.refused(&self.group.name, kind);
        let refusal = RefusalDto {
            name: name.to_owned(),
            kind: kind.to_owned(),
            reason: reason.to_owned(),
            when: now_rfc3339(),
        };
        self.show(|g| g.last_refusal = Some(refusal));
    }

    /// One probe of the running revision, between deployments.
    async fn monitor_health(&mut self) {
        let Some(check) = &self.group.health else {
            return;
        };
        let current = self.journal().journal.current.clone();
        let Some(current) = current else {
            return;
        };
        let env = self.health_env(&current.revision);
        let result = health::probe(check, &env).await;
        let health = if result.is_ok() {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        // Logged when it changes, not at every probe.
        let mut was = Health::Unknown;
        self.show(|g| was = std::mem::replace(&mut g.health, health));
        if was != health {
            self.drive(Event::Health(health)).await;
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

    pub(super) fn health_env(&self, revision: &str) -> Vec<(String, String)> {
        vec![
            ("DEPLOYMENT_GROUP_NAME".to_owned(), self.group.name.clone()),
            (
                "APPLICATION_NAME".to_owned(),
                self.group.application.clone(),
            ),
            ("SHOAL_REVISION".to_owned(), revision.to_owned()),
        ]
    }
}

async fn changed(watch: &mut Option<Watch>) -> bool {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}

async fn mesh_changed(news: &mut Option<tokio::sync::watch::Receiver<u64>>) {
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

/// Seconds since the epoch.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(super) fn now_rfc3339() -> String {
    format_rfc3339(unix_now())
}
