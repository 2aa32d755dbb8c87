//! The work hosts run for their planners, and what crashes do to it: a lifecycle takes its
//! hooks' time plus `min_healthy_time` and may fail (changing the disk part-way, then going
//! back to the last known good revision itself when `auto_revert` allows, as the agent does), a
//! revert takes a while; a crash cuts either short where it is, and a restart builds a fresh
//! planner from the persisted memory, goes back from a cut lifecycle that changed the disk,
//! reports it as `Outcome::Interrupted` and runs a cut revert again, as the agent does from its
//! journal.

use shoal_shared::gossip::{Step, Target};
use shoal_shared::rollout::{Event, Outcome, Revision};

use super::check::{Ended, Start, Violation, property};
use super::gossip::Record;
use super::host::{Disk, Lifecycle, Work};
use super::scenario::{ROUND, millis, secs};
use super::world::{Ev, World};

impl World {
    pub(super) fn deploy(
        &mut self,
        h: usize,
        target: Target,
        seen: (usize, usize),
    ) -> Result<(), Violation> {
        let planner = &self.hosts[h].planner;
        let start = Start {
            t: self.t,
            halted: planner.halted().is_some(),
            epoch: planner.published().map_or(0, |s| s.epoch),
            seen,
        };
        self.checker.deploy(h, &target, start)?;
        self.idle(h, "deploy")?;
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
        self.arm_crashes(h);
        Ok(())
    }

    /// Schedules the crashes planned for the middle of `h`'s first lifecycle.
    fn arm_crashes(&mut self, h: usize) {
        for i in 0..self.sc.crashes.len() {
            let plan = &self.sc.crashes[i];
            if plan.mid_lifecycle && plan.host == h && !self.armed[i] {
                self.armed[i] = true;
                let at = self.t + plan.at;
                self.at(at, Ev::Crash(i));
            }
        }
    }

    pub(super) fn revert(&mut self, h: usize, to: Revision) -> Result<(), Violation> {
        self.idle(h, "revert")?;
        let nonce = self.hosts[h].nonce();
        self.hosts[h].work = Work::Reverting { to, nonce };
        let (lo, hi) = self.sc.revert_ms;
        let delay = self.rng.range(lo, hi);
        self.at(self.t + delay, Ev::RevertEnd { host: h, nonce });
        Ok(())
    }

    /// The planner may only ask for work while the host runs none.
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
        let outcome = if run.fails {
            let changed = self.t >= run.changes_at;
            if changed {
                host.disk.touch(&run.target.digest);
            }
            let reverted = changed && self.go_back(h, &run.target);
            Outcome::Failed {
                reason: "ValidateService failed (simulated)".to_owned(),
                changed_host: changed,
                reverted,
            }
        } else {
            host.disk = Disk::Clean(run.target.digest.clone());
            Outcome::Done
        };
        let how = if run.fails {
            Ended::Failed
        } else {
            Ended::Done
        };
        self.checker.ended(h, &run.target.id, how);
        self.step(h, Event::Ran(outcome))
    }

    /// A host whose own run of `target` changed it goes back to its last known good revision
    /// by itself when the policy says so (the agent's revert after a failure); whether it did.
    fn go_back(&mut self, h: usize, target: &Target) -> bool {
        let auto_revert = self
            .releases
            .iter()
            .find(|(t, _, _)| t == target)
            .is_some_and(|(_, policy, _)| policy.auto_revert);
        let lkg = self.hosts[h].planner.memory().lkg.clone();
        match lkg {
            Some(lkg) if auto_revert && lkg.digest != target.digest => {
                self.hosts[h].disk = Disk::Clean(lkg.digest);
                true
            }
            _ => false,
        }
    }

    /// A revert ends (reverts always succeed here).
    pub(super) fn revert_end(&mut self, h: usize, nonce: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[h];
        let to = match &host.work {
            Work::Reverting { to, nonce: n } if host.up && *n == nonce => to.clone(),
            _ => return Ok(()),
        };
        host.work = Work::Idle;
        host.disk = Disk::Clean(to.digest);
        self.step(h, Event::Reverted { ok: true })
    }

    /// Crash `i` of the scenario.
    pub(super) fn crash(&mut self, i: usize) -> Result<(), Violation> {
        let plan = self.sc.crashes[i].clone();
        let h = plan.host;
        if !self.hosts[h].up {
            return Ok(());
        }
        let cut = self.hosts[h]
            .crash(self.t)
            .map_err(|e| Violation::new(property::CRASH, Some(h), e))?;
        if let Some(target) = cut {
            self.checker.ended(h, &target.id, Ended::Cut);
        }
        let text = match plan.down_for {
            Some(d) => {
                self.restarts_due += 1;
                self.at(self.t + d, Ev::Restart(h));
                format!("crashes (down for {})", secs(d))
            }
            None => "crashes for good".to_owned(),
        };
        self.trace.note(self.t, Some(h), text);
        self.topology_changed(false);
        Ok(())
    }

    /// `h` starts again: a fresh planner from its journal, gossip from scratch, then recovery.
    pub(super) fn restart(&mut self, h: usize) -> Result<(), Violation> {
        self.restarts_due -= 1;
        let policy = self.default_policy.clone();
        self.hosts[h].restart(&policy, self.t);
        self.gossip.reset(h);
        let round = u32::try_from(self.t / ROUND + 1).unwrap_or(u32::MAX);
        self.gossip.beat(h, round, self.t);
        self.gossip.publish(h, Record::of(&self.hosts[h].planner));
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

    /// What the agent does at start with work its journal says was cut short.
    fn recover(&mut self, h: usize) -> Result<(), Violation> {
        let planner = &self.hosts[h].planner;
        match planner.step_now() {
            Some(Step::Running) => {
                let target = planner.target().cloned();
                let changed_host = target.as_ref().is_some_and(
                    |t| matches!(&self.hosts[h].disk, Disk::Partial { to, .. } if *to == t.digest),
                );
                if let Some(t) = &target {
                    self.checker.interrupted(&t.id, changed_host);
                }
                let reverted = match (&target, changed_host) {
                    (Some(t), true) => self.go_back(h, t),
                    _ => false,
                };
                let outcome = Outcome::Interrupted {
                    reason: "the agent restarted during the lifecycle".to_owned(),
                    changed_host,
                    reverted,
                };
                self.step(h, Event::Ran(outcome))
            }
            Some(Step::Reverting) => {
                let Some(lkg) = planner.memory().lkg.clone() else {
                    return Err(Violation::new(
                        property::CRASH,
                        Some(h),
                        "restarts reverting with no last known good revision".to_owned(),
                    ));
                };
                self.trace.note(
                    self.t,
                    Some(h),
                    format!("runs its cut revert to {} again", lkg.name),
                );
                self.revert(h, lkg)?;
                self.observe(h, (0, 0))
            }
            _ => self.observe(h, (0, 0)),
        }
    }
}
