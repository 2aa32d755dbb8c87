//! The operator: `shoal halt` and `shoal resume` at the scenario's times on a host chosen then
//! (a resume on a host whose status shows the halt), and `shoal promote` once some host's
//! status says the canaries are healthy and wait for it (or once early, when asked to).

use shoal_shared::rollout::plan::Wait;
use shoal_shared::rollout::{Command as Steer, Strategy};

use super::check::Violation;
use super::gossip::Record;
use super::scenario::{Command, Promoting, ROUND};
use super::world::{Ev, World};

/// How often a refused command is tried again.
const ATTEMPTS: u32 = 180;

impl World {
    /// Operator command `index` of the scenario.
    pub(super) fn command(&mut self, index: usize, attempt: u32) -> Result<(), Violation> {
        let command = self.sc.commands[index].command;
        let candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|h| self.hosts[*h].up)
            .filter(|h| command != Command::Resume || self.hosts[*h].planner().halted().is_some())
            .collect();
        let steer = match command {
            Command::Halt => Steer::Halt {
                reason: "operator".to_owned(),
                by: None,
            },
            Command::Resume => Steer::Resume { by: None },
        };
        let done = match self.pick(&candidates) {
            Some(h) => self.run_command(h, steer)?,
            None => false,
        };
        if !done && attempt < ATTEMPTS {
            let ev = Ev::Command {
                index,
                attempt: attempt + 1,
            };
            self.at(self.t + ROUND, ev);
        }
        Ok(())
    }

    /// Once a round: if the newest release waits for `shoal promote` on some host, the
    /// operator will promote it after their reaction time.
    pub(super) fn watch_for_promotion(&mut self) {
        let Promoting::WhenAsked { after_ms, .. } = self.sc.promote else {
            return;
        };
        if self.promote_asked || self.published == 0 {
            return;
        }
        let newest = &self.releases[self.published - 1];
        if newest.1.strategy != Strategy::Canary || newest.1.auto_promote {
            return;
        }
        let asked = self.hosts.iter().any(|host| {
            host.up
                && host.planner().target() == Some(&newest.0)
                && *host.planner().wait() == Wait::Promotion
        });
        if asked {
            self.promote_asked = self.published == self.releases.len();
            let ev = Ev::Promote {
                attempt: 0,
                early: false,
            };
            self.at(self.t + after_ms, ev);
        }
    }

    /// `shoal promote` on a host that has the newest release (any host, when early).
    pub(super) fn promote(&mut self, attempt: u32, early: bool) -> Result<(), Violation> {
        let newest = self
            .published
            .checked_sub(1)
            .map(|i| self.releases[i].0.clone());
        let candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|h| self.hosts[*h].up)
            .filter(|h| early || self.hosts[*h].planner().target() == newest.as_ref())
            .collect();
        let Some(h) = self.pick(&candidates) else {
            return Ok(());
        };
        let target = self.hosts[h].planner().target().cloned();
        if self.run_command(h, Steer::Promote { by: None })? {
            if let Some(target) = target {
                self.checker.promoted(&target.id);
            }
            if !early {
                self.checker.quiet(self.t);
            }
        } else if !early && attempt < ATTEMPTS {
            let ev = Ev::Promote {
                attempt: attempt + 1,
                early,
            };
            self.at(self.t + ROUND, ev);
        }
        Ok(())
    }

    fn pick(&mut self, candidates: &[usize]) -> Option<usize> {
        (!candidates.is_empty()).then(|| candidates[self.rng.index(candidates.len())])
    }

    /// Runs `steer` as a command on `h`. Returns whether the host accepted it.
    fn run_command(&mut self, h: usize, steer: Steer) -> Result<bool, Violation> {
        match self.hosts[h].core.command(steer.clone()) {
            Ok(_) => {
                // Recorded: the host acts on it at its next step, as the agent's group task
                // does once the command wakes it.
                self.hosts[h].core.take_changed();
                self.trace
                    .note(self.t, Some(h), format!("takes operator: {}", steer.name()));
                self.gossip.publish(h, Record::of(self.hosts[h].planner()));
                self.schedule_step(h, self.t);
                Ok(true)
            }
            Err(e) => {
                let text = format!("refuses operator: {}: {e}", steer.name());
                self.trace.note(self.t, Some(h), text);
                Ok(false)
            }
        }
    }
}
