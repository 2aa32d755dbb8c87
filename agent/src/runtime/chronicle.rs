//! Telling what happens to each group's rollouts: after every change the mesh or this host's
//! status shows, the fleet view is compared with the last look at it; what happened goes into
//! the group's history, and the events this host is the sender of go out as notifications
//! (one host per event, so the fleet sends each once: see
//! [`shoal_shared::history::sender`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::history::{self, FleetEvent, sender};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::group::mesh_changed;
use crate::clock::now_rfc3339;
use crate::report::history::{Book, Histories};
use crate::report::http::{ServerState, fleet_view};

/// At most one look this often: a burst of gossip is one look.
const SPACING: Duration = Duration::from_millis(100);

/// Where the events this host sends go.
pub(super) trait Outbox: Send + Sync {
    /// Sends `event` (never blocks).
    fn send(&self, event: &FleetEvent);
}

/// Keeps each group's history under `dir` up to date, until aborted.
pub(super) fn spawn(
    dir: PathBuf,
    state: Arc<ServerState>,
    histories: Histories,
    outbox: Option<Arc<dyn Outbox>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut books: BTreeMap<String, Book> = BTreeMap::new();
        let mut board = state.board.subscribe();
        let mut mesh = state.mesh.as_ref().map(|m| m.changes());
        loop {
            look(&dir, &state, &histories, outbox.as_deref(), &mut books).await;
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
    outbox: Option<&dyn Outbox>,
    books: &mut BTreeMap<String, Book>,
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
        let book = books.entry(name.clone()).or_insert_with(|| {
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
        for event in &events {
            book.history.record(event);
            let ours = sender(event, &fleet).as_deref() == Some(fleet.node.as_str());
            info!(
                event = event.event.as_str(),
                deployment.id = %event.deployment,
                revision.id = %event.revision,
                host = event.host.as_deref().unwrap_or(""),
                by = event.by.as_deref().unwrap_or(""),
                sent = ours,
                "rollout event"
            );
            if let (true, Some(outbox)) = (ours, outbox) {
                outbox.send(event);
            }
        }
        if let Some((revision, signer)) = signer {
            book.history.signed(&revision, &signer);
        }
        book.seen = seen;
        if *book != before
            && let Err(e) = book.save(dir, name)
        {
            warn!(error = %e, "cannot write the group's history");
        }
        histories.set(book.history.clone());
    }
}
