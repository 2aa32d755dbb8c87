//! The change notifier: a task that bumps a counter whenever a peer's values or liveness
//! change, so the agent re-plans then and not on every heartbeat.
//!
//! chitchat's live-nodes watcher fires at once when a live node's values change or the live set
//! changes, but says nothing about dead nodes (whose last values still arrive for a while) nor
//! about nodes it forgets; so the task also compares a fingerprint once per gossip interval.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, Version};
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// What a change is measured against: each peer generation, whether it is alive, and its
/// newest version.
type Fingerprint = Vec<(ChitchatId, bool, Version)>;

/// The running notifier.
pub(super) struct ChangesHandle {
    stop_tx: oneshot::Sender<()>,
    join: JoinHandle<()>,
}

impl ChangesHandle {
    /// Stops the task and waits for it.
    pub(super) async fn stop(self) {
        let _ = self.stop_tx.send(());
        let _ = self.join.await;
    }
}

/// Starts the notifier; `changes_tx` counts the changes.
pub(super) fn spawn_changes(
    chitchat: Arc<Mutex<Chitchat>>,
    interval: Duration,
    changes_tx: watch::Sender<u64>,
) -> ChangesHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = Changes {
        chitchat,
        interval,
        changes_tx,
        last: Fingerprint::new(),
    };
    ChangesHandle {
        stop_tx,
        join: tokio::spawn(task.run(stop_rx)),
    }
}

struct Changes {
    chitchat: Arc<Mutex<Chitchat>>,
    interval: Duration,
    changes_tx: watch::Sender<u64>,
    last: Fingerprint,
}

impl Changes {
    async fn run(mut self, mut stop_rx: oneshot::Receiver<()>) {
        let mut live_rx = self.chitchat.lock().await.live_nodes_watcher();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Stopped, or the mesh handle dropped without stopping.
                _ = &mut stop_rx => break,
                changed = live_rx.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
            self.check().await;
        }
    }

    async fn check(&mut self) {
        let now = fingerprint(&*self.chitchat.lock().await);
        if now != self.last {
            self.last = now;
            self.changes_tx
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }
}

/// Every peer generation (this node's own values are not a change to react to).
fn fingerprint(chitchat: &Chitchat) -> Fingerprint {
    let me = chitchat.self_chitchat_id();
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    chitchat
        .node_states()
        .iter()
        .filter(|(id, _)| *id != me)
        .map(|(id, state)| (id.clone(), live.contains(id), state.max_version()))
        .collect()
}
