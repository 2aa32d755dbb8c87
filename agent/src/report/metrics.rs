//! The agent's Prometheus metrics (OpenMetrics text via `prometheus-client`): deployments by
//! group and result, hook durations by event, the current revision, refusals by reason, and
//! channel polls and errors.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    poll_errors: Family<GroupLabels, Counter>,
    unreadable_names: Family<GroupLabels, Counter>,
    ignored_halts: Family<GroupLabels, Counter>,
    gossip_dropped: Family<DropLabels, Counter>,
    duplicate_ids: Gauge,
}

/// Why a gossip datagram was dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
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
        let gossip_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "gossip_dropped_datagrams",
            "Gossip datagrams dropped, by reason (forged, unknown_key, short, version, replayed, stale, early, before_start, undecodable, too_large)",
            gossip_dropped.clone(),
        );
        let duplicate_ids = Gauge::default();
        registry.register(
            "mesh_duplicate_node_ids",
            "Node ids that several live hosts gossip under, as this host sees the mesh (each needs its own node.id)",
            duplicate_ids.clone(),
        );
        Self {
            ignored_halts,
            gossip_dropped,
            duplicate_ids,
            registry: Arc::new(registry),
            deployments,
            hook_seconds,
            revision,
            current: Arc::default(),
            refusals,
            polls,
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
        if !ok {
            self.poll_errors.get_or_create(&labels).inc();
        }
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
