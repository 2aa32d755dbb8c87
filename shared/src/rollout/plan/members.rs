//! The group's members as this host knows them: who they are and when each was last seen
//! alive, whether it sees a majority of them, and the hash by which members check that they
//! all know the same ones. A member gone quiet leaves the rollout order after the dead-node
//! grace but still counts in the quorum, however long, until it leaves (`shoal leave`) or an
//! operator forgets it (`shoal forget`): partitions of any length fail safe.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::Planner;
use super::types::{Millis, Peer, View};

impl Planner {
    /// Whether it sees a majority of the members it knows alive (itself included).
    pub(super) fn sees_majority(&self, view: &View<'_>) -> bool {
        let (alive, members) = self.alive_members(view);
        alive * 2 > members
    }

    /// Members it sees alive and the members the quorum counts, itself included in both. The
    /// quorum counts every member it has known, however long gone quiet, unless the group's
    /// expected size is configured: then a majority of that (or of the members known now,
    /// when more).
    pub(super) fn alive_members(&self, view: &View<'_>) -> (usize, usize) {
        self.members_seen(view, |p| p.alive)
    }

    /// The same, counting only the members heard from within the last few rounds
    /// ([`super::types::RECENT_ROUNDS`]): what a start needs.
    pub(super) fn recent_members(&self, view: &View<'_>) -> (usize, usize) {
        self.members_seen(view, |p| p.alive && p.recent)
    }

    fn members_seen(&self, view: &View<'_>, seen: impl Fn(&Peer<'_>) -> bool) -> (usize, usize) {
        let alive = view
            .peers
            .iter()
            .filter(|p| seen(p) && p.node != self.settings.node && self.counts(p.node))
            .count();
        let members = match self.settings.expected_members {
            Some(expected) => expected.max(self.memory.members.len() + 1),
            None => {
                let gone_quiet = self
                    .memory
                    .known
                    .iter()
                    .filter(|m| !self.memory.members.contains_key(*m))
                    .count();
                self.memory.members.len() + gone_quiet + 1
            }
        };
        (alive + 1, members)
    }

    /// Whether `node` counts in the quorum.
    pub(super) fn counts(&self, node: &str) -> bool {
        self.memory.members.contains_key(node) || self.memory.known.contains(node)
    }

    /// Remembers the members gossip shows; takes members out of the rollout order once not
    /// seen alive for `forget_after` (they still count in the quorum); drops members that
    /// leave, and dead members an operator had forgotten (here or on a member). Returns
    /// whether the set of members changed.
    pub(super) fn learn_members(&mut self, view: &View<'_>, now: Millis) -> bool {
        let mut changed = self.drop_departed(view);
        for peer in &view.peers {
            if peer.node == self.settings.node || peer.state.is_some_and(|s| s.leaving) {
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
                changed |= self.memory.known.insert(peer.node.to_owned());
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
                self.memory.known.insert(peer.node.to_owned());
            }
        }
        let forget_after = self.settings.forget_after;
        let expected = self.settings.expected_members.is_some();
        let forgotten = &mut self.forgotten;
        let known = &mut self.memory.known;
        let before = self.memory.members.len();
        self.memory.members.retain(|node, seen| {
            let keep = now.saturating_sub(*seen) <= forget_after;
            if !keep {
                forgotten.insert(node.clone());
                if expected {
                    known.remove(node);
                }
            }
            keep
        });
        changed || self.memory.members.len() != before
    }

    /// Drops members that leave the group, and dead members forgotten by an operator (on this
    /// host or on a member); a forget of a member seen alive again is withdrawn.
    fn drop_departed(&mut self, view: &View<'_>) -> bool {
        let alive: BTreeSet<&str> = view
            .peers
            .iter()
            .filter(|p| p.alive && !p.state.is_some_and(|s| s.leaving))
            .map(|p| p.node)
            .collect();
        let mut gone: BTreeSet<String> = view
            .peers
            .iter()
            .filter(|p| p.state.is_some_and(|s| s.leaving))
            .map(|p| p.node.to_owned())
            .collect();
        let own = self.state().map(|s| s.forgets.clone()).unwrap_or_default();
        let from_members = view
            .peers
            .iter()
            .filter(|p| self.counts(p.node))
            .filter_map(|p| p.state)
            .flat_map(|s| s.forgets.iter().cloned());
        for node in own.iter().cloned().chain(from_members) {
            if !alive.contains(node.as_str()) && node != self.settings.node {
                gone.insert(node);
            }
        }
        if own.iter().any(|n| alive.contains(n.as_str())) {
            self.state_mut()
                .forgets
                .retain(|n| !alive.contains(n.as_str()));
        }
        let mut changed = false;
        for node in gone {
            let was = self.memory.members.remove(&node).is_some();
            changed |= was | self.memory.known.remove(&node);
            self.forgotten.insert(node);
        }
        changed
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
