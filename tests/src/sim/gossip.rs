//! Simulated gossip, shaped like chitchat's anti-entropy: every node owns one record (its
//! `g:<group>:state`, `:halt`, `:resume` and `:promote` values) under a version it bumps on each
//! change, and a heartbeat it bumps every round. What a host knows of each node is the newest
//! (heartbeat, version) that reached it; an exchange with a peer keeps the newer of each, so
//! news travels directly or through any chain of hosts. The failure detector declares a node
//! dead once no newer heartbeat of it has arrived for `dead_after` (directly or transitively),
//! and alive again as soon as one does.
//!
//! Records live once, in a history per node; a host's knowledge is just version numbers into
//! it, so an exchange costs one pass over two arrays of integers.

use std::rc::Rc;

use shoal_shared::gossip::{GroupState, Halt, Promote, Resume};
use shoal_shared::rollout::plan::{Peer, RECENT_ROUNDS};
use shoal_shared::rollout::{Planner, View};

use super::scenario::ROUND;

/// What a host knows of one node: its newest heartbeat and record version (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// The round of the newest heartbeat known (rounds count from 1).
    pub heartbeat: u32,
    /// The newest record version known (1-based index into the node's history).
    pub version: u32,
}

/// What a node publishes about the group: the values the agent writes to gossip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// `g:<group>:state`.
    pub state: Option<GroupState>,
    /// `g:<group>:halt`.
    pub halt: Option<Halt>,
    /// `g:<group>:resume`.
    pub resume: Option<Resume>,
    /// `g:<group>:promote`.
    pub promote: Option<Promote>,
}

impl Record {
    /// What a planner publishes, as the agent copies it into its gossip keys.
    pub fn of(planner: &Planner) -> Self {
        let memory = planner.memory();
        Self {
            state: planner.published().cloned(),
            halt: memory.halt.clone(),
            resume: memory.resume.clone(),
            promote: memory.promote.clone(),
        }
    }
}

/// A snapshot of one host's knowledge, as sent in one message.
pub type Snapshot = Rc<[Entry]>;

/// The gossip state of the whole simulated mesh.
#[derive(Debug)]
pub struct Gossip {
    names: Vec<String>,
    /// Every record each node published, oldest first.
    records: Vec<Vec<Record>>,
    /// `know[h][i]`: what host `h` knows of node `i`.
    know: Vec<Vec<Entry>>,
    /// `heard[h][i]`: when (true time) `h` last learned a newer heartbeat of `i`.
    heard: Vec<Vec<u64>>,
    /// `first[h][i]`: when `h` first learned a heartbeat of `i` (since its last start); the
    /// heartbeats learned then may be old news relayed by others.
    first: Vec<Vec<u64>>,
    /// The snapshot each host sends until its knowledge changes or its next round.
    snapshots: Vec<Option<Snapshot>>,
    dead_after: u64,
    /// A node dead this long after it was deemed dead leaves the views (chitchat's garbage
    /// collection of dead nodes, after the mesh's dead-node grace).
    gc_after: u64,
}

impl Gossip {
    /// A mesh of `names` where nobody knows anybody yet.
    pub fn new(names: Vec<String>, dead_after: u64, gc_after: u64) -> Self {
        let n = names.len();
        Self {
            names,
            records: vec![Vec::new(); n],
            know: vec![vec![Entry::default(); n]; n],
            heard: vec![vec![0; n]; n],
            first: vec![vec![0; n]; n],
            snapshots: vec![None; n],
            dead_after,
            gc_after,
        }
    }

    /// Node names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Publishes `record` as `host`'s newest, if it differs from the last one. Returns whether
    /// it did.
    pub fn publish(&mut self, host: usize, record: Record) -> bool {
        if self.records[host].last() == Some(&record) {
            return false;
        }
        self.records[host].push(record);
        self.know[host][host].version = self.records[host].len() as u32;
        self.snapshots[host] = None;
        true
    }

    /// The record `host` published last.
    pub fn own(&self, host: usize) -> Option<&Record> {
        self.records[host].last()
    }

    /// `host` beats its heartbeat for `round` at `now`.
    pub fn beat(&mut self, host: usize, round: u32, now: u64) {
        self.know[host][host].heartbeat = round;
        self.heard[host][host] = now;
        self.snapshots[host] = None;
    }

    /// What `host` sends: its knowledge as of now (cached until it changes).
    pub fn snapshot(&mut self, host: usize) -> Snapshot {
        if let Some(snap) = &self.snapshots[host] {
            return Rc::clone(snap);
        }
        let snap: Snapshot = Rc::from(self.know[host].as_slice());
        self.snapshots[host] = Some(Rc::clone(&snap));
        snap
    }

    /// Takes in what a peer sent. Returns whether a record version rose (the view changed).
    pub fn merge(&mut self, host: usize, theirs: &[Entry], now: u64) -> bool {
        let mut changed = false;
        let mine = self.know[host].as_mut_slice();
        let heard = self.heard[host].as_mut_slice();
        let first = self.first[host].as_mut_slice();
        let own = mine[host];
        // A plain indexed loop: this is the simulator's hottest code, and it runs in debug.
        let n = mine.len().min(theirs.len()).min(heard.len());
        for i in 0..n {
            let t = theirs[i];
            let m = &mut mine[i];
            if t.heartbeat > m.heartbeat {
                if m.heartbeat == 0 {
                    first[i] = now;
                }
                m.heartbeat = t.heartbeat;
                heard[i] = now;
            }
            if t.version > m.version {
                m.version = t.version;
                changed = true;
            }
        }
        // Nobody knows a host better than itself.
        mine[host] = own;
        // A fresh snapshot carries the new heartbeats too, but they can wait for the next
        // round; new record versions cannot.
        if changed {
            self.snapshots[host] = None;
        }
        changed
    }

    /// A restarted host: it knows nothing but itself, as a chitchat node with a new generation.
    pub fn reset(&mut self, host: usize) {
        let own = self.know[host][host];
        self.know[host].fill(Entry::default());
        self.know[host][host] = own;
        self.heard[host].fill(0);
        self.first[host].fill(0);
        self.snapshots[host] = None;
    }

    /// Whether `host`'s failure detector deems `node` alive at `now`.
    pub fn alive(&self, host: usize, node: usize, now: u64) -> bool {
        node == host
            || (self.know[host][node].heartbeat > 0
                && now.saturating_sub(self.heard[host][node]) <= self.dead_after)
    }

    /// How long `host` has not heard from `node` past its failure detector's time: 0 while it
    /// deems it alive.
    pub fn quiet_for(&self, host: usize, node: usize, now: u64) -> u64 {
        if self.alive(host, node, now) {
            return 0;
        }
        now.saturating_sub(self.heard[host][node])
            .saturating_sub(self.dead_after)
    }

    /// Whether `host` saw `node`'s heartbeat rise within the last [`RECENT_ROUNDS`] rounds,
    /// past the rounds after it first learned of it (when what it learned may be old news
    /// relayed by others, as after a restart on the far side of a partition).
    pub fn recent(&self, host: usize, node: usize, now: u64) -> bool {
        let window = u64::from(RECENT_ROUNDS) * ROUND;
        let heard = self.heard[host][node];
        now.saturating_sub(heard) <= window && heard > self.first[host][node] + window
    }

    /// Whether `host` knows `node` at all.
    pub fn knows(&self, host: usize, node: usize) -> bool {
        let e = self.know[host][node];
        e.heartbeat > 0 || e.version > 0
    }

    /// The nodes `host` knows, split into those it deems alive and dead at `now`.
    pub fn live_and_dead(&self, host: usize, now: u64) -> (Vec<usize>, Vec<usize>) {
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        let know = self.know[host].as_slice();
        let heard = self.heard[host].as_slice();
        for node in 0..know.len().min(heard.len()) {
            let e = know[node];
            if node == host || (e.heartbeat == 0 && e.version == 0) {
                continue;
            }
            if e.heartbeat > 0 && now.saturating_sub(heard[node]) <= self.dead_after {
                live.push(node);
            } else {
                dead.push(node);
            }
        }
        (live, dead)
    }

    /// The record of `node` that `host` knows, if any.
    pub fn record(&self, host: usize, node: usize) -> Option<&Record> {
        let version = self.know[host][node].version as usize;
        version
            .checked_sub(1)
            .and_then(|i| self.records[node].get(i))
    }

    /// What `host`'s gossip layer shows the planner at `now`: every other node it knows.
    pub fn view(&self, host: usize, now: u64) -> View<'_> {
        let mut peers = Vec::with_capacity(self.names.len());
        for node in 0..self.names.len() {
            if node == host || !self.knows(host, node) {
                continue;
            }
            let alive = self.alive(host, node, now);
            if !alive
                && now.saturating_sub(self.heard[host][node]) > self.dead_after + self.gc_after
            {
                continue;
            }
            let record = self.record(host, node);
            peers.push(Peer {
                node: &self.names[node],
                alive,
                recent: alive && self.recent(host, node, now),
                state: record.and_then(|r| r.state.as_ref()),
                halt: record.and_then(|r| r.halt.as_ref()),
                resume: record.and_then(|r| r.resume.as_ref()),
                promote: record.and_then(|r| r.promote.as_ref()),
            });
        }
        View {
            peers,
            duplicate: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh(n: usize) -> Gossip {
        Gossip::new(
            (0..n).map(|i| format!("h{i}")).collect(),
            3_000,
            u64::MAX / 2,
        )
    }

    #[test]
    fn news_travels_through_a_chain_and_only_newer_versions_count() {
        let mut g = mesh(3);
        g.publish(0, Record::default());
        g.beat(0, 1, 0);
        let from0 = g.snapshot(0);
        assert!(g.merge(1, &from0, 10));
        let from1 = g.snapshot(1);
        assert!(
            g.merge(2, &from1, 20),
            "host 2 learns of host 0 through host 1"
        );
        assert!(g.knows(2, 0));
        assert!(!g.merge(2, &from1, 30), "nothing newer the second time");
    }

    #[test]
    fn a_node_not_heard_of_is_dead_until_heard_again() {
        let mut g = mesh(2);
        g.beat(0, 1, 0);
        let snap = g.snapshot(0);
        g.merge(1, &snap, 0);
        assert!(g.alive(1, 0, 3_000));
        assert!(!g.alive(1, 0, 3_001));
        g.beat(0, 5, 4_000);
        let snap = g.snapshot(0);
        g.merge(1, &snap, 4_000);
        assert!(g.alive(1, 0, 4_000));
    }

    #[test]
    fn a_restarted_host_forgets_all_but_itself() {
        let mut g = mesh(2);
        g.beat(0, 1, 0);
        let snap = g.snapshot(0);
        g.merge(1, &snap, 0);
        g.publish(1, Record::default());
        g.reset(1);
        assert!(!g.knows(1, 0));
        assert!(g.record(1, 1).is_some());
    }
}
