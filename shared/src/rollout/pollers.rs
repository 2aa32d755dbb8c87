//! Which hosts of a group poll its channel's origin: a few, chosen from the members alive, so
//! the origin's load does not grow with the fleet. The others learn of a release from gossip (a
//! poller's state names its new target) and look at the channel then.
//!
//! The choice is rendezvous hashing: members are ordered by sha256(group ‖ 0x00 ‖ node) and the
//! first `count` alive ones poll. Every host computes the same set from the same view; one
//! member dying or joining changes at most one poller, and a poller that dies is replaced as
//! soon as the others see it dead.

use sha2::{Digest, Sha256};

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
