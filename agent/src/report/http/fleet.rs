//! `GET /v1/fleet`: what this host publishes, read straight from its groups' planners, and
//! what gossip shows of every other node, put together by the pure
//! [`shoal_shared::fleet::assemble`]. An agent without a mesh shows itself alone.

use std::sync::{Mutex, MutexGuard, PoisonError};

use shoal_shared::fleet::{GroupValues, NodeView, assemble};
use shoal_shared::rollout::Planner;
use shoal_shared::status::Fleet;

use super::server::ServerState;
use crate::coordinate::{NodeSnapshot, Published};

/// The fleet as this host sees it now.
pub(super) async fn fleet(state: &ServerState) -> Fleet {
    let peers = match &state.mesh {
        Some(mesh) => mesh.fleet().await,
        None => Vec::new(),
    };
    let mut views = vec![own_view(state)];
    views.extend(
        peers
            .into_iter()
            .filter(|peer| peer.node != state.node)
            .map(peer_view),
    );
    assemble(&state.node, views)
}

/// This host, from its planners: fresher than what gossip echoes back of it.
fn own_view(state: &ServerState) -> NodeView {
    let values = state
        .groups
        .iter()
        .map(|(name, control)| (name.clone(), published(&lock(&control.planner))))
        .collect();
    NodeView {
        id: state.node.clone(),
        alive: true,
        groups: state.groups.iter().map(|(name, _)| name.clone()).collect(),
        values,
    }
}

/// What a planner publishes to the group.
fn published(planner: &Planner) -> GroupValues {
    let memory = planner.memory();
    GroupValues {
        state: planner.published().cloned(),
        halt: memory.halt.clone(),
        resume: memory.resume.clone(),
        promote: memory.promote.clone(),
    }
}

fn peer_view(peer: NodeSnapshot) -> NodeView {
    let values = peer
        .values
        .into_iter()
        .map(|(group, values)| (group, values_of(values)))
        .collect();
    NodeView {
        id: peer.node,
        alive: peer.alive,
        groups: peer.groups,
        values,
    }
}

fn values_of(published: Published) -> GroupValues {
    let Published {
        state,
        halt,
        resume,
        promote,
    } = published;
    GroupValues {
        state,
        halt,
        resume,
        promote,
    }
}

/// A planner's lock; a panic elsewhere while it was held leaves the planner readable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
