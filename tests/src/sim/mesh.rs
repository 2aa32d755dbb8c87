//! The gossip rounds: once a round every live host beats its heartbeat and exchanges what it
//! knows with a few peers, push then pull, each message lost, delayed or cut by a partition on
//! its way (see `net.rs`); what arrives is merged into the receiver's knowledge (`gossip.rs`)
//! and, when a record is new, the receiver's planner is due to step.

use super::gossip::Snapshot;
use super::rng::Rng;
use super::scenario::ROUND;
use super::world::{Ev, World};

/// Hosts every agent is configured with as gossip seeds (the first ones).
const SEEDS: usize = 3;

impl World {
    pub(super) fn gossip_round(&mut self, h: usize, incarnation: u32) {
        if !self.valid(h, incarnation) {
            return;
        }
        let round = u32::try_from(self.t / ROUND + 1).unwrap_or(u32::MAX);
        self.gossip.beat(h, round, self.t);
        let snapshot = self.gossip.snapshot(h);
        for peer in self.gossip_peers(h) {
            self.send(h, peer, snapshot.clone(), false);
        }
        self.at(
            self.t + ROUND,
            Ev::Gossip {
                host: h,
                incarnation,
            },
        );
    }

    /// Whom `h` gossips with this round, chosen as chitchat does: `fanout` random peers it
    /// deems alive (any it knows, if none), a dead one with probability dead / (live + 1),
    /// and a seed (the first three hosts) when it knows few live nodes or by chance.
    fn gossip_peers(&mut self, h: usize) -> Vec<usize> {
        let n = self.hosts.len();
        let (live, dead) = self.gossip.live_and_dead(h, self.t);
        let pool = if live.is_empty() {
            dead.clone()
        } else {
            live.clone()
        };
        let mut peers = sample(&mut self.rng, pool, self.sc.net.fanout);
        let roll = self.rng.below(live.len() as u64 + 1);
        if (roll as usize) < dead.len() {
            peers.push(dead[self.rng.index(dead.len())]);
        }
        let seeds: Vec<usize> = (0..n.min(SEEDS)).filter(|k| *k != h).collect();
        let with_seed = peers.iter().any(|p| seeds.contains(p));
        if !seeds.is_empty() && (!with_seed || live.len() < seeds.len()) {
            let known = (live.len() + dead.len()).max(1) as u64;
            if live.is_empty() || self.rng.below(known) < seeds.len() as u64 {
                peers.push(seeds[self.rng.index(seeds.len())]);
            }
        }
        peers
    }

    pub(super) fn send(&mut self, from: usize, to: usize, snapshot: Snapshot, reply: bool) {
        if let Some(delay) = self.net.send(&mut self.rng, from, to) {
            self.stats.messages += 1;
            let ev = Ev::Deliver {
                from,
                to,
                snapshot,
                reply,
            };
            self.at(self.t + delay, ev);
        }
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, snapshot: &Snapshot, reply: bool) {
        if !self.hosts[to].up || !self.net.connected(from, to) {
            return;
        }
        if self.gossip.merge(to, snapshot, self.t) {
            self.view_changed(to);
        }
        if !reply {
            let back = self.gossip.snapshot(to);
            self.send(to, from, back, true);
        }
    }
}

/// Up to `k` distinct items of `pool`, at random.
fn sample(rng: &mut Rng, mut pool: Vec<usize>, k: usize) -> Vec<usize> {
    let k = k.min(pool.len());
    for i in 0..k {
        let j = i + rng.index(pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}
