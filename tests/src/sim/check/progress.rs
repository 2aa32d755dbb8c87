//! Property 5, progress: a run where nothing fails must not halt, and must bring every live
//! host to the newest release within the bound; and the spread of a halt, measured.

use shoal_shared::rollout::Planner;

use super::{Checker, Violation, done_on, property};
use crate::sim::host::Host;
use crate::sim::scenario::secs;

impl Checker {
    /// A run where nothing fails must not halt (checked on the host that raises the halt),
    /// unless restarts cut more lifecycles short than the policy tolerates (a cut that changed
    /// the host counts as a failure).
    pub(super) fn check_halt_expected(
        &self,
        h: usize,
        planner: &Planner,
        reason: &str,
    ) -> Result<(), Violation> {
        if !self.expects_progress {
            return Ok(());
        }
        let Some(truth) = planner.target().and_then(|t| self.targets.get(&t.id)) else {
            return Ok(());
        };
        if truth.interruptions > truth.policy.max_failures {
            return Ok(());
        }
        Err(Violation::new(
            property::PROGRESS,
            Some(h),
            format!(
                "{} halted although nothing failed ({} lifecycles cut by restarts, max_failures \
                 {}): {reason}",
                truth.revision, truth.interruptions, truth.policy.max_failures
            ),
        ))
    }

    /// Whether the run may still be expected to finish on the newest release in time.
    fn progress_expected(&self) -> bool {
        self.expects_progress
            && !self.excused_halt
            && self
                .targets
                .values()
                .all(|t| t.interruptions <= t.policy.max_failures)
    }

    /// Once a round: the progress bound (property 5), and halt spread figures.
    pub fn round(&mut self, t: u64, hosts: &[Host]) -> Result<(), Violation> {
        self.measure_halt_spread(hosts);
        if !self.newest_published || !self.progress_expected() || self.figures.progress.is_some() {
            return Ok(());
        }
        let live: Vec<usize> = (0..hosts.len()).filter(|h| hosts[*h].up).collect();
        let behind: Vec<usize> = live
            .iter()
            .copied()
            .filter(|h| !done_on(hosts[*h].planner(), &self.newest))
            .collect();
        if behind.is_empty() {
            self.figures.progress = Some((self.quiet_since.max(self.plan_end), t));
            return Ok(());
        }
        let since = self.quiet_since.max(self.plan_end);
        if t <= since + self.bound.total() {
            return Ok(());
        }
        let names: Vec<String> = behind.iter().take(12).map(|h| format!("h{h}")).collect();
        Err(Violation::new(
            property::PROGRESS,
            None,
            format!(
                "{} of {} live hosts are not done on the newest release {} after the bound \
                 ({}) from the last disturbance at {}: {}{} — bound: {}",
                behind.len(),
                live.len(),
                self.targets
                    .get(&self.newest)
                    .map_or("?", |t| t.revision.as_str()),
                secs(self.bound.total()),
                secs(since),
                names.join(", "),
                if behind.len() > names.len() {
                    ", …"
                } else {
                    ""
                },
                self.bound
            ),
        ))
    }

    fn measure_halt_spread(&mut self, hosts: &[Host]) {
        if self.figures.halt_spread.is_some() {
            return;
        }
        let mut first = u64::MAX;
        let mut last = 0;
        for (h, host) in hosts.iter().enumerate() {
            if !host.up {
                continue;
            }
            match self.hosts[h].halted_at.get(&self.newest) {
                Some(&at) => {
                    first = first.min(at);
                    last = last.max(at);
                }
                None => return,
            }
        }
        if first != u64::MAX {
            self.figures.halt_spread = Some((first, last));
        }
    }
}
