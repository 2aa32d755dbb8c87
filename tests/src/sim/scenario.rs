//! What one simulated run is made of: the group, its releases and their policies, the network,
//! the faults and the operator's commands, all drawn from one seed (`Scenario::mixed`) or set by
//! a test telling one story. Times are milliseconds of true (simulated) time.

use std::fmt::Write as _;
use std::time::Duration;

use shoal_shared::rollout::{Policy, Strategy};

/// One gossip round, in milliseconds of true time.
pub const ROUND: u64 = 1000;

/// One second, in milliseconds.
pub const SECOND: u64 = 1000;

mod draw;

pub use draw::draw_policy;

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed every random decision of the run comes from.
    pub seed: u64,
    /// What produced it (shown in reports).
    pub label: String,
    /// The command that re-runs exactly this run.
    pub rerun: String,
    /// Hosts in the group.
    pub hosts: usize,
    /// Releases published on the channel, oldest first.
    pub releases: Vec<PlannedRelease>,
    /// How long a lifecycle's hooks take (before `min_healthy_time`), as a range.
    pub hook_ms: (u64, u64),
    /// How long a revert takes, as a range.
    pub revert_ms: (u64, u64),
    /// The simulated network.
    pub net: Net,
    /// Partitions, each healing after a while.
    pub partitions: Vec<PartitionPlan>,
    /// Host crashes (and restarts).
    pub crashes: Vec<CrashPlan>,
    /// `shoal halt` / `shoal resume` at given times, on a host chosen then.
    pub commands: Vec<CommandPlan>,
    /// How the operator promotes canary deployments that wait for `shoal promote`.
    pub promote: Promoting,
    /// Clock skew between hosts.
    pub clocks: Clocks,
    /// The agent's own timings.
    pub agent: AgentPlan,
    /// Hosts start knowing every member (as after a previous run) instead of nobody.
    pub warm_start: bool,
}

/// A release and when it appears on the channel.
#[derive(Debug, Clone)]
pub struct PlannedRelease {
    /// When it is published (true time).
    pub at: u64,
    /// Its rollout policy.
    pub policy: Policy,
    /// Each lifecycle of it fails with this probability (per mille); 1000 is a broken release.
    pub fail_permille: u32,
}

/// The simulated gossip network.
#[derive(Debug, Clone)]
pub struct Net {
    /// Peers each live host exchanges with per round.
    pub fanout: usize,
    /// Messages lost (per mille).
    pub loss_permille: u32,
    /// One-way delay range of a message.
    pub delay_ms: (u64, u64),
    /// The failure detector declares a node dead after this many rounds without news of it.
    pub detect_rounds: u64,
}

/// A partition of the hosts into sides, healed after a while.
#[derive(Debug, Clone)]
pub struct PartitionPlan {
    /// When it starts.
    pub at: u64,
    /// How long it lasts.
    pub lasts: u64,
    /// The side of each host; hosts on different sides cannot talk.
    pub sides: Vec<u8>,
}

/// A host crash.
#[derive(Debug, Clone)]
pub struct CrashPlan {
    /// Which host.
    pub host: usize,
    /// When (true time), or how long after the start of the work `when` names.
    pub at: u64,
    /// How long it stays down; `None` for good.
    pub down_for: Option<u64>,
    /// What `at` counts from.
    pub when: CrashAt,
    /// A planned stop (a restart or an upgrade of the agent) rather than a crash: the agent
    /// stops its work on purpose and says so in its journal.
    pub planned: bool,
}

/// What a crash's time counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashAt {
    /// The start of the run.
    Time,
    /// The start of a lifecycle of the host: the first, or for a second such crash of the
    /// host, the next after the first crash.
    Lifecycle,
    /// The start of the host's first revert (whatever caused it: its own failure, a halt, or
    /// the recovery from an earlier crash).
    Revert,
}

/// An operator command at a given time.
#[derive(Debug, Clone)]
pub struct CommandPlan {
    /// When.
    pub at: u64,
    /// Which.
    pub command: Command,
}

/// Commands the operator may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `shoal halt`.
    Halt,
    /// `shoal resume` (on a host that shows the halt; retried until one does).
    Resume,
}

/// How the operator runs `shoal promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promoting {
    /// Never.
    Never,
    /// This long after some host's status says the canaries are healthy.
    WhenAsked {
        /// Reaction time.
        after_ms: u64,
        /// Also try once, early, at this time (it may be refused or come before the canaries).
        early_at: Option<u64>,
    },
}

/// Clock skew: every host has its own offset and rate.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    /// Offsets are drawn from `0..=max_offset_ms`.
    pub max_offset_ms: u64,
    /// Rates are drawn from `1 ± max_drift_ppm / 10^6`.
    pub max_drift_ppm: u64,
}

/// The agent's timings around the planner.
#[derive(Debug, Clone, Copy)]
pub struct AgentPlan {
    /// Channel poll interval (± 20 % jitter).
    pub poll_ms: u64,
    /// How long a channel check asked for by a gossip hint takes, as a range.
    pub check_ms: (u64, u64),
    /// The planner steps at least this often.
    pub tick_ms: u64,
    /// A change in the view is acted on after this long.
    pub debounce_ms: u64,
    /// ... and at most once per this long.
    pub throttle_ms: u64,
    /// `Settings::warmup`.
    pub warmup_ms: u64,
    /// `Settings::forget_after`.
    pub forget_after_ms: u64,
}

impl Scenario {
    /// A quiet group of `hosts` rolling out one release with `policy`: no faults, no skew
    /// beyond a little, the release published once membership has settled. Stories start here.
    pub fn quiet(seed: u64, label: &str, hosts: usize, policy: Policy) -> Self {
        Self {
            seed,
            label: label.to_owned(),
            rerun: format!("cargo test -p shoal-tests --test simulator -- {label} --exact"),
            hosts,
            releases: vec![PlannedRelease {
                at: 30 * SECOND,
                policy,
                fail_permille: 0,
            }],
            hook_ms: (2 * SECOND, 5 * SECOND),
            revert_ms: (SECOND, 3 * SECOND),
            net: Net {
                fanout: 3,
                loss_permille: 0,
                delay_ms: (5, 300),
                detect_rounds: 6,
            },
            partitions: Vec::new(),
            crashes: Vec::new(),
            commands: Vec::new(),
            promote: Promoting::Never,
            clocks: Clocks {
                max_offset_ms: 3_600_000,
                max_drift_ppm: 2_000,
            },
            agent: AgentPlan {
                poll_ms: 15 * SECOND,
                check_ms: (200, 2 * SECOND),
                tick_ms: 3 * SECOND,
                debounce_ms: 100,
                throttle_ms: 500,
                warmup_ms: 10 * SECOND,
                forget_after_ms: 24 * 3600 * SECOND,
            },
            warm_start: false,
        }
    }

    /// Lengthens each release's progress deadline past the longest stall a clean run can see:
    /// a host cut off (crashed or partitioned) holding a slot for the whole disturbance, then
    /// warming up, waiting for a tick and a linear step, and running its lifecycle. A deadline
    /// shorter than that halts the rollout by design, which is not what a clean run tests.
    pub fn outlast_disturbances(&mut self) {
        let crashes = self.crashes.iter().filter_map(|c| c.down_for);
        let partitions = self.partitions.iter().map(|p| p.lasts);
        let longest = crashes.chain(partitions).max().unwrap_or(0);
        let a = self.agent;
        for i in 0..self.releases.len() {
            let policy = &self.releases[i].policy;
            let every = policy.linear.map_or(0, |l| millis(l.every));
            let stall = longest
                + a.warmup_ms
                + 2 * a.tick_ms
                + a.throttle_ms
                + every
                + self.lifecycle_max(policy)
                + 60 * SECOND;
            let deadline = &mut self.releases[i].policy.progress_deadline;
            *deadline = (*deadline).max(Duration::from_millis(stall));
        }
    }

    /// Whether a host is cut off or down for longer than the dead-node grace, so that members
    /// leave the others' rollout orders (and may come back).
    pub fn membership_moves(&self) -> bool {
        let grace = self.agent.forget_after_ms;
        self.partitions.iter().any(|p| p.lasts > grace)
            || self
                .crashes
                .iter()
                .any(|c| c.down_for.is_none_or(|d| d > grace))
    }

    /// Whether nothing in the run is meant to fail: no failing release, no operator halt, no
    /// host gone for good. Such a run must finish on the newest release in bounded time
    /// (property 5), unless restarts cut more lifecycles short than `max_failures` tolerates.
    pub fn expects_progress(&self) -> bool {
        self.releases.iter().all(|r| r.fail_permille == 0)
            && self.commands.iter().all(|c| c.command != Command::Halt)
            && self.crashes.iter().all(|c| c.down_for.is_some())
    }

    /// The newest release.
    pub fn newest(&self) -> Option<&PlannedRelease> {
        self.releases.last()
    }

    /// The longest lifecycle of `policy`: hooks plus `min_healthy_time`.
    pub fn lifecycle_max(&self, policy: &Policy) -> u64 {
        self.hook_ms.1 + millis(policy.min_healthy_time)
    }

    /// One paragraph for reports.
    pub fn describe(&self) -> String {
        let mut text = format!("{} · {} hosts", self.label, self.hosts);
        for (i, r) in self.releases.iter().enumerate() {
            let _ = write!(
                text,
                "\n  release v{} at {} · {}",
                i + 1,
                secs(r.at),
                describe_policy(&r.policy)
            );
            if r.fail_permille > 0 {
                let _ = write!(text, " · lifecycles fail {}‰", r.fail_permille);
            }
        }
        let _ = write!(
            text,
            "\n  hooks {}–{} · reverts {}–{} · gossip fanout {} · loss {}‰ · delay {}–{} ms · \
             dead after {} rounds",
            secs(self.hook_ms.0),
            secs(self.hook_ms.1),
            secs(self.revert_ms.0),
            secs(self.revert_ms.1),
            self.net.fanout,
            self.net.loss_permille,
            self.net.delay_ms.0,
            self.net.delay_ms.1,
            self.net.detect_rounds
        );
        let a = &self.agent;
        let _ = write!(
            text,
            "\n  poll {} · tick {} · debounce {} ms · throttle {} ms · warmup {} · clock offsets \
             ≤ {} · drift ≤ {} ppm{}",
            secs(a.poll_ms),
            secs(a.tick_ms),
            a.debounce_ms,
            a.throttle_ms,
            secs(a.warmup_ms),
            secs(self.clocks.max_offset_ms),
            self.clocks.max_drift_ppm,
            if self.warm_start {
                " · warm start"
            } else {
                ""
            }
        );
        for p in &self.partitions {
            let minority: Vec<usize> = (0..self.hosts).filter(|h| p.sides[*h] != 0).collect();
            let _ = write!(
                text,
                "\n  partition at {} for {}: hosts off side 0: {:?}",
                secs(p.at),
                secs(p.lasts),
                minority
            );
        }
        for c in &self.crashes {
            let down = c
                .down_for
                .map_or("for good".to_owned(), |d| format!("for {}", secs(d)));
            let at = match c.when {
                CrashAt::Time => format!("at {}", secs(c.at)),
                CrashAt::Lifecycle => format!("{} into a lifecycle", secs(c.at)),
                CrashAt::Revert => format!("{} into its first revert", secs(c.at)),
            };
            let what = if c.planned { "planned stop" } else { "crash" };
            let _ = write!(text, "\n  {what} of h{} {at} {down}", c.host);
        }
        for c in &self.commands {
            let _ = write!(text, "\n  operator {:?} at {}", c.command, secs(c.at));
        }
        text
    }
}

/// A policy in one line.
pub fn describe_policy(p: &Policy) -> String {
    let mut text = p.strategy.as_str().to_owned();
    match p.strategy {
        Strategy::Rolling => {
            let _ = write!(text, " max_parallel {}", p.max_parallel);
        }
        Strategy::Canary => {
            let _ = write!(
                text,
                " canary {} then max_parallel {} auto_promote {}",
                p.canary, p.max_parallel, p.auto_promote
            );
        }
        Strategy::Linear => {
            if let Some(l) = p.linear {
                let _ = write!(text, " step {} every {}", l.step, secs(millis(l.every)));
            }
        }
        _ => {}
    }
    let _ = write!(
        text,
        " · min_healthy_time {} · max_failures {} · auto_revert {} · progress_deadline {}",
        secs(millis(p.min_healthy_time)),
        p.max_failures,
        p.auto_revert,
        secs(millis(p.progress_deadline))
    );
    text
}

/// Milliseconds of a duration.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `12.345s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}
