//! The simulated network between hosts: every message is lost with some probability or delayed
//! by a random time, and a partition drops every message between hosts on different sides
//! (when sent and when it would arrive) until it heals.

use super::rng::Rng;
use super::scenario::Net;

/// Links between hosts.
#[derive(Debug, Clone)]
pub struct Network {
    loss_permille: u32,
    delay_ms: (u64, u64),
    /// The side of each host while a partition lasts.
    sides: Option<Vec<u8>>,
}

impl Network {
    /// A network with the scenario's loss and delays, not partitioned.
    pub fn new(net: &Net) -> Self {
        Self {
            loss_permille: net.loss_permille,
            delay_ms: net.delay_ms,
            sides: None,
        }
    }

    /// Whether `a` and `b` can talk now.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.sides.as_ref().is_none_or(|s| s[a] == s[b])
    }

    /// A message from `from` to `to`: its delay, or `None` when it is lost.
    pub fn send(&self, rng: &mut Rng, from: usize, to: usize) -> Option<u64> {
        if !self.connected(from, to) || rng.chance(self.loss_permille) {
            return None;
        }
        Some(rng.range(self.delay_ms.0, self.delay_ms.1))
    }

    /// Splits the hosts into `sides`.
    pub fn partition(&mut self, sides: Vec<u8>) {
        self.sides = Some(sides);
    }

    /// Heals the partition.
    pub fn heal(&mut self) {
        self.sides = None;
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        self.sides.is_some()
    }
}
