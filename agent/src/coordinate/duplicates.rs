//! Node ids gossiped by more than one live host: two hosts cloned from one image, or a second
//! agent given another host's `node.id`. Each is a different chitchat node (its own generation
//! and address) under the same id, so peers would show one of them and the rollout would count
//! them as one. Found once per gossip round; the planner lets neither take a slot while it
//! lasts, and status, fleet, `/ready` and metrics say so.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use chitchat::Chitchat;
use tracing::{error, info};

/// The node ids gossiped by more than one live host, with those hosts' gossip addresses.
#[derive(Default)]
pub(super) struct Duplicates {
    found: Mutex<BTreeMap<String, BTreeSet<SocketAddr>>>,
}

impl Duplicates {
    /// Looks again at who is alive: live generations of one node id at different addresses
    /// (a restart at the same address is the same host). Logs each id when it turns up and
    /// when it is gone.
    pub(super) fn update(&self, chitchat: &Chitchat) {
        let me = chitchat.self_chitchat_id();
        let mut hosts: Vec<(&str, SocketAddr)> = chitchat
            .live_nodes()
            .chain([me])
            .map(|id| (&*id.node_id, id.gossip_advertise_addr))
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        let by_id: BTreeMap<String, BTreeSet<SocketAddr>> = hosts
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
            .map(|run| {
                (
                    run[0].0.to_owned(),
                    run.iter().map(|(_, addr)| *addr).collect(),
                )
            })
            .collect();
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, addrs) in &by_id {
            if !found.contains_key(id) {
                let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                error!(node = %id, gossip.addrs = ?addrs, "several live hosts gossip under one node id; none of them takes a rollout slot until each has its own node.id");
            }
        }
        for id in found.keys() {
            if !by_id.contains_key(id) {
                info!(node = %id, "node id no longer gossiped by several hosts");
            }
        }
        *found = by_id;
    }

    /// The duplicated node ids and the gossip addresses of the hosts using each.
    pub(super) fn get(&self) -> BTreeMap<String, BTreeSet<SocketAddr>> {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
