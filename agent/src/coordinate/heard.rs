//! When this host last heard from each peer: the time (this host's) at which the peer's
//! heartbeat was last seen to rise, sampled every gossip round and at every snapshot. A start
//! needs a majority heard from within the last [`RECENT_ROUNDS`] rounds, which a host cut off
//! from the others loses well before chitchat's failure detector declares them dead.
//!
//! What a host learns of a peer in the first rounds after it first hears of it may be old
//! news: a host that starts on the far side of a partition learns the others' last heartbeats
//! from its side, each new to it. So only a rise seen more than [`RECENT_ROUNDS`] rounds after
//! the first sighting counts.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, Heartbeat};
use shoal_shared::rollout::plan::RECENT_ROUNDS;
use tokio::time::Instant;

/// What was seen of one peer generation.
struct Seen {
    /// When it was first seen.
    first: Instant,
    /// Its newest heartbeat, and when that was first seen.
    heartbeat: Heartbeat,
    at: Instant,
}

/// What was seen of each peer generation.
pub(super) struct Heard {
    last: Mutex<HashMap<ChitchatId, Seen>>,
    window: Duration,
}

impl Heard {
    /// For a mesh gossiping every `interval`.
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            last: Mutex::new(HashMap::new()),
            window: interval.saturating_mul(RECENT_ROUNDS),
        }
    }

    /// Notes every peer whose heartbeat rose since the last sample; forgets peers chitchat no
    /// longer holds.
    pub(super) fn sample(&self, chitchat: &Chitchat) {
        let now = Instant::now();
        let me = chitchat.self_chitchat_id();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let states = chitchat.node_states();
        last.retain(|id, _| states.contains_key(id));
        for (id, state) in states {
            if id == me {
                continue;
            }
            let heartbeat = state.heartbeat();
            match last.get_mut(id) {
                Some(seen) if heartbeat > seen.heartbeat => {
                    seen.heartbeat = heartbeat;
                    seen.at = now;
                }
                Some(_) => {}
                None => {
                    last.insert(
                        id.clone(),
                        Seen {
                            first: now,
                            heartbeat,
                            at: now,
                        },
                    );
                }
            }
        }
    }

    /// The peers whose heartbeat rose within the window, past the first rounds after they
    /// were first seen; after a fresh sample.
    pub(super) fn recent(&self, chitchat: &Chitchat) -> HashSet<ChitchatId> {
        self.sample(chitchat);
        let now = Instant::now();
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, seen)| {
                now.duration_since(seen.at) <= self.window
                    && seen.at.duration_since(seen.first) > self.window
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}
