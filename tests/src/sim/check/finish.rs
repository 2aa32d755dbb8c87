//! The end of a run: every live host in one consistent final state, with nothing half-done
//! left hidden (properties 3 and 6 at the end).

use shoal_shared::gossip::Step;
use shoal_shared::rollout::Policy;

use super::Checker;
use crate::sim::host::{Host, Work};

impl Checker {
    /// Whether the run has reached one consistent final state; `Err` says what is not final
    /// or not consistent.
    pub fn final_state(&self, hosts: &[Host]) -> Result<(), String> {
        let newest = self.targets.get(&self.newest);
        let policy = newest.map(|t| t.policy.clone()).unwrap_or_default();
        let live: Vec<usize> = (0..hosts.len()).filter(|h| hosts[*h].up).collect();
        let halted = live
            .iter()
            .filter(|h| hosts[**h].planner().halted().is_some())
            .count();
        if halted > 0 && halted < live.len() {
            return Err(format!(
                "{halted} of {} live hosts hold a halt of the newest release, the others do not",
                live.len()
            ));
        }
        // With most of the group gone for good, the rest must wait: fail-safe.
        let quorum = live.len() * 2 > hosts.len();
        let mut failures = 0;
        for &h in &live {
            let host = &hosts[h];
            // Waiting, untouched or with the failure that left it half-installed on record.
            let state = host.planner().published();
            let shown = host.disk.clean().is_some() || state.is_some_and(|s| s.reason.is_some());
            let planner = host.planner();
            // Or holding its slot to run a cut run again (half-installed, shown `running`).
            let stuck = (planner.step_now() == Some(Step::Waiting) && shown)
                || (planner.step_now() == Some(Step::Running) && planner.memory().rerun);
            if !quorum && halted == 0 && stuck {
                continue;
            }
            final_host(host, &self.newest, &policy, halted > 0).map_err(|e| format!("h{h} {e}"))?;
            failures += host.planner().published().map_or(0, |s| s.failures);
        }
        if halted == 0 && failures > policy.max_failures {
            return Err(format!(
                "{failures} failures were tolerated without a halt, max_failures is {}",
                policy.max_failures
            ));
        }
        Ok(())
    }
}

/// One live host at the end: on the newest release, idle, and either done, a tolerated
/// failure, or (when the group halted) back on its last known good revision if it moved and
/// `auto_revert` says so, unless it had seen the release complete on every member before (a
/// peer's halt does not undo a completed release). A half-installed disk must show as
/// `failed`.
fn final_host(host: &Host, newest: &str, policy: &Policy, halted: bool) -> Result<(), String> {
    let planner = host.planner();
    let target = planner.target().ok_or_else(|| "has no target".to_owned())?;
    if target.id != newest {
        return Err(format!(
            "targets {}, not the newest release",
            target.revision
        ));
    }
    if !matches!(host.work, Work::Idle) {
        return Err("still works".to_owned());
    }
    let step = planner.step_now();
    let step_name = step.map_or("nothing", |s| s.as_str());
    if host.disk.clean().is_none() && step != Some(Step::Failed) {
        return Err(format!(
            "is half-installed ({:?}) but publishes {step_name}",
            host.disk
        ));
    }
    let failures = planner.published().map_or(0, |s| s.failures);
    if !halted {
        return match step {
            Some(Step::Done) if host.disk.clean() == Some(target.digest.as_str()) => Ok(()),
            Some(Step::Failed | Step::Reverted) if failures > 0 => Ok(()),
            _ => Err(format!("is {step_name} on {:?}, not done", host.disk)),
        };
    }
    if matches!(step, Some(Step::Running | Step::Reverting)) {
        return Err(format!("is {step_name} under a halt"));
    }
    let lkg = planner.memory().lkg.as_ref().map(|r| r.digest.as_str());
    let moved = host.disk.clean() != lkg;
    if policy.auto_revert && moved && lkg.is_some_and(|l| l != target.digest) && !planner.complete()
    {
        return Err(format!(
            "is {step_name} on {:?} under a halt with auto_revert; its last known good is {}",
            host.disk,
            lkg.unwrap_or("-")
        ));
    }
    Ok(())
}
