//! `GET /v1/fleet`: what this host publishes, read straight from its groups' planners, and
//! what gossip shows of every other node, put together by the pure
//! [`shoal_shared::fleet::assemble`]. An agent without a mesh shows itself alone.

use shoal_shared::fleet::{NodeView, assemble, live_of};
use shoal_shared::status::Fleet;

use super::state::ServerState;

/// Leaves out the output of failed scripts, for a reader who may not read hook output.
pub(super) fn hide_output(fleet: &mut Fleet) {
    for halt in fleet.groups.iter_mut().filter_map(|g| g.halted.as_mut()) {
        halt.output_hidden = !halt.output.is_empty();
        halt.output.clear();
    }
}

/// The fleet as this host sees it now (failed scripts' output included).
pub async fn fleet(state: &ServerState) -> Fleet {
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

/// This host, from its planners and its status: fresher than what gossip echoes back of it.
fn own_view(state: &ServerState) -> NodeView {
    let groups = state.groups.all();
    let status = state.board.snapshot();
    let values = groups
        .iter()
        .map(|(name, group)| {
            let mut values = group.values();
            values.live = status
                .groups
                .iter()
                .find(|g| g.name == *name)
                .and_then(live_of);
            (name.clone(), values)
        })
        .collect();
    NodeView {
        id: state.node.clone(),
        alive: true,
        groups: groups.into_iter().map(|(name, _)| name).collect(),
        values,
    }
}
