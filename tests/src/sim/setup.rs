//! The world at time zero: every host booted on revision v0 (knowing nobody, or every member
//! after a warm start), and the scenario's releases, partitions, crashes and commands on the
//! queue.

use shoal_shared::gossip::{GroupState, Health};
use shoal_shared::rollout::{Memory, Policy, Revision, Settings};

use super::gossip::Record;
use super::host::{Clock, Host};
use super::rng::Rng;
use super::scenario::{CrashAt, Promoting, ROUND, Scenario, millis};
use super::world::{Ev, World};

/// The revision every host runs before the first release.
pub fn base_revision() -> Revision {
    Revision {
        name: "v0".to_owned(),
        digest: digest(0),
    }
}

pub(super) fn digest(k: usize) -> String {
    format!("git:{k:040x}")
}

impl World {
    /// Puts the scenario's releases, partitions, crashes and commands on the queue.
    pub(super) fn start(&mut self) {
        for h in 0..self.hosts.len() {
            self.gossip.beat(h, 1, 0);
            self.gossip.publish(h, Record::of(self.hosts[h].planner()));
            self.start_host_timers(h);
        }
        self.at(ROUND, Ev::Round);
        for (i, r) in self.sc.releases.clone().iter().enumerate() {
            self.at(r.at, Ev::Publish(i));
        }
        for (i, p) in self.sc.partitions.clone().iter().enumerate() {
            self.at(p.at, Ev::Partition(i));
            self.at(p.at + p.lasts, Ev::Heal(i));
        }
        for (i, c) in self.sc.crashes.clone().iter().enumerate() {
            if c.when == CrashAt::Time {
                self.at(c.at, Ev::Crash(i));
            }
        }
        for (i, c) in self.sc.commands.clone().iter().enumerate() {
            self.at(
                c.at,
                Ev::Command {
                    index: i,
                    attempt: 0,
                },
            );
        }
        if let Promoting::WhenAsked {
            early_at: Some(at), ..
        } = self.sc.promote
        {
            self.at(
                at,
                Ev::Promote {
                    attempt: 0,
                    early: true,
                },
            );
        }
    }
}

pub(super) fn boot_hosts(
    sc: &Scenario,
    names: &[String],
    policy: &Policy,
    rng: &mut Rng,
) -> Vec<Host> {
    let base = base_revision();
    names
        .iter()
        .map(|name| {
            let clock = Clock::draw(rng, &sc.clocks);
            let settings = Settings {
                node: name.clone(),
                warmup: sc.agent.warmup_ms,
                forget_after: sc.agent.forget_after_ms,
                expected_members: None,
            };
            let mut memory = Memory {
                state: Some(GroupState {
                    revision: Some(base.name.clone()),
                    digest: Some(base.digest.clone()),
                    target: None,
                    step: None,
                    epoch: 0,
                    failures: 0,
                    reason: None,
                    members: None,
                    health: Health::None,
                    forgets: Vec::new(),
                    leaving: false,
                }),
                ..Memory::default()
            };
            if sc.warm_start {
                let now = clock.now(0);
                memory.members = names
                    .iter()
                    .filter(|m| *m != name)
                    .map(|m| (m.clone(), now))
                    .collect();
            }
            Host::boot(settings, memory, policy, clock, &base, 0)
        })
        .collect()
}

pub(super) fn plan_end(sc: &Scenario) -> u64 {
    let releases = sc.releases.iter().map(|r| r.at);
    let partitions = sc.partitions.iter().map(|p| p.at + p.lasts);
    let crashes = sc.crashes.iter().map(|c| c.at + c.down_for.unwrap_or(0));
    let commands = sc.commands.iter().map(|c| c.at);
    releases
        .chain(partitions)
        .chain(crashes)
        .chain(commands)
        .max()
        .unwrap_or(0)
}

pub(super) fn max_progress_deadline(sc: &Scenario) -> u64 {
    sc.releases
        .iter()
        .map(|r| millis(r.policy.progress_deadline))
        .max()
        .unwrap_or(0)
}
