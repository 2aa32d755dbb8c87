//! Drawing a scenario from a seed: the group's size, its releases and their policies, the
//! network, the agent's timings, clock skew, partitions, crashes and the operator's commands.

use std::time::Duration;

use shoal_shared::rollout::{Amount, Linear, Policy, Strategy};

use super::{
    AgentPlan, Clocks, Command, CommandPlan, CrashAt, CrashPlan, Net, PartitionPlan,
    PlannedRelease, Promoting, SECOND, Scenario,
};
use crate::sim::rng::Rng;

impl Scenario {
    /// A scenario drawn from `seed`: any strategy and policy, a group of up to `max_hosts`,
    /// and a mix of loss, delays, partitions, crashes, skew, failing releases, a second release
    /// and operator commands.
    pub fn mixed(seed: u64, max_hosts: usize) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_5ce0_a110_c8ed);
        let hosts = draw_hosts(&mut rng, max_hosts.max(3));
        let mut sc = Self::drawn(seed, hosts, &mut rng);
        sc.rerun = format!(
            "SHOAL_SIM_SEED={seed} SHOAL_SIM_MAX_HOSTS={max_hosts} cargo test -p shoal-tests \
             --test simulator -- one_seed --exact --nocapture"
        );
        sc
    }

    /// The mixed scenario of `seed` for a group of exactly `hosts`.
    pub fn mixed_sized(seed: u64, hosts: usize) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_5ce0_a110_c8ed);
        let mut sc = Self::drawn(seed, hosts.max(3), &mut rng);
        sc.rerun = format!(
            "SHOAL_SIM_SEED={seed} SHOAL_SIM_HOSTS={hosts} cargo test -p shoal-tests --test \
             simulator -- one_seed --exact --nocapture"
        );
        sc
    }

    fn drawn(seed: u64, hosts: usize, rng: &mut Rng) -> Self {
        let mut rng = rng.fork();
        let clean = rng.chance(550);
        let mut sc = Self::quiet(seed, "mixed", hosts, Policy::default());
        sc.hook_ms = {
            let lo = rng.range(SECOND, 5 * SECOND);
            (lo, lo + rng.range(0, 4 * SECOND))
        };
        sc.revert_ms = (SECOND, rng.range(SECOND, 4 * SECOND));
        sc.net = draw_net(&mut rng);
        sc.agent = draw_agent(&mut rng);
        sc.clocks = Clocks {
            max_offset_ms: rng.range(0, 30 * 24 * 3600 * SECOND),
            max_drift_ppm: rng.range(0, 10_000),
        };
        let first_at = if rng.chance(100) {
            rng.range(0, 5 * SECOND)
        } else {
            rng.range(20 * SECOND, 60 * SECOND)
        };
        let policy = draw_policy(&mut rng, hosts);
        let fail = if clean { 0 } else { draw_failures(&mut rng) };
        sc.releases = vec![PlannedRelease {
            at: first_at,
            policy,
            fail_permille: fail,
        }];
        if rng.chance(250) {
            let policy = draw_policy(&mut rng, hosts);
            let fail = if clean || rng.chance(500) { 0 } else { fail };
            sc.releases.push(PlannedRelease {
                at: first_at + rng.range(5 * SECOND, 120 * SECOND),
                policy,
                fail_permille: fail,
            });
        }
        sc.partitions = draw_partitions(&mut rng, hosts, first_at, sc.agent.forget_after_ms);
        sc.crashes = draw_crashes(&mut rng, &sc, clean);
        if !clean && rng.chance(250) {
            sc.commands = draw_commands(&mut rng, first_at);
        } else if fail > 0 && rng.chance(300) {
            sc.commands = vec![CommandPlan {
                at: first_at + rng.range(60, 180) * SECOND,
                command: Command::Resume,
            }];
        }
        sc.promote = Promoting::WhenAsked {
            after_ms: rng.range(0, 15 * SECOND),
            early_at: rng
                .chance(200)
                .then(|| first_at + rng.range(0, 60 * SECOND)),
        };
        if sc.expects_progress() {
            sc.outlast_disturbances();
        }
        sc
    }
}

fn draw_hosts(rng: &mut Rng, max: usize) -> usize {
    let max = max as u64;
    let n = match rng.below(100) {
        0..=69 => rng.range(3, 10),
        70..=91 => rng.range(11, 25),
        92..=97 => rng.range(26, 50),
        _ => rng.range(51, 200),
    };
    n.min(max) as usize
}

fn draw_net(rng: &mut Rng) -> Net {
    let loss = if rng.chance(500) {
        rng.range(0, 50)
    } else {
        rng.range(50, 300)
    };
    let lo = rng.range(0, 50);
    Net {
        fanout: 3,
        loss_permille: loss as u32,
        delay_ms: (lo, lo + rng.range(0, 2_000)),
        detect_rounds: rng.range(4, 8),
    }
}

fn draw_agent(rng: &mut Rng) -> AgentPlan {
    AgentPlan {
        poll_ms: rng.range(10, 20) * SECOND,
        check_ms: (rng.range(100, 500), rng.range(500, 3 * SECOND)),
        tick_ms: rng.range(8, 20) * SECOND,
        debounce_ms: rng.range(0, 300),
        throttle_ms: rng.range(SECOND, 5 * SECOND / 2),
        warmup_ms: rng.range(8, 15) * SECOND,
        // The mesh's dead-node grace, as operators set it (the default is 5 minutes).
        forget_after_ms: rng.range(60, 600) * SECOND,
    }
}

fn draw_amount(rng: &mut Rng, counts: (u64, u64), percents: (u64, u64)) -> Amount {
    if rng.chance(500) {
        Amount::Count(rng.range(counts.0, counts.1) as u32)
    } else {
        Amount::Percent(rng.range(percents.0, percents.1) as u32)
    }
}

/// A random policy whose rollout takes at most about ten batches, so debug runs stay quick.
pub fn draw_policy(rng: &mut Rng, hosts: usize) -> Policy {
    let strategies = [
        Strategy::AllAtOnce,
        Strategy::OneAtATime,
        Strategy::HalfAtATime,
        Strategy::Rolling,
        Strategy::Canary,
        Strategy::Linear,
    ];
    let mut strategy = strategies[rng.index(strategies.len())];
    if strategy == Strategy::OneAtATime && hosts > 10 {
        strategy = Strategy::Rolling;
    }
    let at_least = hosts.div_ceil(10);
    let mut max_parallel = draw_amount(rng, (1, 4), (10, 60));
    if max_parallel.of(hosts) < at_least {
        max_parallel = Amount::Count(at_least as u32);
    }
    let mut step = draw_amount(rng, (1, 3), (10, 50));
    if step.of(hosts) < at_least {
        step = Amount::Percent(10);
    }
    Policy {
        strategy,
        max_parallel,
        canary: draw_amount(rng, (1, 3), (5, 30)),
        linear: Some(Linear {
            step,
            every: Duration::from_millis(rng.range(0, 8) * SECOND),
        }),
        min_healthy_time: Duration::from_millis(if rng.chance(400) {
            0
        } else {
            rng.range(1, 8) * SECOND
        }),
        healthy_deadline: Duration::from_secs(300),
        progress_deadline: Duration::from_millis(rng.range(60, 180) * SECOND),
        max_failures: rng.range(0, 2) as u32,
        auto_revert: rng.chance(750),
        auto_promote: rng.chance(600),
    }
}

fn draw_failures(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0..=3 => 0,
        4..=5 => 1000,
        _ => rng.range(50, 400) as u32,
    }
}

/// Partitions: a few, and one in five outlasting the dead-node grace `grace` (the side that
/// does not hear from the others forgets them from its order, and must still start nothing
/// when it is a minority).
fn draw_partitions(rng: &mut Rng, hosts: usize, first_at: u64, grace: u64) -> Vec<PartitionPlan> {
    let count = match rng.below(10) {
        0..=5 => 0,
        6..=8 => 1,
        _ => 2,
    };
    // Not before membership has spread (15 s), and one at a time.
    let mut at = first_at.saturating_sub(20 * SECOND).max(15 * SECOND);
    (0..count)
        .map(|_| {
            at += rng.range(0, 120 * SECOND);
            let lasts = if rng.chance(200) {
                grace + rng.range(10, 900) * SECOND
            } else {
                rng.range(5, 200) * SECOND
            };
            let sides = if rng.chance(200) {
                (0..hosts).map(|_| rng.below(3) as u8).collect()
            } else {
                let mut sides = vec![0u8; hosts];
                let minority = rng.range(1, (hosts / 2) as u64) as usize;
                for _ in 0..minority {
                    let h = rng.index(hosts);
                    sides[h] = 1;
                }
                sides
            };
            let plan = PartitionPlan { at, lasts, sides };
            at += lasts + rng.range(1, 30) * SECOND;
            plan
        })
        .collect()
}

fn draw_crashes(rng: &mut Rng, sc: &Scenario, clean: bool) -> Vec<CrashPlan> {
    let count = match rng.below(10) {
        0..=4 => 0,
        5..=7 => 1,
        _ => rng.range(2, 3),
    };
    let first_at = sc.releases.first().map_or(0, |r| r.at);
    // Not before membership has spread (15 s): a host nobody has heard of when a canary
    // release starts computes another order, and with it another canary set, than the hosts
    // that started without it (a limit of the planner's design, not checked here).
    let mut crashes: Vec<CrashPlan> = (0..count)
        .map(|_| CrashPlan {
            host: rng.index(sc.hosts),
            at: rng.range(15 * SECOND, first_at + 150 * SECOND),
            down_for: if !clean && rng.chance(150) {
                None
            } else {
                Some(rng.range(3, 60) * SECOND)
            },
            when: CrashAt::Time,
            // Operators restart and upgrade agents at any time.
            planned: rng.chance(300),
        })
        .collect();
    // Stops and crashes in the middle of work: a lifecycle (a planned stop, or a first crash,
    // runs it again), sometimes its second run too (a second crash counts as a failure), then
    // (often) the revert that follows; or a revert of any cause (its own failure, a halt).
    if !clean && rng.chance(250) {
        let host = rng.index(sc.hosts);
        let (hooks_lo, hooks_hi) = sc.hook_ms;
        let (revert_lo, revert_hi) = sc.revert_ms;
        let down = |rng: &mut Rng| Some(rng.range(3, 30) * SECOND);
        if rng.chance(500) {
            let runs = if rng.chance(500) { 2 } else { 1 };
            for _ in 0..runs {
                crashes.push(CrashPlan {
                    host,
                    at: rng.range(hooks_lo / 2, hooks_hi),
                    down_for: down(rng),
                    when: CrashAt::Lifecycle,
                    planned: rng.chance(300),
                });
            }
        }
        crashes.push(CrashPlan {
            host,
            at: rng.range(revert_lo / 4, revert_hi),
            down_for: down(rng),
            when: CrashAt::Revert,
            planned: rng.chance(300),
        });
    }
    crashes
}

fn draw_commands(rng: &mut Rng, first_at: u64) -> Vec<CommandPlan> {
    let halt_at = first_at + rng.range(0, 100 * SECOND);
    let mut commands = vec![CommandPlan {
        at: halt_at,
        command: Command::Halt,
    }];
    if rng.chance(500) {
        commands.push(CommandPlan {
            at: halt_at + rng.range(10, 60) * SECOND,
            command: Command::Resume,
        });
    }
    commands
}
