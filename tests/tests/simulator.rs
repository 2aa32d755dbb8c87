//! The deterministic simulator's tests (see `shoal_tests::sim`): a thousand mixed seeds on
//! every run, larger groups, user stories, and in release builds a 2,000-host group and the
//! hundred-thousand-seed sweep. A failing seed prints its trace and the command that replays it:
//! `SHOAL_SIM_SEED=123 cargo test -p shoal-tests --test simulator -- one_seed --exact --nocapture`.

use std::ops::Range;
use std::time::{Duration, SystemTime};

use shoal_shared::rollout::{Amount, Policy, Strategy};
use shoal_tests::sim::host::Disk;
use shoal_tests::sim::{
    self, Command, CommandPlan, CrashAt, CrashPlan, End, PartitionPlan, PlannedRelease, Report,
    Scenario, World, base_revision,
};

/// Groups of the mixed seeds run on every test run have up to this many hosts.
const CI_MAX_HOSTS: usize = 50;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `sc` to its end; panics with the failure report if a property broke.
fn settle(sc: Scenario) -> (World, Report) {
    let (world, end) = sim::simulate(sc);
    match end {
        End::Settled => {
            let report = sim::report(&world);
            (world, report)
        }
        End::Violated(violation) => panic!("{}", sim::failure(&world, violation)),
    }
}

/// Runs the mixed scenarios of `seeds`; panics with the first failure and every failing seed.
fn sweep(seeds: Range<u64>, scenario: impl Fn(u64) -> Scenario) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for seed in seeds {
        match sim::run(scenario(seed)) {
            Ok(report) => reports.push(report),
            Err(failure) => failures.push(failure),
        }
    }
    if let Some(first) = failures.first() {
        let seeds: Vec<String> = failures
            .iter()
            .take(20)
            .map(|f| format!("{} ({})", f.seed, f.violation.property))
            .collect();
        panic!(
            "{} seeds broke a property: {}{}\nthe first one:{first}",
            failures.len(),
            seeds.join(", "),
            if failures.len() > seeds.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    reports
}

fn ci_seeds(seeds: Range<u64>) {
    sweep(seeds, |seed| Scenario::mixed(seed, CI_MAX_HOSTS));
}

// A thousand mixed seeds, in four tests so that they run in parallel.

#[test]
fn mixed_seeds_0_to_250() {
    ci_seeds(0..250);
}

#[test]
fn mixed_seeds_250_to_500() {
    ci_seeds(250..500);
}

#[test]
fn mixed_seeds_500_to_750() {
    ci_seeds(500..750);
}

#[test]
fn mixed_seeds_750_to_1000() {
    ci_seeds(750..1000);
}

/// Mixed scenarios on groups of 100 and 200 hosts.
#[test]
fn mixed_seeds_on_larger_groups() {
    sweep(0..2, |seed| Scenario::mixed_sized(seed, 100));
    sweep(7..8, |seed| Scenario::mixed_sized(seed, 200));
}

/// Replays one seed: `SHOAL_SIM_SEED` (default 1), with `SHOAL_SIM_HOSTS` (an exact group
/// size) or `SHOAL_SIM_MAX_HOSTS` (default 50) as its failure report says.
#[test]
fn one_seed() {
    let seed = env_u64("SHOAL_SIM_SEED").unwrap_or(1);
    let sc = match env_u64("SHOAL_SIM_HOSTS") {
        Some(hosts) => Scenario::mixed_sized(seed, hosts as usize),
        None => Scenario::mixed(
            seed,
            env_u64("SHOAL_SIM_MAX_HOSTS").map_or(50, |n| n as usize),
        ),
    };
    println!("{}", sc.describe());
    let (_, report) = settle(sc);
    println!("{report:#?}");
}

/// 2,000 hosts rolling out 25 % at a time with loss, delays and a crash. One planner step
/// looks at every member (about 8 ms in a debug build at this size), so this runs in release
/// builds: `cargo test -p shoal-tests --release --test simulator`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes in a debug build; runs in release builds (scripts/bench-sim.sh)"
)]
fn two_thousand_hosts() {
    let report = sim::run(two_thousand_hosts_scenario()).unwrap_or_else(|f| panic!("{f}"));
    let (since, done) = report
        .figures
        .progress
        .expect("every host reached the release");
    println!(
        "2,000 hosts: every host done on v1 at {} (released at 30 s; last disturbance at {}), \
         {} planner steps",
        sim::secs(done),
        sim::secs(since),
        report.stats.steps
    );
}

fn two_thousand_hosts_scenario() -> Scenario {
    // The crash below cuts a lifecycle short, which counts as one failure: tolerated.
    let policy = Policy {
        strategy: Strategy::Rolling,
        max_parallel: Amount::Percent(25),
        min_healthy_time: Duration::from_secs(3),
        max_failures: 1,
        ..Policy::default()
    };
    let mut sc = Scenario::quiet(2000, "two_thousand_hosts", 2000, policy);
    sc.warm_start = true;
    sc.net.loss_permille = 50;
    sc.net.delay_ms = (5, 800);
    // An agent of a large group steps on changes of its view at most every 5 s.
    sc.agent.tick_ms = 30_000;
    sc.agent.throttle_ms = 5_000;
    sc.crashes.push(CrashPlan {
        host: 17,
        at: 2_000,
        down_for: Some(20_000),
        when: CrashAt::Lifecycle,
        planned: false,
    });
    sc
}

/// The hundred-thousand-seed sweep, on every core:
/// `cargo test -p shoal-tests --release --test simulator -- --ignored hundred_thousand`.
/// `SHOAL_SIM_FROM` and `SHOAL_SIM_COUNT` choose the seeds, `SHOAL_SIM_HOSTS` a group size.
#[test]
#[ignore = "minutes even in release: cargo test -p shoal-tests --release --test simulator -- --ignored"]
fn hundred_thousand_seeds() {
    let from = env_u64("SHOAL_SIM_FROM").unwrap_or(0);
    let count = env_u64("SHOAL_SIM_COUNT").unwrap_or(100_000);
    let started = SystemTime::now();
    let sweep = parallel_sweep(from..from + count, CI_MAX_HOSTS);
    let secs = started.elapsed().unwrap_or_default().as_secs_f64();
    let failures = &sweep.failures;
    println!(
        "{count} seeds from {from}: {} failed, {} planner steps in {secs:.0} s",
        failures.len(),
        sweep.steps
    );
    if let Some((_, first)) = failures.first() {
        let seeds: Vec<String> = failures.iter().map(|(s, _)| s.to_string()).collect();
        panic!(
            "seeds that broke a property: {}\nthe first one:{first}",
            seeds.join(", ")
        );
    }
}

/// What a sweep of seeds found.
#[derive(Default)]
struct Sweep {
    /// Planner steps of the runs that held.
    steps: u64,
    /// (seed, failure report).
    failures: Vec<(u64, String)>,
    /// Runs expected to progress: (time to finish, coordination overhead, overhead the bound
    /// allows, batches, whole bound).
    progress: Vec<(u64, u64, u64, u64, u64)>,
    /// The run that used most of its bound's coordination allowance: (share in %, seed).
    worst: (u64, u64),
}

impl Sweep {
    /// Counts a run that held.
    fn record(&mut self, report: &Report) {
        self.steps += report.stats.steps;
        if let Some((took, overhead)) = report.progress() {
            let b = report.bound;
            let figures = (took, overhead, b.allowed_overhead(), b.batches, b.total());
            self.progress.push(figures);
            let share = overhead * 100 / b.allowed_overhead().max(1);
            self.worst = self.worst.max((share, report.seed));
        }
    }
}

/// The mixed scenario of `seed`: groups of exactly `SHOAL_SIM_HOSTS` hosts if set, else of
/// up to `max_hosts`.
fn mixed(seed: u64, max_hosts: usize) -> Scenario {
    match env_u64("SHOAL_SIM_HOSTS") {
        Some(hosts) => Scenario::mixed_sized(seed, hosts as usize),
        None => Scenario::mixed(seed, max_hosts),
    }
}

/// Runs `seeds` on every core.
fn parallel_sweep(seeds: Range<u64>, max_hosts: usize) -> Sweep {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let parts: Vec<Sweep> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    let mut part = Sweep::default();
                    for seed in seeds.filter(|s| s % threads == k) {
                        match sim::run(mixed(seed, max_hosts)) {
                            Ok(report) => part.record(&report),
                            Err(failure) => part.failures.push((seed, failure.text)),
                        }
                    }
                    part
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a sweep thread"))
            .collect()
    });
    let mut sweep = Sweep::default();
    for part in parts {
        sweep.steps += part.steps;
        sweep.failures.extend(part.failures);
        sweep.progress.extend(part.progress);
        sweep.worst = sweep.worst.max(part.worst);
    }
    sweep.failures.sort();
    sweep
}

// Stories.

fn rolling(max_parallel: Amount) -> Policy {
    Policy {
        strategy: Strategy::Rolling,
        max_parallel,
        min_healthy_time: Duration::from_secs(3),
        ..Policy::default()
    }
}

#[test]
fn rolling_max_parallel_2_never_exceeds_2() {
    for seed in 0..10 {
        let mut sc = Scenario::quiet(
            seed,
            "rolling_max_parallel_2_never_exceeds_2",
            12,
            rolling(Amount::Count(2)),
        );
        sc.net.loss_permille = 150;
        sc.net.delay_ms = (10, 1_500);
        let (_, report) = settle(sc);
        assert_eq!(report.figures.peak_parallel, 2, "seed {seed}");
        assert_eq!(report.started("v1"), (12, 12), "seed {seed}");
        assert!(
            report.progress().is_some(),
            "seed {seed}: every host is done"
        );
    }
}

#[test]
fn a_failing_canary_halts_every_host_nothing_else_starts_and_the_canary_reverts() {
    let policy = Policy {
        strategy: Strategy::Canary,
        canary: Amount::Count(1),
        max_parallel: Amount::Percent(25),
        ..Policy::default()
    };
    let mut sc = Scenario::quiet(
        3,
        "a_failing_canary_halts_every_host_nothing_else_starts_and_the_canary_reverts",
        10,
        policy,
    );
    sc.releases[0].fail_permille = 1000;
    let (world, report) = settle(sc);
    assert_eq!(report.started("v1"), (1, 1), "only the canary ever started");
    let canary = report.figures.starts[0].1;
    let base = Disk::Clean(base_revision().digest);
    for (h, host) in world.hosts().iter().enumerate() {
        let planner = host.planner();
        assert!(planner.halted().is_some(), "h{h} knows the halt");
        assert_eq!(host.disk, base, "h{h} runs v0");
        let step = planner.step_now().map(|s| s.as_str());
        let expected = if h == canary { "reverted" } else { "waiting" };
        assert_eq!(step, Some(expected), "h{h}");
    }
}

#[test]
fn a_host_crashed_mid_rollout_the_rest_finish_and_it_converges() {
    // max_failures 0: a crash is no failure of the release.
    let policy = rolling(Amount::Count(2));
    let mut sc = Scenario::quiet(
        5,
        "a_host_crashed_mid_rollout_the_rest_finish_and_it_converges",
        8,
        policy,
    );
    sc.hook_ms = (4_000, 4_000);
    // Three seconds into its four seconds of hooks it has changed the host.
    sc.crashes.push(CrashPlan {
        host: 3,
        at: 3_000,
        down_for: Some(25_000),
        when: CrashAt::Lifecycle,
        planned: false,
    });
    let (world, report) = settle(sc);
    assert_eq!(
        report.started("v1"),
        (9, 8),
        "h3 ran its lifecycle again from the start"
    );
    for (h, host) in world.hosts().iter().enumerate() {
        let state = host.planner().published().expect("a state");
        assert_eq!(state.step.map(|s| s.as_str()), Some("done"), "h{h}");
        assert_eq!(
            host.disk.clean(),
            Some(state.digest.as_deref().unwrap_or(""))
        );
    }
    let h3 = world.hosts()[3].planner().published().expect("a state");
    assert_eq!(
        h3.failures, 0,
        "the first crash of a run is run again, not counted"
    );
    assert!(report.progress().is_some());
}

#[test]
fn a_minority_partition_starts_nothing_and_catches_up_after_the_heal() {
    let mut sc = Scenario::quiet(
        9,
        "a_minority_partition_starts_nothing_and_catches_up_after_the_heal",
        9,
        rolling(Amount::Count(2)),
    );
    let (from, heal) = (12_000, 100_000);
    sc.partitions.push(PartitionPlan {
        at: from,
        lasts: heal - from,
        sides: vec![1, 1, 1, 0, 0, 0, 0, 0, 0],
    });
    let (world, report) = settle(sc);
    let starts = &report.figures.starts;
    let minority_before_heal = starts
        .iter()
        .filter(|(t, h, _)| *h < 3 && *t < heal)
        .count();
    assert_eq!(minority_before_heal, 0, "{starts:?}");
    // The majority goes on, but only up to the first cut-off host in the order: that one may
    // be alive and start unseen (once it sees a majority again), so it keeps its slot.
    let order = world.hosts()[3].planner().order();
    let ahead_of_the_cut = order
        .iter()
        .take_while(|n| !["h0", "h1", "h2"].contains(&n.as_str()));
    let went_on = starts
        .iter()
        .filter(|(t, h, _)| *h >= 3 && *t < heal)
        .count();
    assert!(
        went_on >= ahead_of_the_cut.count().min(1),
        "{starts:?} {order:?}"
    );
    assert_eq!(report.started("v1"), (9, 9));
    assert!(report.progress().is_some(), "the minority caught up");
}

/// A halt on one host of a rolling deployment: rounds until every host knows it.
fn halt_story(seed: u64, hosts: usize) -> Scenario {
    let mut sc = Scenario::quiet(
        seed,
        "halt_propagation",
        hosts,
        rolling(Amount::Percent(10)),
    );
    sc.warm_start = true;
    sc.agent.tick_ms = 15_000;
    sc.agent.throttle_ms = 1_000;
    sc.net.loss_permille = 50;
    let release = PlannedRelease {
        at: 15_000,
        ..sc.releases[0].clone()
    };
    sc.releases = vec![release];
    sc.commands.push(CommandPlan {
        at: 30_000,
        command: Command::Halt,
    });
    sc
}

fn halt_rounds(hosts: usize, seeds: Range<u64>) -> Vec<u64> {
    let mut rounds: Vec<u64> = sweep(seeds, |seed| halt_story(seed, hosts))
        .iter()
        .map(|r| r.halt_rounds().expect("every host learned the halt"))
        .collect();
    rounds.sort_unstable();
    rounds
}

#[test]
fn a_halt_reaches_every_one_of_100_hosts_within_a_few_rounds() {
    let rounds = halt_rounds(100, 0..3);
    println!("halt propagation at 100 hosts: {rounds:?} rounds");
    let bound = sim::check::bound::spread_rounds(100);
    assert!(rounds.iter().all(|r| *r <= bound), "{rounds:?} > {bound}");
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in a debug build; runs in release builds (scripts/bench-sim.sh)"
)]
fn a_halt_reaches_every_one_of_500_hosts_within_a_few_rounds() {
    let rounds = halt_rounds(500, 0..3);
    println!("halt propagation at 500 hosts: {rounds:?} rounds");
    let bound = sim::check::bound::spread_rounds(500);
    assert!(rounds.iter().all(|r| *r <= bound), "{rounds:?} > {bound}");
}

/// The coordination overhead runs expected to progress measured, against the bound.
fn print_progress_overhead(progress: &[(u64, u64, u64, u64, u64)]) {
    if progress.is_empty() {
        return;
    }
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    // Runs done before their last disturbance (a late crash, say) say nothing of the bound.
    let progress: Vec<_> = progress.iter().filter(|p| p.0 > 0).copied().collect();
    let overhead = sorted(progress.iter().map(|p| p.1).collect());
    let per_batch = sorted(progress.iter().map(|p| p.1 / p.3.max(1)).collect());
    let used = sorted(progress.iter().map(|p| p.1 * 100 / p.2.max(1)).collect());
    let whole = sorted(progress.iter().map(|p| p.0 * 100 / p.4.max(1)).collect());
    let at = |v: &[u64], q: usize| v[(v.len() - 1) * q / 100];
    let secs = |v: &[u64]| {
        format!(
            "median {} / p99 {} / max {}",
            sim::secs(at(v, 50)),
            sim::secs(at(v, 99)),
            sim::secs(at(v, 100))
        )
    };
    let shares = |v: &[u64]| format!("{}% / {}% / {}%", at(v, 50), at(v, 99), at(v, 100));
    println!(
        "progress: {} runs expected to finish after their last disturbance; time beyond batches x (hooks + min_healthy_time) \
         {}; per batch {}; share of the bound's coordination allowance used (median / p99 / \
         max) {}; share of the whole bound used {}",
        progress.len(),
        secs(&overhead),
        secs(&per_batch),
        shares(&used),
        shares(&whole)
    );
}

/// Benchmark figures (not a test): `scripts/bench-sim.sh`.
#[test]
#[ignore = "a benchmark: scripts/bench-sim.sh"]
fn bench() {
    let seeds = env_u64("SHOAL_SIM_BENCH_SEEDS").unwrap_or(2_000);
    let started = SystemTime::now();
    let sweep = parallel_sweep(0..seeds, CI_MAX_HOSTS);
    let secs = started.elapsed().unwrap_or_default().as_secs_f64();
    if let Some((_, first)) = sweep.failures.first() {
        panic!("{first}");
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "mixed seeds (groups of 3 to {CI_MAX_HOSTS}): {seeds} seeds, {} host-steps in {secs:.1} s \
         on {threads} threads: {:.0} host-steps/s, {:.1} ms a seed",
        sweep.steps,
        sweep.steps as f64 / secs,
        secs * 1000.0 * threads as f64 / seeds as f64
    );
    print_progress_overhead(&sweep.progress);
    println!(
        "progress: the run closest to its bound is seed {} ({}% of its coordination allowance)",
        sweep.worst.1, sweep.worst.0
    );
    let started = SystemTime::now();
    let report = sim::run(two_thousand_hosts_scenario()).unwrap_or_else(|f| panic!("{f}"));
    let secs = started.elapsed().unwrap_or_default().as_secs_f64();
    let (_, done) = report
        .figures
        .progress
        .expect("every host reached the release");
    println!(
        "2,000 hosts: {} host-steps in {secs:.1} s: {:.0} host-steps/s ({} simulated, every \
         host done at {} after the release at 30 s, {} gossip messages)",
        report.stats.steps,
        report.stats.steps as f64 / secs,
        sim::secs(report.sim_ms),
        sim::secs(done),
        report.stats.messages
    );
    for hosts in [100, 500] {
        let rounds = halt_rounds(hosts, 0..10);
        let mean = rounds.iter().sum::<u64>() as f64 / rounds.len() as f64;
        println!(
            "halt propagation at {hosts} hosts over 10 seeds: min {} / mean {mean:.1} / max {} \
             rounds",
            rounds[0],
            rounds[rounds.len() - 1]
        );
    }
}
