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
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::group::mesh_changed;
use crate::clock::now_rfc3339;
use crate::report::Notifications;
use crate::report::history::{Book, Histories};
use crate::report::http::{ServerState, fleet_view};

/// At most one look this often: a burst of gossip is one look.
const SPACING: Duration = Duration::from_millis(100);

/// Keeps each group's history under `dir` up to date, until aborted.
pub(super) fn spawn(
    dir: PathBuf,
    state: Arc<ServerState>,
    histories: Histories,
    outbox: Notifications,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut books: BTreeMap<String, Book> = BTreeMap::new();
        let mut quiet = BTreeSet::new();
        let mut board = state.board.subscribe();
        let mut mesh = state.mesh.as_ref().map(|m| m.changes());
        loop {
            look(&dir, &state, &histories, &outbox, &mut books, &mut quiet).await;
            tokio::time::sleep(SPACING).await;
            tokio::select! {
                changed = board.changed() => if changed.is_err() { return },
                () = mesh_changed(&mut mesh) => {}
            }
        }
    })
}

/// One look at every group of this host.
async fn look(
    dir: &std::path::Path,
    state: &ServerState,
    histories: &Histories,
    outbox: &Notifications,
    books: &mut BTreeMap<String, Book>,
    quiet: &mut BTreeSet<String>,
) {
    let fleet = fleet_view(state).await;
    let status = state.board.snapshot();
    let groups: Vec<String> = status.groups.iter().map(|g| g.name.clone()).collect();
    books.retain(|group, _| {
        let kept = groups.contains(group);
        if !kept {
            histories.remove(group);
        }
        kept
    });
    for group in &status.groups {
        let name = &group.name;
        let first = !books.contains_key(name);
        let book = books.entry(name.clone()).or_insert_with(|| {
            // A group this host never looked at (a new host, a group just added): its first
            // look finds what happened before it came, which is recorded but not sent.
            if !Book::path(dir, name).exists() {
                quiet.insert(name.clone());
            }
            let (book, broken) = Book::load(dir, name);
            if let Some(why) = broken {
                warn!(error = %why, "cannot read the group's history; starting it again");
            }
            book
        });
        let at = now_rfc3339();
        let events = history::events(name, &book.seen, &fleet, &at);
        let seen = history::Seen::of(&fleet, name);
        let signer = group
            .verified
            .as_ref()
            .map(|v| (v.name.clone(), v.signer.clone()));
        let before = book.clone();
        let sends = !quiet.remove(name);
        for event in &events {
            book.history.record(event);
            let ours = sends && sender(event, &fleet).as_deref() == Some(fleet.node.as_str());
            info!(
                event = event.event.as_str(),
                deployment.id = %event.deployment,
                revision.id = %event.revision,
                host = event.host.as_deref().unwrap_or(""),
                by = event.by.as_deref().unwrap_or(""),
                sent = ours,
                "rollout event"
            );
            if ours {
                outbox.send(&FleetEvent {
                    node: fleet.node.clone(),
                    ..event.clone()
                });
            }
        }
        if let Some((revision, signer)) = signer {
            book.history.signed(&revision, &signer);
        }
        book.seen = seen;
        if *book == before && !first {
            continue;
        }
        if let Err(e) = book.save(dir, name) {
            warn!(error = %e, "cannot write the group's history");
        }
        histories.set(book.history.clone());
    }
}
