//! The time limits the checker holds a run to: the progress bound of property 5 (batches ×
//! lifecycle, plus a coordination overhead measured with this simulator and bounded here), and
//! the grace the partition check gives the failure detector before a cut-off host must know it.

use std::fmt;

use shoal_shared::rollout::plan::RECENT_ROUNDS;
use shoal_shared::rollout::{Policy, Strategy};

use crate::sim::scenario::{ROUND, Scenario, millis, secs};

/// The progress bound of a run, term by term (milliseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound {
    /// Hosts / batch, rounded up (canary: one batch of canaries, then the rest).
    pub batches: u64,
    /// Longest hooks + `min_healthy_time` (with clock drift).
    pub lifecycle: u64,
    /// Linear: `every` between steps.
    pub steps: u64,
    /// A lifecycle of an older release that runs when the newest appears.
    pub carry: u64,
    /// Until a first host sees the release: a poll interval (with jitter) and a check.
    pub detect: u64,
    /// A restarted host listens to gossip first.
    pub warmup: u64,
    /// Coordination overhead per batch: a host's news reaching the next host in turn, and
    /// that host stepping.
    pub per_batch: u64,
    /// One-off coordination overhead: the release's news spreading to every host.
    pub fixed: u64,
}

impl Bound {
    /// The bound of `sc`'s newest release.
    pub fn of(sc: &Scenario) -> Self {
        let Some(newest) = sc.newest() else {
            return Self::default();
        };
        let n = sc.hosts;
        let policy = &newest.policy;
        let batches = batches(policy, n);
        let drift = |ms: u64| ms + ms * sc.clocks.max_drift_ppm / 1_000_000 + 1;
        let lifecycle = drift(sc.lifecycle_max(policy));
        let every = policy.linear.map_or(0, |l| millis(l.every));
        let steps = if policy.strategy == Strategy::Linear {
            batches.saturating_sub(1) * drift(every)
        } else {
            0
        };
        let carry = match sc.releases.len() {
            0 | 1 => 0,
            k => drift(sc.lifecycle_max(&sc.releases[k - 2].policy)),
        };
        let spread = spread_rounds(n) * ROUND + sc.net.delay_ms.1;
        let a = &sc.agent;
        let react = a.debounce_ms + a.throttle_ms + a.tick_ms;
        Self {
            batches,
            lifecycle,
            steps,
            carry,
            detect: a.poll_ms * 6 / 5 + a.check_ms.1,
            warmup: drift(a.warmup_ms),
            per_batch: spread + react,
            fixed: spread + a.check_ms.1 + react,
        }
    }

    /// The whole bound.
    pub fn total(&self) -> u64 {
        self.batches * (self.lifecycle + self.per_batch)
            + self.steps
            + self.carry
            + self.detect
            + self.warmup
            + self.fixed
    }

    /// What the run took beyond batches × lifecycle (and linear waits and a carried
    /// lifecycle): the coordination overhead it measured, to compare with the bound's.
    pub fn overhead(&self, took: u64) -> u64 {
        took.saturating_sub(self.batches * self.lifecycle + self.steps + self.carry)
    }

    /// The coordination overhead the bound allows.
    pub fn allowed_overhead(&self) -> u64 {
        self.total() - (self.batches * self.lifecycle + self.steps + self.carry)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batches × (lifecycle {} + coordination {}) + linear waits {} + older lifecycle \
             {} + first detection {} + warmup {} + spread {} = {}",
            self.batches,
            secs(self.lifecycle),
            secs(self.per_batch),
            secs(self.steps),
            secs(self.carry),
            secs(self.detect),
            secs(self.warmup),
            secs(self.fixed),
            secs(self.total())
        )
    }
}

/// How many batches a rollout of `n` hosts takes under `policy`.
pub fn batches(policy: &Policy, n: usize) -> u64 {
    let n = n.max(1);
    let count = match policy.strategy {
        Strategy::AllAtOnce => 1,
        Strategy::OneAtATime => n,
        Strategy::HalfAtATime => n.div_ceil(n.div_ceil(2)),
        Strategy::Rolling => n.div_ceil(policy.max_parallel.of(n)),
        Strategy::Canary => {
            let canaries = policy.canary.of(n);
            1 + (n - canaries).div_ceil(policy.max_parallel.of(n))
        }
        Strategy::Linear => {
            let step = policy
                .linear
                .map_or(policy.max_parallel.of(n), |l| l.step.of(n));
            n.div_ceil(step)
        }
    };
    count as u64
}

/// Rounds for news to reach every one of `n` hosts with margin for loss: 2·⌈log2 n⌉ + 4.
pub fn spread_rounds(n: usize) -> u64 {
    2 * u64::from(n.max(2).next_power_of_two().trailing_zeros()) + 4
}

/// How long a host cut off from a majority may still start (it heard from a majority within
/// the last [`RECENT_ROUNDS`], which is shorter than its failure detector's detection time):
/// those rounds, the spread of the last heartbeats that crossed before the cut, the longest
/// message delay, and the time until its next step.
pub fn minority_grace(sc: &Scenario) -> u64 {
    let a = &sc.agent;
    let heard = sc.net.detect_rounds.min(u64::from(RECENT_ROUNDS));
    (heard + 2 + spread_rounds(sc.hosts)) * ROUND
        + sc.net.delay_ms.1
        + a.tick_ms
        + a.throttle_ms
        + a.debounce_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_shared::rollout::Amount;

    #[test]
    fn batches_follow_the_strategy() {
        let mut p = Policy {
            strategy: Strategy::Rolling,
            max_parallel: Amount::Count(2),
            ..Policy::default()
        };
        assert_eq!(batches(&p, 7), 4);
        p.strategy = Strategy::Canary;
        p.canary = Amount::Count(1);
        assert_eq!(batches(&p, 7), 4);
        p.strategy = Strategy::HalfAtATime;
        assert_eq!(batches(&p, 7), 2);
        p.strategy = Strategy::OneAtATime;
        assert_eq!(batches(&p, 7), 7);
        assert_eq!(spread_rounds(100), 18);
    }
}
