//! Telling what happens to each group's rollouts: after every change the mesh or this host's
//! status shows, the fleet view is compared with the last look at it; what happened goes into
//! the group's history, and the events this host is the sender of go out as notifications
//! (one host per event, so the fleet sends each once: see
//! [`shoal_shared::history::sender`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::history::{self, FleetEvent, sender};
use shoal_shared::status::Fleet;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::group::mesh_changed;
use crate::clock::now_rfc3339;
use crate::report::Notifications;
use crate::report::history::{Book, Histories};
use crate::report::http::{ServerState, fleet_view};

/// At most one look this often: a burst of gossip is one look.
const SPACING: Duration = Duration::from_millis(100);

/// How long after its start a host sends no event whose sender is chosen by who is alive (see
/// [`history::coordinated`]): until it has heard the mesh, its view of who is alive is not
/// the others'. Such events are kept, and sent after this if this host is still their sender.
const SETTLE: Duration = Duration::from_secs(3);

/// Keeps each group's history under `dir` up to date, until aborted.
pub(super) fn spawn(
    dir: PathBuf,
    state: Arc<ServerState>,
    histories: Histories,
    outbox: Notifications,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut board = state.board.subscribe();
        let mut mesh = state.mesh.as_ref().map(|m| m.changes());
        let mut chronicle = Chronicle {
            dir,
            state,
            histories,
            outbox,
            books: BTreeMap::new(),
            quiet: BTreeSet::new(),
            settled: Instant::now() + SETTLE,
            held: Vec::new(),
        };
        loop {
            chronicle.look().await;
            tokio::time::sleep(SPACING).await;
            let settle = (!chronicle.held.is_empty()).then_some(chronicle.settled);
            tokio::select! {
                changed = board.changed() => if changed.is_err() { return },
                () = mesh_changed(&mut mesh) => {}
                () = sleep_until_opt(settle) => {}
            }
        }
    })
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the task keeps between looks.
struct Chronicle {
    dir: PathBuf,
    state: Arc<ServerState>,
    histories: Histories,
    outbox: Notifications,
    /// Each group's book, read once.
    books: BTreeMap<String, Book>,
    /// Groups never looked at before (a new host, a group just added): their first look finds
    /// what happened before this host came, which is recorded but not sent.
    quiet: BTreeSet<String>,
    /// When this host has heard the mesh long enough to choose senders by who is alive.
    settled: Instant,
    /// Events whose sender is chosen by who is alive, seen before `settled`.
    held: Vec<FleetEvent>,
}

impl Chronicle {
    /// One look at every group of this host.
    async fn look(&mut self) {
        let fleet = fleet_view(&self.state).await;
        let settled = Instant::now() >= self.settled;
        if settled {
            for event in std::mem::take(&mut self.held) {
                self.send_if_ours(&event, &fleet);
            }
        }
        let status = self.state.board.snapshot();
        let groups: Vec<String> = status.groups.iter().map(|g| g.name.clone()).collect();
        let histories = &self.histories;
        self.books.retain(|group, _| {
            let kept = groups.contains(group);
            if !kept {
                histories.remove(group);
            }
            kept
        });
        for group in &status.groups {
            let name = &group.name;
            let first = !self.books.contains_key(name);
            if first && !Book::path(&self.dir, name).exists() {
                self.quiet.insert(name.clone());
            }
            let dir = self.dir.clone();
            let book = self.books.entry(name.clone()).or_insert_with(|| {
                let (book, broken) = Book::load(&dir, name);
                if let Some(why) = broken {
                    warn!(error = %why, "cannot read the group's history; starting it again");
                }
                book
            });
            let at = now_rfc3339();
            let events = history::events(name, &book.seen, &fleet, &at);
            let before = book.clone();
            for event in &events {
                book.history.record(event);
            }
            if let Some(v) = &group.verified {
                book.history.signed(&v.name, &v.signer);
            }
            book.seen = history::Seen::of(&fleet, name);
            let changed = *book != before;
            if changed || first {
                if let Err(e) = book.save(&dir, name) {
                    warn!(error = %e, "cannot write the group's history");
                }
                self.histories.set(book.history.clone());
            }
            let sends = !self.quiet.remove(name);
            for event in events {
                info!(
                    event = event.event.as_str(),
                    deployment.id = %event.deployment,
                    revision.id = %event.revision,
                    host = event.host.as_deref().unwrap_or(""),
                    by = event.by.as_deref().unwrap_or(""),
                    "rollout event"
                );
                if !sends {
                    continue;
                }
                if !settled && history::coordinated(&event, &fleet) {
                    self.held.push(event);
                } else {
                    self.send_if_ours(&event, &fleet);
                }
            }
        }
    }

    /// Sends `event` when this host is its sender in `fleet`.
    fn send_if_ours(&self, event: &FleetEvent, fleet: &Fleet) {
        if sender(event, fleet).as_deref() != Some(fleet.node.as_str()) {
            return;
        }
        info!(
            event = event.event.as_str(),
            deployment.id = %event.deployment,
            "rollout event sent"
        );
        self.outbox.send(&FleetEvent {
            node: fleet.node.clone(),
            ..event.clone()
        });
    }
}
