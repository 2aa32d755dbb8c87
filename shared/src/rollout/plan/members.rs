//! The group's members as this host knows them: who they are and when each was last seen
//! alive, whether it sees a majority of them, and the hash by which members check that they
//! all know the same ones.

use sha2::{Digest, Sha256};

use super::Planner;
use super::types::{Millis, View};

impl Planner {
    /// Whether it sees a majority of the members it knows alive (itself included).
    pub(super) fn sees_majority(&self, view: &View<'_>) -> bool {
        let (alive, members) = self.alive_members(view);
        alive * 2 > members
    }

    /// Members it sees alive and members it knows, itself included in both.
    pub(super) fn alive_members(&self, view: &View<'_>) -> (usize, usize) {
        let alive = view
            .peers
            .iter()
            .filter(|p| {
                p.alive && p.node != self.settings.node && self.memory.members.contains_key(p.node)
            })
            .count();
        (alive + 1, self.memory.members.len() + 1)
    }

    /// Remembers the members gossip shows; forgets those not seen alive for `forget_after`.
    /// Returns whether the set of members changed.
    pub(super) fn learn_members(&mut self, view: &View<'_>, now: Millis) -> bool {
        let mut changed = false;
        for peer in &view.peers {
            if peer.node == self.settings.node {
                continue;
            }
            if peer.alive {
                // Coarse, so the memory (persisted when it changes) changes rarely.
                let coarse = self.settings.forget_after / 16;
                let seen = self.memory.members.get(peer.node).copied();
                if seen.is_none_or(|seen| now.saturating_sub(seen) >= coarse) {
                    changed |= seen.is_none();
                    self.memory.members.insert(peer.node.to_owned(), now);
                }
                if !self.heard.contains(peer.node) {
                    self.heard.insert(peer.node.to_owned());
                }
                self.forgotten.remove(peer.node);
            } else if !self.memory.members.contains_key(peer.node)
                && !self.forgotten.contains(peer.node)
            {
                // A dead member it did not know of (learned after a restart): remembered, so
                // it counts until forgotten. One it forgot stays forgotten while it is dead.
                changed = true;
                self.memory.members.insert(peer.node.to_owned(), now);
            }
        }
        let forget_after = self.settings.forget_after;
        let forgotten = &mut self.forgotten;
        let before = self.memory.members.len();
        self.memory.members.retain(|node, seen| {
            let keep = now.saturating_sub(*seen) <= forget_after;
            if !keep {
                forgotten.insert(node.clone());
            }
            keep
        });
        changed || self.memory.members.len() != before
    }

    /// 8 hex digits of sha256 over the sorted members (this host included), 0-separated.
    pub(super) fn members_hash(&self) -> String {
        let mut members: Vec<&str> = self.memory.members.keys().map(String::as_str).collect();
        members.push(&self.settings.node);
        members.sort_unstable();
        members.dedup();
        let mut hash = Sha256::new();
        for member in members {
            hash.update(member.as_bytes());
            hash.update([0]);
        }
        hash.finalize()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
