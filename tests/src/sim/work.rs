//! The work hosts carry out for their [`GroupHost`](shoal_shared::rollout::GroupHost), and what
//! crashes do to it: a lifecycle takes its hooks' time plus `min_healthy_time` and may fail
//! (changing the disk part-way), a revert takes a while; a crash cuts either short where it is,
//! and a restart starts the host again from its journal as written and tells it what the disk
//! shows of the run cut short. Every decision (what to revert to, whether to run again, what to
//! retry) is the host's own code, the agent's.

use std::path::PathBuf;

use shoal_shared::gossip::Target;
use shoal_shared::rollout::journal::PREPARE;
use shoal_shared::rollout::{Ended, Failure, InFlight, Revision, Work as Asked};

use super::check::{Ended as Truth, Start, Violation, property};
use super::gossip::Record;
use super::host::{Lifecycle, Work};
use super::scenario::{CrashAt, ROUND, millis, secs};
use super::world::{Ev, World};

impl World {
    /// Carries out what `h`'s host asked for.
    pub(super) fn carry_out(
        &mut self,
        h: usize,
        asked: Asked,
        seen: (usize, usize),
    ) -> Result<(), Violation> {
        match asked {
            Asked::Run(run) if run.is_revert() => self.revert(h, &run),
            Asked::Run(run) => self.deploy(h, &run, seen),
            Asked::CheckChannel(_) => {
                let (lo, hi) = self.sc.agent.check_ms;
                let delay = self.rng.range(lo, hi);
                let incarnation = self.hosts[h].incarnation;
                self.at(
                    self.t + delay,
                    Ev::Check {
                        host: h,
                        incarnation,
                    },
                );
                Ok(())
            }
            Asked::Unreverted { why, .. } => {
                self.trace
                    .note(self.t, Some(h), format!("not reverted: {why}"));
                Ok(())
            }
        }
    }

    fn deploy(&mut self, h: usize, run: &InFlight, seen: (usize, usize)) -> Result<(), Violation> {
        let target = Target {
            id: run.deployment_id.clone(),
            revision: run.revision.clone(),
            digest: run.digest.clone(),
        };
        let planner = self.hosts[h].planner();
        // Hosts it has not heard from for nearly the dead-node grace have left its order (the
        // planner refreshes a member's last sighting coarsely, every 16th of the grace, and its
        // clock drifts by up to 1 %).
        let grace = self.sc.agent.forget_after_ms;
        let gone = (0..self.hosts.len())
            .filter(|&c| {
                c != h && self.gossip.quiet_for(h, c, self.t) > grace - grace / 16 - grace / 50
            })
            .collect();
        let start = Start {
            t: self.t,
            halted: planner.halted().is_some(),
            epoch: planner.published().map_or(0, |s| s.epoch),
            seen,
            gone,
        };
        self.checker.deploy(h, &target, start)?;
        self.idle(h, "deploy")?;
        self.begin(h, run);
        let Some((_, policy, fail_permille)) =
            self.releases.iter().find(|(t, _, _)| *t == target).cloned()
        else {
            return Ok(());
        };
        let t = self.t;
        let (lo, hi) = self.sc.hook_ms;
        let hooks = self.rng.range(lo, hi);
        let healthy = self.hosts[h]
            .clock
            .true_span(millis(policy.min_healthy_time));
        let fails = self.rng.chance(fail_permille);
        let changes_at = t + hooks * self.rng.range(50, 500) / 1000;
        let ends_at = if fails {
            t + self.rng.range(1, hooks + healthy)
        } else {
            t + hooks + healthy
        };
        let nonce = self.hosts[h].nonce();
        self.hosts[h].work = Work::Deploying(Lifecycle {
            target,
            nonce,
            changes_at,
            ends_at,
            fails,
        });
        self.at(ends_at, Ev::LifecycleEnd { host: h, nonce });
        self.arm_crashes(h, CrashAt::Lifecycle);
        Ok(())
    }

    /// Schedules the next crash planned for the middle of `h`'s work of a kind: one per
    /// piece of work, in the plan's order.
    fn arm_crashes(&mut self, h: usize, when: CrashAt) {
        let next = (0..self.sc.crashes.len()).find(|&i| {
            let plan = &self.sc.crashes[i];
            plan.when == when && plan.host == h && !self.armed[i]
        });
        if let Some(i) = next {
            self.armed[i] = true;
            let at = self.t + self.sc.crashes[i].at;
            self.at(at, Ev::Crash(i));
        }
    }

    fn revert(&mut self, h: usize, run: &InFlight) -> Result<(), Violation> {
        self.idle(h, "revert")?;
        self.begin(h, run);
        let to = Revision {
            name: run.revision.clone(),
            digest: run.digest.clone(),
        };
        let nonce = self.hosts[h].nonce();
        self.hosts[h].work = Work::Reverting { to, nonce };
        let (lo, hi) = self.sc.revert_ms;
        let delay = self.rng.range(lo, hi);
        self.at(self.t + delay, Ev::RevertEnd { host: h, nonce });
        self.arm_crashes(h, CrashAt::Revert);
        Ok(())
    }

    /// The host may only be asked for work while it runs none.
    fn idle(&self, h: usize, what: &str) -> Result<(), Violation> {
        match &self.hosts[h].work {
            Work::Idle => Ok(()),
            busy => Err(Violation::new(
                property::CONTRACT,
                Some(h),
                format!("asked to {what} while it still works: {busy:?}"),
            )),
        }
    }

    /// A lifecycle ends: done, or failed somewhere in its hooks or health window.
    pub(super) fn lifecycle_end(&mut self, h: usize, nonce: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[h];
        let run = match &host.work {
            Work::Deploying(run) if host.up && run.nonce == nonce => run.clone(),
            _ => return Ok(()),
        };
        host.work = Work::Idle;
        let ended = if run.fails {
            let changed = self.t >= run.changes_at;
            if changed {
                host.disk.touch(&run.target.digest);
            }
            Ended::Failed(Failure {
                reason: "ValidateService failed (simulated)".to_owned(),
                changed_host: changed,
                installed: changed,
            })
        } else {
            host.disk = super::host::Disk::Clean(run.target.digest.clone());
            Ended::Succeeded {
                dir: self.deployment_dir(h, &run.target.digest),
            }
        };
        let how = if run.fails {
            Truth::Failed
        } else {
            Truth::Done
        };
        self.checker.ended(h, &run.target.id, how);
        self.ended(h, ended)
    }

    /// A revert ends (reverts always succeed here).
    pub(super) fn revert_end(&mut self, h: usize, nonce: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[h];
        let to = match &host.work {
            Work::Reverting { to, nonce: n } if host.up && *n == nonce => to.clone(),
            _ => return Ok(()),
        };
        host.work = Work::Idle;
        host.disk = super::host::Disk::Clean(to.digest.clone());
        let dir = self.deployment_dir(h, &to.digest);
        self.ended(h, Ended::Succeeded { dir })
    }

    /// The run makes its deployment directory, as the agent's first step does.
    fn begin(&mut self, h: usize, run: &InFlight) {
        let dir = self.deployment_dir(h, &run.digest);
        self.hosts[h].core.at_step(Some(&dir), PREPARE);
        self.hosts[h].core.take_changed();
    }

    /// A fresh deployment directory of `h` for the revision with `digest`.
    fn deployment_dir(&mut self, h: usize, digest: &str) -> PathBuf {
        let nonce = self.hosts[h].nonce();
        PathBuf::from(format!("/sim/h{h}/{digest}/{nonce}"))
    }

    /// Crash `i` of the scenario.
    pub(super) fn crash(&mut self, i: usize) -> Result<(), Violation> {
        let plan = self.sc.crashes[i].clone();
        let h = plan.host;
        if !self.hosts[h].up {
            return Ok(());
        }
        if plan.planned {
            // The agent stops its work at a safe point and journals it stopped.
            self.hosts[h].stop();
        }
        let cut = self.hosts[h]
            .crash(self.t)
            .map_err(|e| Violation::new(property::CRASH, Some(h), e))?;
        if let Some(target) = cut {
            self.checker.ended(h, &target.id, Truth::Cut);
        }
        let text = match plan.down_for {
            Some(d) => {
                self.restarts_due += 1;
                self.at(self.t + d, Ev::Restart(h));
                format!("crashes (down for {})", secs(d))
            }
            None => "crashes for good".to_owned(),
        };
        let text = if plan.planned {
            text.replacen("crashes", "stops on purpose", 1)
        } else {
            text
        };
        self.trace.note(self.t, Some(h), text);
        self.topology_changed(false);
        Ok(())
    }

    /// `h` starts again: its host from the journal, gossip from scratch, then recovery.
    pub(super) fn restart(&mut self, h: usize) -> Result<(), Violation> {
        self.restarts_due -= 1;
        let policy = self.default_policy.clone();
        self.hosts[h].restart(&policy, self.t);
        self.gossip.reset(h);
        let round = u32::try_from(self.t / ROUND + 1).unwrap_or(u32::MAX);
        self.gossip.beat(h, round, self.t);
        self.gossip.publish(h, Record::of(self.hosts[h].planner()));
        self.trace
            .note(self.t, Some(h), "restarts from its journal".to_owned());
        self.start_host_timers(h);
        // The agent reads its channel at once after a start: the planner needs the release's
        // files at hand before it runs it again.
        let incarnation = self.hosts[h].incarnation;
        self.at(
            self.t + 1,
            Ev::Poll {
                host: h,
                incarnation,
            },
        );
        self.topology_changed(false);
        self.checker.quiet(self.t);
        self.recover(h)
    }

    /// What the journal has in flight was cut short: the disk shows whether it changed the
    /// host, as the agent's deployment record does.
    fn recover(&mut self, h: usize) -> Result<(), Violation> {
        let host = &self.hosts[h];
        let in_flight = host.core.in_flight().cloned();
        let changed = in_flight.as_ref().is_some_and(
            |run| matches!(&host.disk, super::host::Disk::Partial { to, .. } if *to == run.digest),
        );
        if let Some(run) = in_flight.as_ref().filter(|r| !r.is_revert()) {
            self.checker.interrupted(h, &run.deployment_id, run.stopped);
        }
        let cut = Failure {
            reason: "the agent restarted during the lifecycle".to_owned(),
            changed_host: changed,
            installed: changed,
        };
        self.recovered(h, cut)
    }
}
