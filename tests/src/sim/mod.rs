//! The deterministic simulator of shoal's rollouts: N hosts, each driving the very code the
//! agent runs for a group (`shoal_shared::rollout::GroupHost`: the journal and its recovery
//! decisions, and the planner), over a simulated chitchat-like gossip layer with message loss
//! and delays, partitions that heal, crashes (also in the middle of a lifecycle or a revert)
//! and restarts from the journal as written, skewed clocks, simulated hooks and reverts, a
//! channel that is the only source of releases, and an operator who halts, resumes and
//! promotes.
//!
//! Everything follows from one seed: one PRNG, one queue of timed events, no real time and no
//! hash-order dependence. After every planner step the checker ([`check`]) holds the run to
//! the properties of DESIGN.md against ground truth; on a violation the [`Failure`] prints the
//! seed, the scenario, the last few hundred steps and the command that replays exactly that run.
//!
//! Layout: `scenario` (what a run is made of, and drawing one from a seed), `world` (the event
//! loop) and `setup` (time zero), `drive` (stepping the planners as the agent does), `work`
//! (lifecycles, reverts, crashes and restarts), `operator`, `mesh`, `gossip` and `net` (the
//! simulated chitchat), `host`, `check` (the properties, the progress bound, the final state),
//! `trace` and `report` (what a failure prints), `queue` (timed events), `rng`. Beside them,
//! `spread`: a model of how a release's bytes reach every host, from peers or from the origin.
//!
//! The driver contract the simulator shares with the agent's group task: write the journal
//! whenever `GroupHost::take_changed` says so, before carrying out the work asked for; run each
//! `Work::Run` to its end and report how it `Ended`; after a restart, `recover` with what the
//! disk shows of the run cut short; feed `release` only for a release above the channel's
//! anti-rollback floor.

pub mod check;
mod drive;
pub mod gossip;
pub mod host;
mod mesh;
pub mod net;
mod operator;
pub mod queue;
mod report;
pub mod rng;
pub mod scenario;
mod setup;
pub mod spread;
pub mod trace;
mod work;
pub mod world;

use std::fmt;

pub use check::{Bound, Figures, Violation};
pub use report::{failure, report};
pub use scenario::{
    AgentPlan, Clocks, Command, CommandPlan, CrashAt, CrashPlan, Net, PartitionPlan,
    PlannedRelease, Promoting, ROUND, Scenario, describe_policy, secs,
};
pub use setup::base_revision;
pub use world::{End, Stats, World};

/// What a run that held every property measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Its seed.
    pub seed: u64,
    /// Hosts in the group.
    pub hosts: usize,
    /// Steps, messages and rounds.
    pub stats: Stats,
    /// Simulated time at the end.
    pub sim_ms: u64,
    /// Figures the checker measured.
    pub figures: Figures,
    /// The run's progress bound.
    pub bound: Bound,
}

impl Report {
    /// In a run expected to progress: how long it took from the last disturbance until every
    /// live host was done, and how much of that was coordination overhead (beyond batches ×
    /// lifecycle, linear waits and a carried lifecycle).
    pub fn progress(&self) -> Option<(u64, u64)> {
        let (since, done) = self.figures.progress?;
        let took = done.saturating_sub(since);
        Some((took, self.bound.overhead(took)))
    }

    /// Rounds from the first host learning a halt to the last live host learning it.
    pub fn halt_rounds(&self) -> Option<u64> {
        let (first, last) = self.figures.halt_spread?;
        Some((last - first).div_ceil(ROUND))
    }

    /// How many lifecycles of `revision` started, and on how many hosts.
    pub fn started(&self, revision: &str) -> (usize, usize) {
        let starts: Vec<usize> = self
            .figures
            .starts
            .iter()
            .filter(|(_, _, r)| r == revision)
            .map(|(_, h, _)| *h)
            .collect();
        let mut hosts = starts.clone();
        hosts.sort_unstable();
        hosts.dedup();
        (starts.len(), hosts.len())
    }
}

/// A run that broke a property, with everything needed to understand and replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its seed.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
    /// The whole report: scenario, trace, re-run command.
    pub text: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Runs `sc` to its end; the world is returned for tests that look at the final hosts.
pub fn simulate(sc: Scenario) -> (World, End) {
    let mut world = World::new(sc);
    let end = world.run();
    (world, end)
}

/// Runs `sc`: a report if every property held, else the failure.
pub fn run(sc: Scenario) -> Result<Report, Failure> {
    let (world, end) = simulate(sc);
    match end {
        End::Settled => Ok(report(&world)),
        End::Violated(violation) => Err(failure(&world, violation)),
    }
}

/// Runs the mixed scenario of `seed` (groups of up to `max_hosts`).
pub fn run_seed(seed: u64, max_hosts: usize) -> Result<Report, Failure> {
    run(Scenario::mixed(seed, max_hosts))
}
