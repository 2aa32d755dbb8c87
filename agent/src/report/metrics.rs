//! The agent's Prometheus metrics (OpenMetrics text via `prometheus-client`): deployments by
//! group and result, hook durations by event, the current revision, refusals by reason, and
//! channel polls and errors, counted as they happen; and the state at each scrape (halted,
//! health, rollout step and progress, promote pending, mesh members), read from the status
//! board, the fleet view and the planners (`encode_with`).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use shoal_shared::gossip::Step;
use shoal_shared::status::{FleetGroup, GroupStatus, Health};

use crate::coordinate::Flow;
use crate::report::notifications::{NotifyStats, TargetKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    group: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    group: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    group: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    group: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    group: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    group: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabels {
    state: String,
}

/// A gauge of seconds (timestamps, durations).
type Seconds = Gauge<f64, AtomicU64>;

/// The health states, each a series of `shoal_group_health` (one is 1).
const HEALTH_STATES: [Health; 4] = [
    Health::None,
    Health::Unknown,
    Health::Healthy,
    Health::Unhealthy,
];

/// The rollout steps, each a series of `shoal_rollout_step` (one is 1 while there is a
/// rollout).
const STEPS: [Step; 6] = [
    Step::Waiting,
    Step::Running,
    Step::Done,
    Step::Failed,
    Step::Reverting,
    Step::Reverted,
];

/// Where a group's rollout stands on this host, from its planner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutGauges {
    /// Its canaries are healthy and it waits for `shoal promote`.
    pub promote_pending: bool,
    /// When it last progressed (ms since the epoch), while one goes on and is not halted.
    pub last_progress_ms: Option<u64>,
    /// Its policy's `progress_deadline`.
    pub progress_deadline: Option<Duration>,
}

/// One group's state at a scrape.
pub struct GroupGauges<'a> {
    /// What the status board shows of it.
    pub status: &'a GroupStatus,
    /// The group as the fleet view sees it.
    pub fleet: Option<&'a FleetGroup>,
    /// Its planner's rollout.
    pub rollout: RolloutGauges,
}

/// The state families, cleared and set at each scrape.
#[derive(Clone, Default)]
struct StateFamilies {
    halted: Family<GroupLabels, Gauge>,
    health: Family<StateLabels, Gauge>,
    step: Family<StepLabels, Gauge>,
    promote_pending: Family<GroupLabels, Gauge>,
    hosts_done: Family<GroupLabels, Gauge>,
    hosts: Family<GroupLabels, Gauge>,
    last_progress: Family<GroupLabels, Seconds>,
    progress_deadline: Family<GroupLabels, Seconds>,
    members: Family<MemberLabels, Gauge>,
}

impl StateFamilies {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "group_halted",
            "Whether the group's rollout is halted as this host knows it (1) or not (0)",
            self.halted.clone(),
        );
        registry.register(
            "group_health",
            "The group's health check on this host: 1 for its state (none: no check, unknown: not checked yet, healthy, unhealthy), 0 for the others",
            self.health.clone(),
        );
        registry.register(
            "rollout_step",
            "This host's step in the group's rollout: 1 for its step, 0 for the others; all 0 without a rollout",
            self.step.clone(),
        );
        registry.register(
            "rollout_promote_pending",
            "Whether the group's canaries are healthy and the rollout waits for `shoal promote` (1)",
            self.promote_pending.clone(),
        );
        registry.register(
            "rollout_hosts_done",
            "Members of the group done with its newest deployment, as this host sees the fleet",
            self.hosts_done.clone(),
        );
        registry.register(
            "rollout_hosts",
            "Members of the group, alive or dead, as this host sees the fleet",
            self.hosts.clone(),
        );
        registry.register(
            "rollout_last_progress_timestamp_seconds",
            "When the group's rollout last progressed as this host saw it (while one goes on, not halted)",
            self.last_progress.clone(),
        );
        registry.register(
            "rollout_progress_deadline_seconds",
            "The rollout's progress_deadline: how long it may go without progress",
            self.progress_deadline.clone(),
        );
        registry.register(
            "mesh_members",
            "Mesh members this host sees, by state (alive, dead), itself included",
            self.members.clone(),
        );
    }

    fn clear(&self) {
        self.halted.clear();
        self.health.clear();
        self.step.clear();
        self.promote_pending.clear();
        self.hosts_done.clear();
        self.hosts.clear();
        self.last_progress.clear();
        self.progress_deadline.clear();
        self.members.clear();
    }

    fn set(&self, group: &GroupGauges<'_>) {
        let name = &group.status.name;
        let labels = GroupLabels {
            group: name.clone(),
        };
        let state = |state: &str| StateLabels {
            group: name.clone(),
            state: state.to_owned(),
        };
        let rollout = group.status.rollout.as_ref();
        let halted = rollout.is_some_and(|r| r.halted.is_some())
            || group.fleet.is_some_and(|f| f.halted.is_some());
        self.halted.get_or_create(&labels).set(i64::from(halted));
        for health in HEALTH_STATES {
            let on = i64::from(group.status.health == health);
            self.health.get_or_create(&state(health.as_str())).set(on);
        }
        for step in STEPS.map(Step::as_str) {
            let on = i64::from(rollout.is_some_and(|r| r.step == step));
            let labels = StepLabels {
                group: name.clone(),
                step: step.to_owned(),
            };
            self.step.get_or_create(&labels).set(on);
        }
        self.promote_pending
            .get_or_create(&labels)
            .set(i64::from(group.rollout.promote_pending));
        if let Some(fleet) = group.fleet {
            self.hosts_done
                .get_or_create(&labels)
                .set(count(fleet.done));
            self.hosts.get_or_create(&labels).set(count(fleet.total));
        }
        if let Some(ms) = group.rollout.last_progress_ms {
            #[allow(clippy::cast_precision_loss)] // ms since the epoch: exact below 2^53
            self.last_progress
                .get_or_create(&labels)
                .set(ms as f64 / 1000.0);
        }
        if let Some(deadline) = group.rollout.progress_deadline {
            self.progress_deadline
                .get_or_create(&labels)
                .set(deadline.as_secs_f64());
        }
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Seconds since the epoch, now.
fn now_seconds() -> f64 {
    #[allow(clippy::cast_precision_loss)] // ms since the epoch: exact below 2^53
    let seconds = crate::clock::now_ms() as f64 / 1000.0;
    seconds
}

fn hook_histogram() -> Histogram {
    // 0.1 s … about 27 min.
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

/// Every metric of the agent; cheap to clone (the families are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    deployments: Family<ResultLabels, Counter>,
    hook_seconds: Family<EventLabels, Histogram, fn() -> Histogram>,
    revision: Family<RevisionLabels, Gauge>,
    current: Arc<Mutex<Vec<RevisionLabels>>>,
    refusals: Family<ReasonLabels, Counter>,
    polls: Family<GroupLabels, Counter>,
    pollers: Family<GroupLabels, Gauge>,
    poll_errors: Family<GroupLabels, Counter>,
    unreadable_names: Family<GroupLabels, Counter>,
    ignored_halts: Family<GroupLabels, Counter>,
    gossip_dropped: Family<DropLabels, Counter>,
    gossip_datagrams: Family<DirectionLabels, Counter>,
    gossip_bytes: Family<DirectionLabels, Counter>,
    notifications: Family<NotifyLabels, Counter>,
    duplicate_ids: Gauge,
    share: ShareMetrics,
    last_poll_success: Family<GroupLabels, Seconds>,
    last_deploy_success: Family<GroupLabels, Seconds>,
    state: StateFamilies,
    /// One scrape at a time sets the state families and encodes them.
    scrape: Arc<Mutex<()>>,
}

/// What this host serves its peers and fetches from them.
#[derive(Clone, Default)]
struct ShareMetrics {
    requests: Family<ShareLabels, Counter>,
    upload_bytes: Counter,
    fetched_bytes: Family<SourceLabels, Counter>,
    bad_peers: Family<ReasonLabels, Counter>,
}

/// What a peer's request came to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShareLabels {
    result: String,
}

/// Where a group's release bytes came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    group: String,
    source: String,
}

/// Why a gossip datagram was dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
}

/// Which way gossip went: `sent` or `received`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// A notification target's kind and how its deliveries ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifyLabels {
    target: String,
    result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("shoal");
        let deployments = Family::<ResultLabels, Counter>::default();
        registry.register(
            "deployments",
            "Deployments that ended on this host, by group and result",
            deployments.clone(),
        );
        let hook_seconds =
            Family::<EventLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                hook_histogram,
            );
        registry.register(
            "hook_duration_seconds",
            "How long lifecycle events took, by group and event",
            hook_seconds.clone(),
        );
        let revision = Family::<RevisionLabels, Gauge>::default();
        registry.register(
            "revision_info",
            "The revision each group runs on this host (value 1)",
            revision.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "release_refusals",
            "Releases refused, by group and reason",
            refusals.clone(),
        );
        let polls = Family::<GroupLabels, Counter>::default();
        registry.register("channel_polls", "Channel checks, by group", polls.clone());
        let pollers = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "channel_poller",
            "1 while this host is one of the few of the group that poll a remote channel's origin (the others look when gossip announces a release)",
            pollers.clone(),
        );
        let poll_errors = Family::<GroupLabels, Counter>::default();
        registry.register(
            "channel_poll_errors",
            "Channel checks that failed, by group",
            poll_errors.clone(),
        );
        let unreadable_names = Family::<GroupLabels, Counter>::default();
        registry.register(
            "channel_unreadable_names",
            "Object names a store channel skipped because they cannot be read, by group",
            unreadable_names.clone(),
        );
        let ignored_halts = Family::<GroupLabels, Counter>::default();
        registry.register(
            "ignored_halts",
            "Halts from peers not acted on (from a node outside the deployment, or of a release already complete here), by group",
            ignored_halts.clone(),
        );
        let notifications = Family::<NotifyLabels, Counter>::default();
        registry.register(
            "notifications",
            "Rollout events this host sent (notify:), by target (webhook, command) and result (delivered, failed after its last attempt, dropped from a full queue)",
            notifications.clone(),
        );
        let gossip_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "gossip_dropped_datagrams",
            "Gossip datagrams dropped, by reason (forged, unknown_key, short, version, replayed, stale, early, before_start, undecodable, too_large)",
            gossip_dropped.clone(),
        );
        let gossip_datagrams = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "gossip_datagrams",
            "Sealed gossip datagrams, by direction (sent, received: every one that arrived, dropped ones included); absent when the mesh is insecure",
            gossip_datagrams.clone(),
        );
        let gossip_bytes = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "gossip_bytes",
            "Bytes of sealed gossip datagrams (UDP payloads), by direction; absent when the mesh is insecure",
            gossip_bytes.clone(),
        );
        let duplicate_ids = Gauge::default();
        registry.register(
            "mesh_duplicate_node_ids",
            "Node ids that several live hosts gossip under, as this host sees the mesh (each needs its own node.id)",
            duplicate_ids.clone(),
        );
        let share = ShareMetrics::default();
        registry.register(
            "share_requests",
            "Requests from peers for release bytes, by result (served, busy, missing, refused, stranger: a connection that did not hold the cluster key, failed: cut short)",
            share.requests.clone(),
        );
        registry.register(
            "share_upload_bytes",
            "Release bytes served to peers",
            share.upload_bytes.clone(),
        );
        registry.register(
            "release_fetched_bytes",
            "Release bytes fetched that verified, by group and source (peer, origin)",
            share.fetched_bytes.clone(),
        );
        registry.register(
            "share_bad_peers",
            "Peers dropped for a release because what they served failed verification or made no sense, by group and reason",
            share.bad_peers.clone(),
        );
        let last_poll_success = Family::<GroupLabels, Seconds>::default();
        registry.register(
            "channel_last_success_timestamp_seconds",
            "When the group's channel was last checked without error",
            last_poll_success.clone(),
        );
        let last_deploy_success = Family::<GroupLabels, Seconds>::default();
        registry.register(
            "deployment_last_success_timestamp_seconds",
            "When a deployment of the group last succeeded on this host (since the agent started)",
            last_deploy_success.clone(),
        );
        registry.register(
            "build",
            "The shoal build (value 1)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let state = StateFamilies::default();
        state.register(&mut registry);
        Self {
            last_poll_success,
            last_deploy_success,
            state,
            scrape: Arc::default(),
            ignored_halts,
            gossip_dropped,
            gossip_datagrams,
            gossip_bytes,
            notifications,
            duplicate_ids,
            share,
            registry: Arc::new(registry),
            deployments,
            hook_seconds,
            revision,
            current: Arc::default(),
            refusals,
            polls,
            pollers,
            poll_errors,
            unreadable_names,
        }
    }

    /// A deployment of `group` ended with `result` (`succeeded`, `failed`, `interrupted`, …).
    pub fn deployment_ended(&self, group: &str, result: &str) {
        let labels = ResultLabels {
            group: group.to_owned(),
            result: result.to_owned(),
        };
        self.deployments.get_or_create(&labels).inc();
        if result == "succeeded" {
            let group = GroupLabels {
                group: group.to_owned(),
            };
            self.last_deploy_success
                .get_or_create(&group)
                .set(now_seconds());
        }
    }

    /// A lifecycle event of `group` took `seconds`.
    pub fn event_took(&self, group: &str, event: &str, seconds: f64) {
        let labels = EventLabels {
            group: group.to_owned(),
            event: event.to_owned(),
        };
        self.hook_seconds.get_or_create(&labels).observe(seconds);
    }

    /// `group` now runs `revision` (or nothing).
    pub fn set_revision(&self, group: &str, revision: Option<&str>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.retain(|old| {
            if old.group == group {
                self.revision.remove(old);
                false
            } else {
                true
            }
        });
        if let Some(revision) = revision {
            let labels = RevisionLabels {
                group: group.to_owned(),
                revision: revision.to_owned(),
            };
            self.revision.get_or_create(&labels).set(1);
            current.push(labels);
        }
    }

    /// A release of `group` was refused for `reason` (a refusal's stable kind).
    pub fn refused(&self, group: &str, reason: &str) {
        let labels = ReasonLabels {
            group: group.to_owned(),
            reason: reason.to_owned(),
        };
        self.refusals.get_or_create(&labels).inc();
    }

    /// `group`'s channel was checked; `ok` is false when the check failed.
    pub fn polled(&self, group: &str, ok: bool) {
        let labels = GroupLabels {
            group: group.to_owned(),
        };
        self.polls.get_or_create(&labels).inc();
        if ok {
            self.last_poll_success
                .get_or_create(&labels)
                .set(now_seconds());
        } else {
            self.poll_errors.get_or_create(&labels).inc();
        }
    }

    /// Whether this host polls `group`'s channel origin.
    pub fn poller(&self, group: &str, polls: bool) {
        let labels = GroupLabels {
            group: group.to_owned(),
        };
        self.pollers.get_or_create(&labels).set(i64::from(polls));
    }

    /// A peer's request for release bytes came to `result`.
    pub fn share_request(&self, result: &str) {
        let labels = ShareLabels {
            result: result.to_owned(),
        };
        self.share.requests.get_or_create(&labels).inc();
    }

    /// `bytes` of a release were served to a peer.
    pub fn share_uploaded(&self, bytes: u64) {
        self.share.upload_bytes.inc_by(bytes);
    }

    /// `bytes` of a release of `group` that verified came from `source` (`peer`, `origin`).
    pub fn release_fetched(&self, group: &str, source: &str, bytes: u64) {
        let labels = SourceLabels {
            group: group.to_owned(),
            source: source.to_owned(),
        };
        self.share
            .fetched_bytes
            .get_or_create(&labels)
            .inc_by(bytes);
    }

    /// A peer was dropped for a release of `group`: what it served failed for `reason`.
    pub fn bad_peer(&self, group: &str, reason: &str) {
        let labels = ReasonLabels {
            group: group.to_owned(),
            reason: reason.to_owned(),
        };
        self.share.bad_peers.get_or_create(&labels).inc();
    }

    /// `group`'s store channel skipped `count` object names it cannot read.
    pub fn unreadable_names(&self, group: &str, count: usize) {
        let labels = GroupLabels {
            group: group.to_owned(),
        };
        self.unreadable_names
            .get_or_create(&labels)
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// `group`'s planner did not act on `count` more halts from peers.
    pub fn ignored_halts(&self, group: &str, count: usize) {
        let labels = GroupLabels {
            group: group.to_owned(),
        };
        self.ignored_halts
            .get_or_create(&labels)
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// Makes every group's series exist (at zero) before anything happened, so dashboards and
    /// alerts see the group from the start.
    pub fn register_group(&self, group: &str) {
        let labels = GroupLabels {
            group: group.to_owned(),
        };
        drop(self.polls.get_or_create(&labels));
        drop(self.poll_errors.get_or_create(&labels));
        drop(self.unreadable_names.get_or_create(&labels));
        drop(self.ignored_halts.get_or_create(&labels));
    }

    /// How many node ids several live hosts gossip under now.
    pub fn set_duplicate_ids(&self, count: usize) {
        self.duplicate_ids
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The mesh's counts of dropped gossip datagrams, by reason, as they are now.
    pub fn set_gossip_dropped(&self, counts: &[(&'static str, u64)]) {
        for (reason, count) in counts {
            let labels = DropLabels {
                reason: (*reason).to_owned(),
            };
            self.gossip_dropped
                .get_or_create(&labels)
                .inner()
                .store(*count, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What the sealed gossip socket sent and received so far.
    pub fn set_gossip_traffic(&self, sent: Flow, received: Flow) {
        for (direction, flow) in [("sent", sent), ("received", received)] {
            let labels = DirectionLabels { direction };
            let store = |family: &Family<DirectionLabels, Counter>, value: u64| {
                family
                    .get_or_create(&labels)
                    .inner()
                    .store(value, std::sync::atomic::Ordering::Relaxed);
            };
            store(&self.gossip_datagrams, flow.datagrams);
            store(&self.gossip_bytes, flow.bytes);
        }
    }

    /// The notifications' counts as they are now.
    pub fn set_notifications(&self, stats: &NotifyStats) {
        for kind in [TargetKind::Webhook, TargetKind::Command] {
            let counts = stats.of(kind);
            for (result, n) in [
                ("delivered", counts.delivered),
                ("failed", counts.failed),
                ("dropped", counts.dropped),
            ] {
                let labels = NotifyLabels {
                    target: kind.as_str().to_owned(),
                    result: result.to_owned(),
                };
                self.notifications
                    .get_or_create(&labels)
                    .inner()
                    .store(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The OpenMetrics text exposition with the state of `groups` and of the mesh's members
    /// (`alive`, `dead`) as they are now.
    pub fn encode_with(&self, groups: &[GroupGauges<'_>], members: (usize, usize)) -> String {
        let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.state.clear();
        for group in groups {
            self.state.set(group);
        }
        for (state, n) in [("alive", members.0), ("dead", members.1)] {
            let labels = MemberLabels {
                state: state.to_owned(),
            };
            self.state.members.get_or_create(&labels).set(count(n));
        }
        self.encode()
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_gossip_is_shown_as_counted_by_the_mesh() {
        let metrics = Metrics::new();
        metrics.set_gossip_dropped(&[("forged", 3), ("replayed", 1)]);
        metrics.set_gossip_dropped(&[("forged", 5), ("replayed", 1)]);
        let text = metrics.encode();
        assert!(
            text.contains("shoal_gossip_dropped_datagrams_total{reason=\"forged\"} 5"),
            "{text}"
        );
        assert!(text.contains("shoal_gossip_dropped_datagrams_total{reason=\"replayed\"} 1"));
    }

    #[test]
    fn the_text_carries_each_family_with_its_labels() {
        let metrics = Metrics::new();
        metrics.register_group("web");
        metrics.deployment_ended("web", "succeeded");
        metrics.event_took("web", "AfterInstall", 0.25);
        metrics.set_revision("web", Some("v1.0.0"));
        metrics.set_revision("web", Some("v1.1.0"));
        metrics.refused("web", "unsigned_tag");
        metrics.polled("web", false);
        let text = metrics.encode();
        for line in [
            "shoal_deployments_total{group=\"web\",result=\"succeeded\"} 1",
            "shoal_hook_duration_seconds_count{group=\"web\",event=\"AfterInstall\"} 1",
            "shoal_revision_info{group=\"web\",revision=\"v1.1.0\"} 1",
            "shoal_release_refusals_total{group=\"web\",reason=\"unsigned_tag\"} 1",
            "shoal_channel_polls_total{group=\"web\"} 1",
            "shoal_channel_poll_errors_total{group=\"web\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("v1.0.0"),
            "old revision still shown:\n{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
