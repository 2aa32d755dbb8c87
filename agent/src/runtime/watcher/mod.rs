//! The channel watcher: a group's look at its channel (poll, or a change on a local channel):
//! verify what is new against the allowed signers and the floor, fetch it into the release
//! cache and read its rollout policy, so a release is [`Prepared`] for its turn. Refusals are
//! shown and counted once each. After each look it tells the cache what the group still uses,
//! and the cache removes what no group sharing it does.
//!
//! An operator's rollback order (`shoal rollback`, heard from a peer or given on this host) is
//! checked here against the group's `allowed_signers` and taken while its `from` is the floor:
//! the watcher then offers the order's `to` (below the floor) as the release to roll out,
//! under the order's own deployment id, until a newer release comes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_shared::gossip::{Rollback, Target};
use shoal_shared::release::AllowedSigners;
use shoal_shared::release::rollback::RollbackOrder;
use shoal_shared::rollout::{GroupHost, Policy, PolicyError, RawPolicy, deployment_id};
use shoal_shared::status::{GroupStatus, Notice, Phase, Refusal as RefusalDto, Verified};
use tracing::{info, warn};

mod orders;
mod peers;

use super::channel::{ChannelFailure, GroupChannel, one_line};
use super::keeper::Keeper;
use super::release_file;
use crate::channel::cache::{Cleaned, ReleaseCache};
use crate::channel::watch::Watch;
use crate::channel::{Digest, Release, jittered};
use crate::clock::{now_rfc3339, unix_now};
use crate::config::{self, Group};
use crate::report::{Board, Metrics};
use crate::share::fetch::Peers;
use crate::verify::state::ChannelState;

/// A verified release, fetched and with its policy read: ready for its turn.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) release: Release,
    /// The deployment that rolls it out: the release's own, or a rollback order's.
    pub(super) id: String,
    /// Its files in the release cache.
    pub(super) tree: PathBuf,
    pub(super) policy: Policy,
}

impl Prepared {
    /// The release as gossip names it.
    pub(super) fn target(&self) -> Target {
        Target {
            id: self.id.clone(),
            revision: self.release.version.name().to_owned(),
            digest: self.release.digest.to_string(),
        }
    }
}

/// One group's channel, as the group's loop looks at it.
pub(super) struct Watcher {
    group: Group,
    data_dir: PathBuf,
    cache: ReleaseCache,
    keeper: Keeper,
    board: Board,
    metrics: Metrics,
    channel: Option<GroupChannel>,
    state: Option<ChannelState>,
    /// A verified release not prepared yet (its download failed and is retried), and the
    /// deployment that rolls it out.
    pending: Option<(Release, String)>,
    /// Rollback orders that verified and wait for their `from` to be the floor.
    orders: Vec<(RollbackOrder, Rollback)>,
    /// Rollback orders already checked (their text), each checked once.
    judged: BTreeSet<String>,
    /// Jitter source (xorshift), seeded per host and group.
    rng: u64,
    /// Refusals already reported (release, kind): a channel may refuse one at every poll.
    reported: BTreeSet<(String, String)>,
    /// Whether the release at the floor was checked for having been deployed (first poll).
    floor_checked: bool,
    /// Changes on a local channel.
    watch: Option<Watch>,
    /// The release prepared for its turn.
    pub(super) prepared: Option<Prepared>,
    /// The mesh's members to fetch releases from, with a sealed mesh.
    peers: Option<Peers>,
}

impl Watcher {
    pub(super) fn new(
        group: Group,
        data_dir: PathBuf,
        cache: ReleaseCache,
        keeper: Keeper,
        board: Board,
        metrics: Metrics,
        seed: u64,
    ) -> Self {
        Self {
            group,
            data_dir,
            cache,
            keeper,
            board,
            metrics,
            channel: None,
            state: None,
            pending: None,
            orders: Vec::new(),
            judged: BTreeSet::new(),
            rng: seed | 1,
            reported: BTreeSet::new(),
            floor_checked: false,
            watch: None,
            prepared: None,
            peers: None,
        }
    }

    /// Fetches releases from `peers` too (a sealed mesh).
    pub(super) fn with_peers(mut self, peers: Option<Peers>) -> Self {
        self.peers = peers;
        self
    }

    /// Opens the channel and watches a local one before the first look, so nothing
    /// published in between is missed; one that cannot open yet is opened (and watched) at a
    /// later look.
    pub(super) fn open(&mut self) {
        if let Ok(channel) = GroupChannel::open(&self.group, &self.data_dir) {
            self.channel = Some(channel);
        }
        self.start_watch();
    }

    /// Whether the channel is local (a path, `file://`): watched, and looked at by every host.
    /// A channel not opened yet counts as local, so it is looked at until it opens.
    pub(super) fn is_local(&self) -> bool {
        self.channel
            .as_ref()
            .is_none_or(|channel| channel.watch_paths().is_some())
    }

    /// When to look next: the poll interval, spread by ±20 % jitter.
    pub(super) fn next_poll(&mut self) -> Duration {
        let interval = match &self.group.channel {
            config::Channel::Git(source) => source.poll,
            config::Channel::Store(source) => source.poll,
        };
        jittered(interval, self.unit_random())
    }

    /// A change on a watched local channel; `false` when the watch stopped.
    pub(super) async fn changed(&mut self) -> bool {
        let changed = match &mut self.watch {
            Some(watch) => watch.changed().await,
            None => std::future::pending().await,
        };
        if !changed {
            warn!("channel watch stopped; polling until it can be started again");
            self.watch = None;
        }
        changed
    }

    /// Looks at the channel once: a release that verified is prepared for its turn.
    /// `wanted` is the release the planner waits to run without its files at hand (after a
    /// restart, or to run again): the channel gives it again though it was started before.
    /// `target` is the deployment the planner has now.
    /// `offer` is a release a peer has, to fetch from the peers that hold it rather than look
    /// at the origin (a host that does not poll it); the origin is asked when they cannot serve.
    pub(super) async fn look(
        &mut self,
        wanted: Option<String>,
        target: Option<String>,
        offer: Option<Target>,
    ) {
        if let Err(failure) = self.poll(wanted, target, offer).await {
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
        }
        // A release that verified is prepared even when the look failed after it (a rollback
        // while the origin is down).
        if let Some((release, id)) = self.pending.take() {
            let known = self.prepared.as_ref().is_some_and(|p| {
                p.release.digest == release.digest
                    && p.release.version == release.version
                    && p.id == id
            });
            if !known {
                self.prepared = self.prepare(release, id).await;
            }
        }
        if self.watch.is_none() {
            self.start_watch();
        }
        self.tidy_cache().await;
    }

    /// A release that verified could not be fetched, for `why`: said in the log and in status
    /// (as the look's error), and tried again at the next look.
    fn unfetched(&mut self, release: Release, id: String, why: String) {
        let name = release.version.name();
        warn!(revision.id = %name, error = %why, "cannot fetch release; retrying at the next check");
        let notice = Notice {
            message: format!("cannot fetch {name}: {why}"),
            when: now_rfc3339(),
        };
        self.show(|g| g.last_channel_error = Some(notice));
        self.pending = Some((release, id));
    }

    /// Tells the release cache what this group holds now and removes what no group sharing
    /// it holds (see [`ReleaseCache::clean`]).
    async fn tidy_cache(&self) {
        let mut in_use = self.keeper.read(in_use);
        in_use.extend(self.prepared.iter().map(|p| p.release.digest.clone()));
        self.cache
            .holds(&self.group.name, in_use, self.group.keep_releases);
        let cache = self.cache.clone();
        let cleaned = tokio::task::spawn_blocking(move || {
            let cleaned = cache.clean();
            if cleaned.as_ref().is_ok_and(|c| *c != Cleaned::default()) {
                // A release came and another went: what that allocated is free now.
                crate::heap::give_back();
            }
            cleaned
        });
        match cleaned.await {
            Ok(Ok(cleaned)) if cleaned != Cleaned::default() => {
                info!(
                    trees = cleaned.trees,
                    blobs = cleaned.blobs,
                    leftovers = cleaned.leftovers,
                    "release cache cleaned"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot clean the release cache"),
            Err(e) => warn!(error = %e, "the release cache clean stopped"),
        }
    }

    /// The group's channel state, read from disk the first time.
    fn load_state(&mut self) -> Result<&mut ChannelState, ChannelFailure> {
        let state = match self.state.take() {
            Some(state) => state,
            None => {
                let path = ChannelState::path_for(&self.data_dir, &self.group.name);
                ChannelState::load(&path).map_err(|e| ChannelFailure {
                    kind: "channel_state",
                    message: one_line(&e),
                    refusal: None,
                })?
            }
        };
        Ok(self.state.insert(state))
    }

    /// The anti-rollback floor this host's channel state holds, without a look (a state that
    /// cannot be read shows none; the next look reports it).
    pub(super) fn floor(&mut self) -> Option<String> {
        let state = self.load_state().ok()?;
        state.floor().map(|f| f.name().to_owned())
    }

    async fn poll(
        &mut self,
        wanted: Option<String>,
        target: Option<String>,
        offer: Option<Target>,
    ) -> Result<(), ChannelFailure> {
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
        self.load_state()?;
        if self.channel.is_none() {
            self.channel = Some(GroupChannel::open(&self.group, &self.data_dir)?);
        }
        let from_peers = match &offer {
            Some(offer) => self.look_at_peers(offer, &signers).await?,
            None => None,
        };
        let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_mut()) else {
            return Ok(());
        };
        let polled = match from_peers {
            Some(poll) => Ok(poll),
            None => {
                let polled = channel.poll(&signers, state, unix_now()).await;
                if polled.is_ok() {
                    self.metrics.polled(&self.group.name, true);
                }
                polled
            }
        };
        let poll = match polled {
            Ok(poll) => poll,
            Err(failure) => {
                // A rollback needs no new release from the channel: an order is taken, and its
                // release brought from what this host already has (a git channel's mirror)
                // while the origin is down, when going back matters most.
                if let Err(e) = self.take_order() {
                    warn!(error = %e.message, "cannot keep the rollback order");
                }
                if let Err(e) = self
                    .rolled_back(&signers, wanted.as_deref(), target.as_deref())
                    .await
                {
                    tracing::debug!(error = %e.message, "the rollback waits for the channel");
                }
                return Err(failure);
            }
        };
        let floor = self
            .state
            .as_ref()
            .and_then(ChannelState::floor)
            .map(|f| f.name().to_owned());
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
        self.take_order()?;
        if self
            .rolled_back(&signers, wanted.as_deref(), target.as_deref())
            .await?
        {
            return Ok(());
        }
        let mut newest = poll.newest;
        let attempted = self.keeper.read(|host| host.journal().last_target.clone());
        // At the first check: a release verified just before a crash and never started.
        let first = !std::mem::replace(&mut self.floor_checked, true);
        let unstarted = first && floor != attempted;
        if newest.is_none() && floor.is_some() && (unstarted || wanted == floor) {
            let name = floor.clone().unwrap_or_default();
            let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_mut()) else {
                return Ok(());
            };
            newest = channel
                .named_release(&name, &signers, state, unix_now())
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
                let verified = Verified {
                    name: name.to_owned(),
                    signer: release.signer.principal.clone(),
                    when: now_rfc3339(),
                };
                self.show(|g| g.verified = Some(verified));
                let id = deployment_id(&self.group.name, &release.digest.to_string());
                self.pending = Some((release, id));
            }
        }
        Ok(())
    }

    /// Fetches a release that verified and reads its policy; `None` (and status says why)
    /// when it cannot be used now — a fetch that failed is retried at the next look.
    async fn prepare(&mut self, release: Release, id: String) -> Option<Prepared> {
        let name = release.version.name().to_owned();
        self.channel.as_ref()?;
        self.cache.fetching(&self.group.name, &release.digest);
        let from_origin = match self.bundle_from_peers(&release).await {
            Ok(there) => !there,
            Err(why) => {
                self.unfetched(release, id, why);
                return None;
            }
        };
        let channel = self.channel.as_mut()?;
        let size = match channel {
            GroupChannel::Store(store) if from_origin && !self.cache.has_tree(&release.digest) => {
                store.bundle_of(&release).map(|b| b.size)
            }
            _ => None,
        };
        let tree = match channel.materialize(&release, &self.cache).await {
            Ok(tree) => {
                if let Some(size) = size {
                    self.metrics
                        .release_fetched(&self.group.name, "origin", size);
                }
                let keep = self.group.keep_releases;
                self.cache.fetched(&self.group.name, &release.digest, keep);
                tree
            }
            Err(failure) => {
                if let Some(refusal) = &failure.refusal {
                    self.refused(&name, refusal.kind(), &failure.message);
                    self.keeper.note(|host| host.attempted(&name));
                } else {
                    self.unfetched(release, id, failure.message);
                }
                return None;
            }
        };
        // A rollback rolls out under the group's policy, not the one the release came with.
        let rollback = id != deployment_id(&self.group.name, &release.digest.to_string());
        let policy = if rollback {
            release_file::read(&tree)
                .map(|_| self.group.rollout.clone())
                .map_err(ReleasePolicyError::File)
        } else {
            release_policy(release.rollout.as_ref(), &tree, &self.group.rollout)
        };
        match policy {
            Ok(policy) => Some(Prepared {
                release,
                id,
                tree,
                policy,
            }),
            Err(why) => {
                self.refused(&name, "bad_policy", &why.to_string());
                self.keeper.note(|host| host.attempted(&name));
                None
            }
        }
    }

    /// Shows and counts a refused release, once per release and reason.
    fn refused(&mut self, name: &str, kind: &str, reason: &str) {
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

    fn start_watch(&mut self) {
        let Some(paths) = self.channel.as_ref().and_then(GroupChannel::watch_paths) else {
            return;
        };
        match Watch::start(&paths) {
            Ok(watch) => self.watch = Some(watch),
            Err(e) => warn!(error = %e, "cannot watch the local channel; polling only"),
        }
    }

    fn unit_random(&mut self) -> f64 {
        // xorshift64*: enough to spread polls, seeded per host and group.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn show(&self, change: impl FnOnce(&mut GroupStatus)) {
        self.board.update(&self.group.name, change);
    }
}

/// The releases `host` may still read from the cache or go back to: what runs, the last known
/// good revision and the one before it, the run in flight, the target and the release queued
/// after it.
fn in_use(host: &GroupHost) -> Vec<Digest> {
    let journal = host.journal();
    let memory = host.planner().memory();
    let installed = [
        &journal.current,
        &journal.last_known_good,
        &journal.previous,
    ]
    .into_iter()
    .flatten()
    .map(|i| i.digest.as_str());
    installed
        .chain(journal.in_flight.iter().map(|r| r.digest.as_str()))
        .chain(host.planner().target().map(|t| t.digest.as_str()))
        .chain(memory.next.iter().map(|(t, _)| t.digest.as_str()))
        .chain(memory.lkg.iter().map(|r| r.digest.as_str()))
        .filter_map(Digest::parse)
        .collect()
}

/// Why a release's rollout policy cannot be used: the release is refused as `bad_policy`.
#[derive(Debug, thiserror::Error)]
enum ReleasePolicyError {
    /// The store manifest's `rollout:` has a bad key.
    #[error("release.yaml: {0}")]
    Manifest(PolicyError),
    /// The bundle's `shoal.yaml` cannot be read or has a bad `health:`.
    #[error("{0}")]
    File(release_file::ReadError),
    /// The bundle's `shoal.yaml` has a bad rollout key.
    #[error("{name}: {0}", name = release_file::NAME)]
    Bundle(PolicyError),
}

/// The policy of a release: the store manifest's, else the bundle's `shoal.yaml`, else the
/// group's default; each checked against the default. The bundle's `shoal.yaml` is read and
/// checked whole either way, since it also sets the release's health check.
fn release_policy(
    manifest: Option<&RawPolicy>,
    tree: &Path,
    default: &Policy,
) -> Result<Policy, ReleasePolicyError> {
    let (file, _) = release_file::read(tree).map_err(ReleasePolicyError::File)?;
    if let Some(raw) = manifest {
        return raw.check(default).map_err(ReleasePolicyError::Manifest);
    }
    match file.rollout {
        Some(raw) => raw.check(default).map_err(ReleasePolicyError::Bundle),
        None => Ok(default.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shoal_shared::rollout::journal::PREPARE;
    use shoal_shared::rollout::{
        InFlight, Installed, Journal, Settings, Shape, Strategy, View, parse_policy_file,
    };

    use super::*;

    fn bundle(shoal_yaml: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(text) = shoal_yaml {
            std::fs::write(dir.path().join("shoal.yaml"), text).expect("write");
        }
        dir
    }

    fn raw(text: &str) -> RawPolicy {
        parse_policy_file(text, "release.yaml", Shape::Block)
            .expect("parses")
            .expect("a rollout")
    }

    #[test]
    fn a_release_without_a_policy_gets_the_groups() {
        let default = Policy::default();
        let tree = bundle(None);
        assert_eq!(
            release_policy(None, tree.path(), &default).ok(),
            Some(default)
        );
    }

    #[test]
    fn the_manifest_wins_over_the_bundle_and_the_bundle_over_the_group() {
        let default = Policy::default();
        let tree = bundle(Some(
            "rollout:\n  strategy: canary\n  min_healthy_time: 3s\n",
        ));
        let from_bundle = release_policy(None, tree.path(), &default).expect("policy");
        assert_eq!(from_bundle.strategy, Strategy::Canary);
        assert_eq!(from_bundle.min_healthy_time, Duration::from_secs(3));
        let manifest = raw("rollout:\n  strategy: all-at-once\n");
        let from_manifest = release_policy(Some(&manifest), tree.path(), &default).expect("policy");
        assert_eq!(from_manifest.strategy, Strategy::AllAtOnce);
    }

    fn digest(n: u8) -> Digest {
        Digest::Commit(format!("{n:02x}").repeat(20))
    }

    fn installed(n: u8) -> Installed {
        Installed {
            revision: format!("v{n}"),
            digest: digest(n).to_string(),
            dir: format!("/deployment-root/web/d-{n}").into(),
        }
    }

    fn target(n: u8) -> Target {
        Target {
            id: format!("d-{n:012}"),
            revision: format!("v{n}"),
            digest: digest(n).to_string(),
        }
    }

    /// The host of group `web` with `journal`, listening to gossip for `warmup` ms first.
    fn start(journal: Journal, warmup: u64) -> GroupHost {
        let settings = Settings {
            node: "h0".into(),
            warmup,
            forget_after: 0,
            expected_members: None,
        };
        GroupHost::start("web", settings, journal, &Policy::default(), 0)
    }

    /// `host` verifies the release numbered `n`, whose files are in the cache.
    fn release(host: &mut GroupHost, n: u8) {
        let files = format!("/data/releases/trees/{}", digest(n).file_name()).into();
        host.release(target(n), Policy::default(), files, &View::default(), 1);
    }

    /// For each kind of release a group uses, a host that uses one (numbered as its digest).
    fn hosts_using_each_kind() -> Vec<(&'static str, GroupHost, u8)> {
        let journal = |change: &dyn Fn(&mut Journal)| {
            let mut journal = Journal::empty();
            change(&mut journal);
            journal
        };
        let waiting = {
            let mut host = start(Journal::empty(), 60_000);
            release(&mut host, 5);
            host
        };
        let queued = {
            let mut host = start(Journal::empty(), 0);
            release(&mut host, 6);
            release(&mut host, 7);
            host
        };
        vec![
            (
                "current",
                start(journal(&|j| j.current = Some(installed(1))), 0),
                1,
            ),
            (
                "last known good",
                start(journal(&|j| j.last_known_good = Some(installed(2))), 0),
                2,
            ),
            (
                "previous",
                start(journal(&|j| j.previous = Some(installed(3))), 0),
                3,
            ),
            (
                "in flight",
                start(
                    journal(&|j| {
                        j.in_flight = Some(InFlight {
                            deployment_id: "d-4".into(),
                            revision: "v4".into(),
                            digest: digest(4).to_string(),
                            bundle: "/data/releases/trees/x".into(),
                            reverts: None,
                            auto_revert: true,
                            dir: None,
                            step: PREPARE.into(),
                            started_ms: 0,
                            attempt: 0,
                            stopped: false,
                        });
                    }),
                    0,
                ),
                4,
            ),
            ("target waiting for its turn", waiting, 5),
            ("release queued after the run", queued, 7),
        ]
    }

    #[test]
    fn every_kind_of_release_in_use_stays_in_the_cache() {
        let mut removed = Vec::new();
        for (kind, host, n) in hosts_using_each_kind() {
            let dir = tempfile::tempdir().expect("tempdir");
            let cache = ReleaseCache::new(dir.path());
            for digest in [digest(n), digest(9)] {
                std::fs::create_dir_all(cache.tree_path(&digest)).expect("tree");
            }
            cache.holds("web", in_use(&host), 0);
            cache.clean().expect("clean");
            if !cache.has_tree(&digest(n)) {
                removed.push(kind);
            }
            assert!(
                !cache.has_tree(&digest(9)),
                "{kind}: a release not in use stayed"
            );
        }
        assert!(removed.is_empty(), "removed while in use: {removed:?}");
    }

    #[test]
    fn a_bad_policy_is_refused_with_the_file_and_key() {
        let tree = bundle(Some("rollout:\n  max_paralel: 2\n"));
        let error = release_policy(None, tree.path(), &Policy::default()).expect_err("refused");
        let text = error.to_string();
        assert!(
            text.starts_with("the bundle's shoal.yaml") && text.contains("max_paralel"),
            "{text}"
        );
    }
}
