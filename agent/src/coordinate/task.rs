//! The change notifier: a task that bumps a counter whenever a peer's values or liveness
//! change, so the agent re-plans then and not on every heartbeat.
//!
//! Three sources, because each of chitchat's misses something: a key listener fires the moment a
//! peer's value lands (but not for deletions); the live-nodes watcher fires when the live set or
//! a live node's version changes (once per gossip round, when liveness is computed); and a
//! fingerprint of every peer generation (alive, version), compared once per gossip interval,
//! catches the rest (dead nodes' values, nodes forgotten). One change may bump the counter more
//! than once; receivers see the newest count.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, ListenerHandle, Version};
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::duplicates::Duplicates;
use super::heard::Heard;

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
    heard: Arc<Heard>,
    duplicates: Arc<Duplicates>,
) -> ChangesHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = Changes {
        chitchat,
        interval,
        changes_tx,
        last: Fingerprint::new(),
        heard,
        duplicates,
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
    /// Sampled every round: when each peer was last heard from.
    heard: Arc<Heard>,
    /// Found every round: node ids several live hosts gossip under.
    duplicates: Arc<Duplicates>,
}

impl Changes {
    async fn run(mut self, mut stop_rx: oneshot::Receiver<()>) {
        let (mut live_rx, _listener) = {
            let chitchat = self.chitchat.lock().await;
            (chitchat.live_nodes_watcher(), self.listen(&chitchat))
        };
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

    /// Bumps the counter from inside chitchat (under its lock: it only touches the counter)
    /// whenever a peer's key is set. Unsubscribed when the handle drops.
    fn listen(&self, chitchat: &Chitchat) -> ListenerHandle {
        let me = chitchat.self_chitchat_id().clone();
        let changes_tx = self.changes_tx.clone();
        chitchat.subscribe_event("", move |event| {
            if *event.node != me {
                bump(&changes_tx);
            }
        })
    }

    async fn check(&mut self) {
        let chitchat = self.chitchat.lock().await;
        self.heard.sample(&chitchat);
        self.duplicates.update(&chitchat);
        let now = fingerprint(&chitchat);
        drop(chitchat);
        if now != self.last {
            self.last = now;
            bump(&self.changes_tx);
        }
    }
}

fn bump(changes_tx: &watch::Sender<u64>) {
    changes_tx.send_modify(|count| *count = count.wrapping_add(1));
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
