//! The status board: the runtime writes each group's state here as it changes, and the status
//! endpoint reads a snapshot. Deployment records on disk become the summaries it serves.

use std::sync::{Arc, Mutex, PoisonError};

use shoal_shared::status::{DeploymentSummary, EventSummary, GroupStatus, NodeInfo, NodeStatus};
use shoal_shared::time::format_rfc3339;
use tokio::sync::watch;

use crate::execute::deployment::DeploymentRecord;

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Mutex<NodeStatus>>,
    changed_tx: Arc<watch::Sender<()>>,
}

impl Board {
    /// A board for `node` with `groups` in their starting state.
    pub fn new(node: NodeInfo, groups: Vec<GroupStatus>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(NodeStatus { node, groups })),
            changed_tx: Arc::new(watch::Sender::new(())),
        }
    }

    /// Changes the state of `group` (nothing if there is no such group).
    pub fn update(&self, group: &str, change: impl FnOnce(&mut GroupStatus)) {
        let mut status = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = status.groups.iter_mut().find(|g| g.name == group) {
            change(entry);
        }
        drop(status);
        self.changed_tx.send_replace(());
    }

    /// Adds `group` at the end (a reload), or replaces the group of that name.
    pub fn add(&self, group: GroupStatus) {
        let mut status = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match status.groups.iter_mut().find(|g| g.name == group.name) {
            Some(entry) => *entry = group,
            None => status.groups.push(group),
        }
        drop(status);
        self.changed_tx.send_replace(());
    }

    /// Removes the group called `name` (a reload).
    pub fn remove(&self, name: &str) {
        let mut status = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        status.groups.retain(|g| g.name != name);
        drop(status);
        self.changed_tx.send_replace(());
    }

    /// Wakes on every update (for a one-line summary to systemd, say).
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed_tx.subscribe()
    }

    /// One line for `STATUS=`: each group's phase and revision, e.g.
    /// `web: deploying v2.0.0 (BeforeInstall); api: idle on v1.0.0`.
    pub fn summary_line(&self) -> String {
        let status = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let parts: Vec<String> = status
            .groups
            .iter()
            .map(|g| {
                let running = g.current_revision.as_deref().unwrap_or("nothing");
                match (&g.target_revision, &g.current_event) {
                    (Some(target), Some(event)) => {
                        format!("{}: {} {target} ({event})", g.name, g.phase.as_str())
                    }
                    (Some(target), None) => format!("{}: {} {target}", g.name, g.phase.as_str()),
                    _ => format!("{}: {} on {running}", g.name, g.phase.as_str()),
                }
            })
            .collect();
        parts.join("; ")
    }

    /// The node's status now; `ready` once every group has checked its channel (or left it to
    /// its pollers).
    pub fn snapshot(&self) -> NodeStatus {
        let mut status = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        status.node.ready = status.groups.iter().all(GroupStatus::has_checked);
        status
    }
}

/// Shows `event` as the group's current lifecycle event: since now, when it is another one.
pub fn at_event(group: &mut GroupStatus, event: Option<&str>) {
    if group.current_event.as_deref() != event {
        group.current_event = event.map(str::to_owned);
        group.event_since = event.map(|_| crate::clock::now_rfc3339());
    }
}

/// A time in milliseconds since the epoch as RFC 3339.
pub fn rfc3339_ms(ms: u64) -> String {
    format_rfc3339(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
}

/// The summary of a deployment record kept in the directory named `id`.
pub fn summarize(id: &str, record: &DeploymentRecord) -> DeploymentSummary {
    DeploymentSummary {
        id: id.to_owned(),
        group: record.group.clone(),
        revision: record.revision.clone(),
        previous_revision: record.previous_revision.clone(),
        reverts: record.reverts.clone(),
        result: record.status.as_str().to_owned(),
        started: rfc3339_ms(record.started_at_ms),
        finished: record.finished_at_ms.map(rfc3339_ms),
        error: record.error.clone(),
        events: record
            .events
            .iter()
            .map(|event| EventSummary {
                name: event.name.clone(),
                status: event.status.as_str().to_owned(),
                duration_ms: event.duration_ms,
                exit_code: event.scripts.last().and_then(|s| s.exit_code),
                message: event.message.clone(),
            })
            .collect(),
    }
}
