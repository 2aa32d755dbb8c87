//! `GET /v1/fleet`: what this host publishes, read straight from its groups' planners, and
//! what gossip shows of every other node, put together by the pure
//! [`shoal_shared::fleet::assemble`]. An agent without a mesh shows itself alone.

use shoal_shared::fleet::{NodeView, assemble};
use shoal_shared::status::Fleet;

use super::state::ServerState;

/// The fleet as this host sees it now.
pub(super) async fn fleet(state: &ServerState) -> Fleet {
    let peers = match &state.mesh {
        Some(mesh) => mesh.fleet().await,
        None => Vec::new(),
    };
    let mut views = vec![own_view(state)];
    views.extend(peers.into_iter().filter(|peer| peer.id != state.node));
    let mut fleet = assemble(&state.node, views);
    if let Some(mesh) = &state.mesh {
        let duplicates = mesh.duplicates();
        for node in &mut fleet.nodes {
            node.duplicate = duplicates.contains_key(&node.id);
        }
    }
    fleet
}

/// This host, from its planners: fresher than what gossip echoes back of it.
fn own_view(state: &ServerState) -> NodeView {
    let groups = state.groups.all();
    let values = groups
        .iter()
        .map(|(name, group)| (name.clone(), group.values()))
        .collect();
    NodeView {
        id: state.node.clone(),
        alive: true,
        groups: groups.into_iter().map(|(name, _)| name).collect(),
        values,
    }
}
