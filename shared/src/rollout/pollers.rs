//! Which hosts of a group poll its channel's origin: a few, chosen from the members alive, so
//! the origin's load does not grow with the fleet. The others learn of a release from gossip (a
//! poller's state names its new target) and look at the channel then.
//!
//! The choice is rendezvous hashing: members are ordered by sha256(group ‖ 0x00 ‖ node) and the
//! first `count` alive ones poll. Every host computes the same set from the same view; one
//! member dying or joining changes at most one poller, and a poller that dies is replaced as
//! soon as the others see it dead.

use sha2::{Digest, Sha256};

use super::plan::Peer;

/// How many hosts of a group poll its origin unless configured.
pub const DEFAULT_POLLERS: usize = 3;

/// The members of `group` among `alive` (this host included when it counts itself) that poll
/// the origin: the `count` first by sha256(group ‖ 0x00 ‖ node).
pub fn pollers<'a>(group: &str, alive: &[&'a str], count: usize) -> Vec<&'a str> {
    let mut ranked: Vec<([u8; 32], &'a str)> = alive
        .iter()
        .map(|node| {
            let rank = Sha256::new()
                .chain_update(group)
                .chain_update([0])
                .chain_update(node)
                .finalize()
                .into();
            (rank, *node)
        })
        .collect();
    ranked.sort_unstable();
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked
        .into_iter()
        .take(count)
        .map(|(_, node)| node)
        .collect()
}

/// Whether `me` polls `group`'s origin, with `peers_alive` the other members it sees alive.
pub fn polls(group: &str, me: &str, peers_alive: &[&str], count: usize) -> bool {
    let mut alive: Vec<&str> = peers_alive.to_vec();
    alive.push(me);
    pollers(group, &alive, count).contains(&me)
}

/// What a host does at a timed look at a remote channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// It is one of the group's pollers.
    pub polls: bool,
    /// It looks at the channel now: a poller always; another host while an alive peer is on a
    /// deployment it does not have (the announcement of a release comes once, and a look may
    /// have failed), so a missed announcement is never a missed release.
    pub looks: bool,
}

/// Whether `me`, with the deployment `own` and seeing `peers` of `group`, looks at a remote
/// channel at its timed look, `count` members polling.
pub fn look(group: &str, me: &str, own: Option<&str>, peers: &[Peer<'_>], count: usize) -> Look {
    let alive: Vec<&str> = peers.iter().filter(|p| p.alive).map(|p| p.node).collect();
    let polls = polls(group, me, &alive, count);
    let behind = peers.iter().any(|p| {
        p.alive
            && p.state
                .and_then(|s| s.target.as_ref())
                .is_some_and(|t| Some(t.id.as_str()) != own)
    });
    Look {
        polls,
        looks: polls || behind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web-{i}")).collect()
    }

    #[test]
    fn every_host_chooses_the_same_few_whatever_the_order_it_sees() {
        let names = nodes(20);
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let chosen = pollers("web", &all, 3);
        assert_eq!(chosen.len(), 3);
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(pollers("web", &reversed, 3), chosen);
        // Each host, asking for itself with the others as its peers, agrees.
        let mut polling: Vec<&str> = all
            .iter()
            .filter(|me| {
                let peers: Vec<&str> = all.iter().copied().filter(|n| n != *me).collect();
                polls("web", me, &peers, 3)
            })
            .copied()
            .collect();
        polling.sort_unstable();
        let mut sorted = chosen.clone();
        sorted.sort_unstable();
        assert_eq!(polling, sorted);
        // Another group spreads the load to other hosts.
        assert_ne!(pollers("api", &all, 3), chosen);
    }

    #[test]
    fn a_host_that_does_not_poll_looks_while_an_alive_peer_is_on_a_release_it_lacks() {
        use crate::gossip::{GroupState, Target};
        let on = |id: &str| GroupState {
            target: Some(Target {
                id: id.into(),
                revision: "v2".into(),
                digest: "git:v2".into(),
            }),
            ..GroupState::default()
        };
        let (v2, v1) = (on("d-2"), on("d-1"));
        let names = nodes(6);
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let chosen = pollers("web", &all, 3);
        let me = *all
            .iter()
            .find(|n| !chosen.contains(n))
            .expect("a non-poller");
        // The other five, alive (pollers always), each on `state`.
        let peers = |state, alive| -> Vec<Peer<'_>> {
            all.iter()
                .filter(|n| **n != me)
                .map(|n| Peer::new(n, alive || chosen.contains(n), state))
                .collect()
        };
        let idle = look("web", me, Some("d-2"), &peers(Some(&v2), true), 3);
        assert_eq!(
            idle,
            Look {
                polls: false,
                looks: false
            }
        );
        // The others moved on to d-2 while this host stays on d-1, or has nothing yet.
        assert!(look("web", me, Some("d-1"), &peers(Some(&v2), true), 3).looks);
        assert!(look("web", me, None, &peers(Some(&v2), true), 3).looks);
        // A peer with no release, or a dead one on another, is no reason to look.
        assert!(!look("web", me, Some("d-1"), &peers(None, true), 3).looks);
        let mut dead = peers(Some(&v1), true);
        dead.push(Peer::new("web-99", false, Some(&v2)));
        assert!(!look("web", me, Some("d-1"), &dead, 3).looks);
        // A poller always looks.
        assert_eq!(
            look("web", chosen[0], Some("d-2"), &peers(Some(&v2), true), 3),
            Look {
                polls: true,
                looks: true
            }
        );
    }

    #[test]
    fn a_dead_poller_is_replaced_by_one_host_and_the_others_stay() {
        let names = nodes(20);
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let chosen = pollers("web", &all, 3);
        let without: Vec<&str> = all.iter().copied().filter(|n| *n != chosen[0]).collect();
        let after = pollers("web", &without, 3);
        assert_eq!(after.len(), 3);
        assert_eq!(&after[..2], &chosen[1..], "the two others keep polling");
        assert!(!after.contains(&chosen[0]));
        // A small group polls from every host, and a host alone polls.
        assert_eq!(pollers("web", &all[..2], 3).len(), 2);
        assert!(polls("web", "web-1", &[], 3));
    }
}
