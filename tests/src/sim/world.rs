//! The simulated world: hosts, gossip, network, channel, and one queue of timed events that
//! drives them all in true (simulated) time. Events at the same time run in the order they
//! were scheduled, so a run depends on nothing but its seed.
//!
//! Planner stepping, work and restarts live in `drive.rs`; the operator in `operator.rs`.

use shoal_shared::gossip::Target;
use shoal_shared::rollout::{Policy, deployment_id};

use super::check::{Checker, Violation, property};
use super::gossip::{Gossip, Snapshot};
use super::host::Host;
use super::net::Network;
use super::queue::Queue;
use super::rng::Rng;
use super::scenario::{ROUND, Scenario};
use super::setup::{boot_hosts, digest, max_progress_deadline, plan_end};
use super::trace::Trace;

/// The group's name (deployment ids derive from it).
pub const GROUP: &str = "web";

/// Something that happens at a given time.
#[derive(Debug, Clone)]
pub enum Ev {
    /// Once a round: the operator looks, properties with deadlines are checked, the run may end.
    Round,
    /// `host` gossips with a few peers.
    Gossip { host: usize, incarnation: u32 },
    /// A gossip message arrives.
    Deliver {
        from: usize,
        to: usize,
        snapshot: Snapshot,
        reply: bool,
    },
    /// `host`'s planner steps (its tick, or a change of its view).
    Step { host: usize, token: u64 },
    /// A lifecycle ends.
    LifecycleEnd { host: usize, nonce: u64 },
    /// A revert ends.
    RevertEnd { host: usize, nonce: u64 },
    /// `host` polls the channel.
    Poll { host: usize, incarnation: u32 },
    /// `host` checks the channel after a gossip hint.
    Check { host: usize, incarnation: u32 },
    /// Release `index` appears on the channel.
    Publish(usize),
    /// Partition `index` starts.
    Partition(usize),
    /// Partition `index` heals.
    Heal(usize),
    /// Crash `index` happens.
    Crash(usize),
    /// `host` starts again.
    Restart(usize),
    /// Operator command `index`, attempt `attempt`.
    Command { index: usize, attempt: u32 },
    /// The operator promotes the newest release (attempt `attempt`).
    Promote { attempt: u32, early: bool },
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Planner steps (and operator commands).
    pub steps: u64,
    /// Gossip messages sent (not lost).
    pub messages: u64,
    /// Rounds simulated.
    pub rounds: u64,
}

/// How a run ended.
#[derive(Debug)]
pub enum End {
    /// In a consistent final state.
    Settled,
    /// A property failed.
    Violated(Violation),
}

/// The whole simulated world.
#[derive(Debug)]
pub struct World {
    pub(super) sc: Scenario,
    pub(super) rng: Rng,
    pub(super) t: u64,
    pub(super) hosts: Vec<Host>,
    pub(super) gossip: Gossip,
    pub(super) net: Network,
    queue: Queue<Ev>,
    /// The channel: every release (oldest first) and how many are published.
    pub(super) releases: Vec<(Target, Policy, u32)>,
    pub(super) published: usize,
    pub(super) default_policy: Policy,
    pub(super) checker: Checker,
    pub(super) trace: Trace,
    pub(super) stats: Stats,
    /// When every planned disturbance is over.
    plan_end: u64,
    /// When the run gives up waiting for a final state.
    limit: u64,
    /// The operator has asked for the promote of the newest release.
    pub(super) promote_asked: bool,
    /// The partition in force.
    partition: Option<usize>,
    /// Crashes planned mid-lifecycle that are scheduled already.
    pub(super) armed: Vec<bool>,
    /// Restarts scheduled and not yet done: the run does not end before them.
    pub(super) restarts_due: usize,
}

impl World {
    /// The world of `sc` at time 0, before anything happened.
    pub fn new(sc: Scenario) -> Self {
        let mut rng = Rng::new(sc.seed);
        let releases: Vec<(Target, Policy, u32)> = sc
            .releases
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let digest = digest(i + 1);
                let target = Target {
                    id: deployment_id(GROUP, &digest),
                    revision: format!("v{}", i + 1),
                    digest,
                };
                (target, r.policy.clone(), r.fail_permille)
            })
            .collect();
        let names: Vec<String> = (0..sc.hosts).map(|h| format!("h{h}")).collect();
        let default_policy = Policy::default();
        let hosts = boot_hosts(&sc, &names, &default_policy, &mut rng);
        let pairs: Vec<(Target, Policy)> = releases
            .iter()
            .map(|(t, p, _)| (t.clone(), p.clone()))
            .collect();
        let mut checker = Checker::new(&sc, &pairs);
        let dead_after = sc.net.detect_rounds * ROUND;
        let plan_end = plan_end(&sc);
        checker.plan_ends(plan_end);
        let armed = vec![false; sc.crashes.len()];
        let limit = plan_end + checker.bound().total() + 2 * max_progress_deadline(&sc) + 300_000;
        Self {
            net: Network::new(&sc.net),
            gossip: Gossip::new(names, dead_after, sc.agent.forget_after_ms),
            sc,
            rng,
            t: 0,
            hosts,
            queue: Queue::default(),
            releases,
            published: 0,
            default_policy,
            checker,
            trace: Trace::default(),
            stats: Stats::default(),
            plan_end,
            limit,
            promote_asked: false,
            partition: None,
            armed,
            restarts_due: 0,
        }
    }

    /// Schedules `ev` at `at`.
    pub(super) fn at(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    /// Runs until the run settles or a property fails.
    pub fn run(&mut self) -> End {
        self.start();
        while let Some((at, ev)) = self.queue.pop() {
            self.t = at;
            match self.handle(ev) {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(violation) => return End::Violated(violation),
            }
        }
        End::Violated(Violation::new(
            property::FINAL,
            None,
            "nothing left to happen".to_owned(),
        ))
    }

    /// Gossip, polls and ticks of a host that just (re)started.
    pub(super) fn start_host_timers(&mut self, h: usize) {
        let incarnation = self.hosts[h].incarnation;
        let t = self.t;
        let phase = self.rng.below(ROUND);
        self.at(
            t + phase,
            Ev::Gossip {
                host: h,
                incarnation,
            },
        );
        let poll = self.rng.below(self.sc.agent.poll_ms);
        self.at(
            t + poll,
            Ev::Poll {
                host: h,
                incarnation,
            },
        );
        let tick = self.rng.below(self.sc.agent.tick_ms);
        self.schedule_step(h, t + tick);
    }

    fn handle(&mut self, ev: Ev) -> Result<Option<End>, Violation> {
        match ev {
            Ev::Round => return self.round(),
            Ev::Gossip { host, incarnation } => self.gossip_round(host, incarnation),
            Ev::Deliver {
                from,
                to,
                snapshot,
                reply,
            } => self.deliver(from, to, &snapshot, reply),
            Ev::Step { host, token } => self.timed_step(host, token)?,
            Ev::LifecycleEnd { host, nonce } => self.lifecycle_end(host, nonce)?,
            Ev::RevertEnd { host, nonce } => self.revert_end(host, nonce)?,
            Ev::Poll { host, incarnation } => self.poll(host, incarnation)?,
            Ev::Check { host, incarnation } => {
                if self.valid(host, incarnation) {
                    self.check_channel(host)?;
                }
            }
            Ev::Publish(i) => self.publish(i),
            Ev::Partition(i) => self.partition(i),
            Ev::Heal(i) => self.heal(i),
            Ev::Crash(i) => self.crash(i)?,
            Ev::Restart(h) => self.restart(h)?,
            Ev::Command { index, attempt } => self.command(index, attempt)?,
            Ev::Promote { attempt, early } => self.promote(attempt, early)?,
        }
        Ok(None)
    }

    /// Whether an event of `incarnation` still concerns `host`.
    pub(super) fn valid(&self, host: usize, incarnation: u32) -> bool {
        self.hosts[host].up && self.hosts[host].incarnation == incarnation
    }

    fn round(&mut self) -> Result<Option<End>, Violation> {
        self.stats.rounds += 1;
        self.watch_for_promotion();
        self.checker.round(self.t, &self.hosts)?;
        if self.t >= self.plan_end && self.restarts_due == 0 {
            match self.checker.final_state(&self.hosts) {
                Ok(()) => return Ok(Some(End::Settled)),
                Err(why) if self.t >= self.limit => {
                    return Err(Violation::new(
                        property::FINAL,
                        None,
                        format!(
                            "no consistent final state {} after the last disturbance: {why}",
                            super::scenario::secs(self.t - self.plan_end)
                        ),
                    ));
                }
                Err(_) => {}
            }
        }
        self.at(self.t + ROUND, Ev::Round);
        Ok(None)
    }

    fn publish(&mut self, i: usize) {
        self.published = self.published.max(i + 1);
        let revision = self.releases[i].0.revision.clone();
        self.trace
            .note(self.t, None, format!("the channel publishes {revision}"));
        if i + 1 == self.releases.len() {
            self.checker.newest_published(self.t);
        }
    }

    fn partition(&mut self, i: usize) {
        let sides = self.sc.partitions[i].sides.clone();
        let text = format!("partition: sides {sides:?}");
        self.net.partition(sides);
        self.partition = Some(i);
        self.trace.note(self.t, None, text);
        self.topology_changed(true);
    }

    fn heal(&mut self, i: usize) {
        if self.partition != Some(i) {
            return;
        }
        self.partition = None;
        self.net.heal();
        self.trace
            .note(self.t, None, "the partition heals".to_owned());
        self.topology_changed(true);
        self.checker.quiet(self.t);
    }

    /// Tells the checker who can reach whom now (`links`: a partition started or healed).
    pub(super) fn topology_changed(&mut self, links: bool) {
        let n = self.hosts.len();
        let reachable: Vec<usize> = (0..n)
            .map(|h| {
                if !self.hosts[h].up {
                    return 0;
                }
                (0..n)
                    .filter(|k| self.hosts[*k].up && self.net.connected(h, *k))
                    .count()
            })
            .collect();
        self.checker.topology(self.t, &reachable, links);
    }

    /// What the run counted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The checker (and its figures).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The trace of the run.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// The current true time.
    pub fn now(&self) -> u64 {
        self.t
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
}
