//! What this host gossips for people to watch (`g:<group>:live`): its part in each group's
//! deployment as its own status shows it (event, canary mark, times, a failure's output), so
//! the fleet page and `shoal fleet` on any host show every host as it goes. No host decides
//! anything from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use shoal_shared::fleet::live_of;
use shoal_shared::gossip::Live;
use tokio::task::JoinHandle;

use crate::coordinate::Mesh;
use crate::report::Board;

/// Publishes each group's [`Live`] whenever the board changes it, until aborted.
pub(super) fn spawn(board: Board, mesh: Arc<Mesh>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changed = board.subscribe();
        let mut published: BTreeMap<String, Option<Live>> = BTreeMap::new();
        loop {
            let status = board.snapshot();
            let mut now: BTreeMap<String, Option<Live>> = status
                .groups
                .iter()
                .map(|g| (g.name.clone(), live_of(g)))
                .collect();
            // A group gone (a reload removed it) is deleted once.
            for gone in published.keys().filter(|g| !now.contains_key(*g)) {
                mesh.publish_live(gone, None).await;
            }
            for (group, live) in &now {
                if published.get(group) != Some(live) {
                    mesh.publish_live(group, live.as_ref()).await;
                }
            }
            published = std::mem::take(&mut now);
            if changed.changed().await.is_err() {
                return;
            }
        }
    })
}
