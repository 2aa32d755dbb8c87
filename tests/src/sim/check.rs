//! The properties of DESIGN.md ("Coordination over gossip"), checked after every planner step
//! against ground truth that no host sees whole: which hosts really run a lifecycle, what is
//! really on their disks, who is really cut off from whom, which halts each host has learned.
//!
//! The properties: 1, bounded parallelism; 2, canary gate; 3, halt; 4, partitions fail safe;
//! 5, progress; 6, crash safety; and at the end, one consistent final state. [`bound`] holds
//! the progress bound and the grace the partition check allows the failure detector.

use std::collections::BTreeMap;
use std::fmt;

use shoal_shared::gossip::Target;
use shoal_shared::rollout::Policy;
use shoal_shared::rollout::plan::MAX_INTERRUPTIONS;

use super::host::Host;
use super::scenario::{Scenario, secs};

pub mod bound;
mod finish;
mod progress;
mod rules;

pub use bound::{Bound, minority_grace};
use rules::{allowed, canary_gate, done_on, published_matches_work};

/// A property that does not hold.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which property.
    pub property: &'static str,
    /// The host it happened on, if one.
    pub host: Option<usize>,
    /// What happened, in a sentence or two.
    pub detail: String,
}

impl Violation {
    /// A violation of `property` by `host`.
    pub fn new(property: &'static str, host: Option<usize>, detail: String) -> Self {
        Self {
            property,
            host,
            detail,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Some(h) => write!(f, "{} (on h{h}): {}", self.property, self.detail),
            None => write!(f, "{}: {}", self.property, self.detail),
        }
    }
}

/// Property names, as reports print them.
pub mod property {
    /// 1.
    pub const PARALLELISM: &str = "property 1, bounded parallelism";
    /// 2.
    pub const CANARY: &str = "property 2, canary gate";
    /// 3.
    pub const HALT: &str = "property 3, halt";
    /// 4.
    pub const PARTITION: &str = "property 4, partitions fail safe";
    /// 5.
    pub const PROGRESS: &str = "property 5, progress";
    /// 6.
    pub const CRASH: &str = "property 6, crash safety";
    /// The end of the run.
    pub const FINAL: &str = "final state";
    /// What the planner asks of the agent.
    pub const CONTRACT: &str = "driver contract";
}

/// How a host's lifecycle of a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Done (healthy for `min_healthy_time`).
    Done,
    /// Failed.
    Failed,
    /// Cut short by a crash.
    Cut,
}

/// What the checker needs of a `Deploy` besides the host and target.
#[derive(Debug, Clone)]
pub struct Start {
    /// True time.
    pub t: u64,
    /// Whether the planner knew a halt of the target after the step.
    pub halted: bool,
    /// The planner's epoch for the target.
    pub epoch: u32,
    /// Alive members it saw (itself included) and members it knew.
    pub seen: (usize, usize),
    /// Hosts it has not heard from for the dead-node grace: they left its rollout order, and
    /// the next hosts in it took their places (a canary's too).
    pub gone: Vec<usize>,
}

#[derive(Debug, Default, Clone)]
struct HostTruth {
    /// Newest halt epoch learned, by deployment id.
    halts: BTreeMap<String, u32>,
    /// When it first learned a halt, by deployment id.
    halted_at: BTreeMap<String, u64>,
    /// How its last lifecycle of each target ended.
    last: BTreeMap<String, Ended>,
    /// The target whose lifecycle it runs.
    running: Option<String>,
    /// Since when it has been cut off from a majority of the group.
    minority_since: Option<u64>,
    /// Its lifecycles of each target cut short: (all, crashes).
    cuts: BTreeMap<String, (u32, u32)>,
}

#[derive(Debug, Clone)]
struct TargetTruth {
    id: String,
    revision: String,
    policy: Policy,
    /// Hosts in the order they first started it.
    starters: Vec<usize>,
    running: usize,
    promoted: bool,
    /// Lifecycles cut short that count as failures: a host's second crash in one target's
    /// lifecycle, or more cuts of any kind than `MAX_INTERRUPTIONS`. A planned stop and a
    /// first crash are no failure.
    interruptions: u32,
}

/// Figures a run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Most hosts that ran one target's lifecycle at once.
    pub peak_parallel: usize,
    /// (quiet since, every live host done) in a run expected to progress.
    pub progress: Option<(u64, u64)>,
    /// First halt learned and the last live host to learn it (true time), newest target.
    pub halt_spread: Option<(u64, u64)>,
    /// Every lifecycle started: (true time, host, revision).
    pub starts: Vec<(u64, usize, String)>,
}

/// The checker of one run.
#[derive(Debug)]
pub struct Checker {
    hosts: Vec<HostTruth>,
    targets: BTreeMap<String, TargetTruth>,
    newest: String,
    expects_progress: bool,
    /// Whether the canary gate (property 2) is checked: not when a host is cut off or down for
    /// longer than the dead-node grace, since the canaries are the first members of each host's
    /// order, and a member that leaves the order after the grace (and comes back after it)
    /// moves them (a limit of the planner's design, documented).
    canaries_checked: bool,
    bound: Bound,
    grace: u64,
    quiet_since: u64,
    /// Whether the newest release is on the channel yet.
    newest_published: bool,
    /// A halt happened that the run excuses (a dead host stalled the rollout past its
    /// progress deadline): the rollout is not expected to finish after it.
    excused_halt: bool,
    /// When every planned disturbance is over (progress is measured from then at the earliest).
    plan_end: u64,
    /// Figures measured so far.
    pub figures: Figures,
}

impl Checker {
    /// A checker for `sc`, whose channel holds `releases` (oldest first).
    pub fn new(sc: &Scenario, releases: &[(Target, Policy)]) -> Self {
        let targets = releases
            .iter()
            .map(|(t, p)| {
                let truth = TargetTruth {
                    id: t.id.clone(),
                    revision: t.revision.clone(),
                    policy: p.clone(),
                    starters: Vec::new(),
                    running: 0,
                    promoted: false,
                    interruptions: 0,
                };
                (t.id.clone(), truth)
            })
            .collect();
        Self {
            hosts: vec![HostTruth::default(); sc.hosts],
            targets,
            newest: releases
                .last()
                .map(|(t, _)| t.id.clone())
                .unwrap_or_default(),
            expects_progress: sc.expects_progress(),
            canaries_checked: !sc.membership_moves(),
            bound: Bound::of(sc),
            grace: minority_grace(sc),
            quiet_since: 0,
            newest_published: false,
            excused_halt: false,
            plan_end: 0,
            figures: Figures::default(),
        }
    }

    /// The progress bound of the run.
    pub fn bound(&self) -> &Bound {
        &self.bound
    }

    /// Something disturbed the run at `t` (a release, a heal, a restart, a promote): progress
    /// is measured from the last such moment.
    pub fn quiet(&mut self, t: u64) {
        self.quiet_since = self.quiet_since.max(t);
    }

    /// Every planned disturbance (partition, crash, command) is over by `t`.
    pub fn plan_ends(&mut self, t: u64) {
        self.plan_end = t;
    }

    /// The newest release appeared on the channel at `t`.
    pub fn newest_published(&mut self, t: u64) {
        self.newest_published = true;
        self.quiet(t);
    }

    /// The operator promoted `target`.
    pub fn promoted(&mut self, target: &str) {
        if let Some(truth) = self.targets.get_mut(target) {
            truth.promoted = true;
        }
    }

    /// A restart found a lifecycle of `target` on host `h` cut short: stopped on purpose
    /// (`planned`) or by a crash.
    pub fn interrupted(&mut self, h: usize, target: &str, planned: bool) {
        let (all, crashes) = self.hosts[h].cuts.entry(target.to_owned()).or_default();
        *all += 1;
        *crashes += u32::from(!planned);
        let counts = *all > MAX_INTERRUPTIONS || *crashes > 1;
        if let (Some(truth), true) = (self.targets.get_mut(target), counts) {
            truth.interruptions += 1;
        }
    }

    /// Which hosts are cut off from a majority now (`reachable[h]`: live hosts `h` can talk
    /// to, itself included; 0 for a host that is down). When the links changed (a partition
    /// started or healed), a host still cut off may have just heard fresh news from hosts it
    /// can newly reach, so its failure detector gets its grace again.
    pub fn topology(&mut self, t: u64, reachable: &[usize], links_changed: bool) {
        let n = self.hosts.len();
        for (truth, &r) in self.hosts.iter_mut().zip(reachable) {
            if r > 0 && r * 2 <= n {
                if links_changed {
                    truth.minority_since = Some(t);
                } else {
                    truth.minority_since.get_or_insert(t);
                }
            } else {
                truth.minority_since = None;
            }
        }
    }

    /// Host `h` asks to deploy `target`: properties 1 to 4 at the moment it starts.
    pub fn deploy(&mut self, h: usize, target: &Target, start: Start) -> Result<(), Violation> {
        self.check_halt(h, target, &start)?;
        self.check_partition(h, &start)?;
        let n = self.hosts.len();
        let Some(truth) = self.targets.get_mut(&target.id) else {
            return Err(Violation::new(
                property::CONTRACT,
                Some(h),
                format!(
                    "deploys {} which the channel never published",
                    target.revision
                ),
            ));
        };
        if !truth.starters.contains(&h) {
            truth.starters.push(h);
        }
        let start_record = (start.t, h, truth.revision.clone());
        self.figures.starts.push(start_record);
        let gate = if self.canaries_checked {
            canary_gate(truth, &self.hosts, h, n, &start.gone)
        } else {
            Ok(())
        };
        truth.running += 1;
        self.hosts[h].running = Some(target.id.clone());
        self.figures.peak_parallel = self.figures.peak_parallel.max(truth.running);
        gate.map_err(|detail| Violation::new(property::CANARY, Some(h), detail))?;
        let allowed = allowed(truth, n);
        if truth.running > allowed {
            let running: Vec<String> = (0..n)
                .filter(|k| self.hosts[*k].running.as_deref() == Some(&target.id))
                .map(|k| format!("h{k}"))
                .collect();
            return Err(Violation::new(
                property::PARALLELISM,
                Some(h),
                format!(
                    "{} hosts run the lifecycle of {} at once ({}), the policy allows {allowed} \
                     of {n}",
                    truth.running,
                    truth.revision,
                    running.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn check_halt(&self, h: usize, target: &Target, start: &Start) -> Result<(), Violation> {
        if start.halted {
            return Err(Violation::new(
                property::HALT,
                Some(h),
                format!("starts {} while it knows a halt of it", target.revision),
            ));
        }
        match self.hosts[h].halts.get(&target.id) {
            Some(&epoch) if start.epoch <= epoch => Err(Violation::new(
                property::HALT,
                Some(h),
                format!(
                    "starts {} in epoch {} after it learned its halt of epoch {epoch} (the halt \
                     was lost)",
                    target.revision, start.epoch
                ),
            )),
            _ => Ok(()),
        }
    }

    fn check_partition(&self, h: usize, start: &Start) -> Result<(), Violation> {
        let (alive, members) = start.seen;
        if alive * 2 <= members {
            return Err(Violation::new(
                property::PARTITION,
                Some(h),
                format!("starts while it sees only {alive} of {members} members alive"),
            ));
        }
        match self.hosts[h].minority_since {
            Some(since) if start.t.saturating_sub(since) > self.grace => Err(Violation::new(
                property::PARTITION,
                Some(h),
                format!(
                    "starts although it has been cut off from a majority of the {} hosts since \
                     {} (longer than the {} the failure detector needs); it saw {alive} of \
                     {members} alive",
                    self.hosts.len(),
                    secs(since),
                    secs(self.grace)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Host `h`'s lifecycle of `target` ended (reported, or cut by a crash).
    pub fn ended(&mut self, h: usize, target: &str, how: Ended) {
        let truth = &mut self.hosts[h];
        if truth.running.as_deref() == Some(target) {
            truth.running = None;
            if let Some(t) = self.targets.get_mut(target) {
                t.running = t.running.saturating_sub(1);
            }
        }
        truth.last.insert(target.to_owned(), how);
    }

    /// After every step of `host` (index `h`): what it publishes matches what it really does
    /// (property 6), and the halts it knows are remembered (property 3).
    /// `excused`: the host raised a progress-deadline halt while it saw a majority, a dead
    /// host holding a slot, and a live host waiting behind it (a host cut off for longer than
    /// the deadline stalls the rollout, and halting it then is what the deadline is for).
    pub fn observe(
        &mut self,
        h: usize,
        host: &Host,
        t: u64,
        excused: bool,
    ) -> Result<(), Violation> {
        let planner = host.planner();
        if let (Some(halt), Some(target)) = (planner.halted(), planner.target()) {
            let truth = &mut self.hosts[h];
            let epoch = truth.halts.entry(target.id.clone()).or_insert(halt.epoch);
            let new = *epoch < halt.epoch || !truth.halted_at.contains_key(&target.id);
            *epoch = (*epoch).max(halt.epoch);
            truth.halted_at.entry(target.id.clone()).or_insert(t);
            if new && halt.host == planner.node() {
                if excused {
                    self.excused_halt = true;
                } else {
                    self.check_halt_expected(h, planner, &halt.reason)?;
                }
            }
        }
        published_matches_work(planner, &host.work)
            .map_err(|detail| Violation::new(property::CRASH, Some(h), detail))
    }
}
