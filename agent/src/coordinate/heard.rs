//! When this host last heard from each peer: the time (this host's) at which the peer's
//! heartbeat was last seen to rise, sampled every gossip round and at every snapshot. A start
//! needs a majority heard from within the last [`RECENT_ROUNDS`] rounds, which a host cut off
//! from the others loses well before chitchat's failure detector declares them dead.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, Heartbeat};
use shoal_shared::rollout::plan::RECENT_ROUNDS;
use tokio::time::Instant;

/// Each peer generation's newest heartbeat and when it was first seen.
pub(super) struct Heard {
    last: Mutex<HashMap<ChitchatId, (Heartbeat, Instant)>>,
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
                Some((seen, at)) if heartbeat > *seen => {
                    *seen = heartbeat;
                    *at = now;
                }
                Some(_) => {}
                None => {
                    last.insert(id.clone(), (heartbeat, now));
                }
            }
        }
    }

    /// The peers heard from within the window, after a fresh sample.
    pub(super) fn recent(&self, chitchat: &Chitchat) -> HashSet<ChitchatId> {
        self.sample(chitchat);
        let now = Instant::now();
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) <= self.window)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
