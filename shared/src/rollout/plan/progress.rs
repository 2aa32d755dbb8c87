//! This host's way through a deployment: a release adopted (or queued while a run goes on),
//! the outcome of its run or revert, the deployment noted complete, and the progress
//! deadline that halts a stalled one.

use std::collections::BTreeSet;

use super::Planner;
use super::turn::settled;
use super::types::{Action, Cuts, MAX_INTERRUPTIONS, Millis, Outcome, View, Wait};
use crate::gossip::{GroupState, Step, Target, short_reason};
use crate::rollout::policy::Policy;

impl Planner {
    pub(super) fn release(&mut self, target: Target, policy: Policy, now: Millis) {
        if self.target() == Some(&target) {
            self.fetched = Some(target.id);
            return;
        }
        if self.memory.rerun && self.step_now() == Some(Step::Running) {
            // A run cut short is not run again when a newer release came meanwhile: the new
            // release installs over what it left.
            self.memory.rerun = false;
            self.adopt(target, policy, now);
            return;
        }
        if self.step_now() == Some(Step::Running) || self.step_now() == Some(Step::Reverting) {
            // Finish what runs first; the new release follows.
            self.memory.next = Some((target, policy.to_raw()));
            return;
        }
        self.adopt(target, policy, now);
    }

    fn adopt(&mut self, target: Target, policy: Policy, now: Millis) {
        self.memory.lkg = self.current();
        self.memory.complete = false;
        self.memory.rerun = false;
        self.memory.cuts = Cuts::default();
        self.memory.failed.clear();
        self.memory.policy = Some(policy.to_raw());
        self.memory.halt = None;
        self.memory.resume = None;
        self.memory.promote = None;
        self.policy = Some(policy);
        self.fetched = Some(target.id.clone());
        self.progress = (0, now);
        self.advanced = now;
        self.linear_open = None;
        let broken = self.memory.broken;
        let state = self.state_mut();
        state.target = Some(target);
        state.step = Some(Step::Waiting);
        state.epoch = 0;
        state.failures = 0;
        // A half-installed host keeps the failure that left it so on record.
        if !broken {
            state.reason = None;
        }
    }

    pub(super) fn ran(&mut self, outcome: Outcome, now: Millis, actions: &mut Vec<Action>) {
        let Some(target) = self.target().cloned() else {
            return;
        };
        self.memory.again = false;
        self.memory.rerun = false;
        match outcome {
            Outcome::Done => {
                let state = self.state_mut();
                state.revision = Some(target.revision.clone());
                state.digest = Some(target.digest.clone());
                state.step = Some(Step::Done);
                state.reason = None;
                self.memory.broken = false;
            }
            Outcome::Failed {
                reason,
                changed_host,
            } => {
                self.count_failure(&reason);
                if changed_host {
                    self.go_back(&target, false, actions);
                } else {
                    // It changed nothing: the host is as it was (half-installed by an earlier
                    // run, perhaps).
                    let step = if self.memory.broken {
                        Step::Failed
                    } else {
                        Step::Reverted
                    };
                    self.set_step(step);
                }
            }
            Outcome::Interrupted {
                reason,
                changed_host,
                cut,
            } => {
                // It runs again once the channel gave it the release's files again: from the
                // start, holding its slot, when the cut is forgiven (a newer release that came
                // meanwhile goes instead); otherwise it counts as a
                // failure, and a host it changed goes back first unless that halts the
                // deployment, or it was cut short too often.
                self.fetched = None;
                if self.memory.cuts.count(cut) {
                    if changed_host {
                        self.memory.broken = true;
                    }
                    if changed_host && self.memory.next.is_none() {
                        self.memory.rerun = true;
                        self.set_step(Step::Running);
                    } else {
                        self.set_step(Step::Waiting);
                    }
                } else {
                    self.count_failure(&reason);
                    let failures = self.state().map_or(0, |s| s.failures);
                    let again = failures < MAX_INTERRUPTIONS;
                    if changed_host {
                        self.go_back(&target, again, actions);
                    } else if again {
                        self.set_step(Step::Waiting);
                    } else {
                        self.set_step(Step::Failed);
                    }
                }
            }
        }
        self.take_next(now);
    }

    /// Its own run of `target` changed the host and did not complete: it goes back to its last
    /// known good revision when the policy says so ([`Action::Revert`], reported by
    /// [`Event::Reverted`]); otherwise it stays half-installed, failed or (`again`) waiting to
    /// run again. The failure is counted and published before the revert runs.
    fn go_back(&mut self, target: &Target, again: bool, actions: &mut Vec<Action>) {
        self.memory.broken = true;
        let auto_revert = self.policy.as_ref().is_some_and(|p| p.auto_revert);
        let lkg = self
            .memory
            .lkg
            .clone()
            .filter(|lkg| lkg.digest != target.digest);
        match lkg {
            Some(lkg) if auto_revert => {
                // A run cut short keeps its slot while it goes back, as it runs again after:
                // `running` then `waiting` never shows a settled step that becomes unsettled
                // in the same epoch (hosts behind it would count the slot free, then it takes
                // it again). A failed run settles: `reverting`, then `reverted`.
                self.memory.again = again;
                self.set_step(if again {
                    Step::Running
                } else {
                    Step::Reverting
                });
                actions.push(Action::Revert(lkg));
            }
            _ => self.set_step(if again { Step::Waiting } else { Step::Failed }),
        }
    }

    /// Counts a failed run of the target on this host.
    fn count_failure(&mut self, reason: &str) {
        let state = self.state_mut();
        state.failures += 1;
        state.reason = Some(short_reason(reason));
    }

    /// The host runs its last known good revision again.
    fn back_on_lkg(&mut self) {
        if let Some(lkg) = self.memory.lkg.clone() {
            let state = self.state_mut();
            state.revision = Some(lkg.name);
            state.digest = Some(lkg.digest);
        }
    }

    pub(super) fn reverted(&mut self, ok: bool, now: Millis) {
        self.memory.broken = !ok;
        if ok {
            self.back_on_lkg();
        }
        // Back from a run cut short, it takes its turn again (once it has the files at hand)
        // unless the deployment halted meanwhile.
        let again = std::mem::take(&mut self.memory.again) && ok && self.halted().is_none();
        if again {
            self.fetched = None;
        }
        if !ok {
            self.gave_up = self.deployment_epoch();
        }
        let state = self.state_mut();
        if !ok {
            state.step = Some(Step::Failed);
            state.reason = Some("the revert to the last known good revision failed".to_owned());
        } else if again {
            state.step = Some(Step::Waiting);
        } else {
            state.step = Some(Step::Reverted);
        }
        // A resume that came while it went back applies now that it is back.
        let epoch = self.state().map_or(0, |s| s.epoch);
        if let Some(resume) = self.memory.resume.clone().filter(|r| r.epoch >= epoch)
            && self.target().is_some_and(|t| t.id == resume.id)
        {
            self.apply_resume(resume);
        }
        self.take_next(now);
    }

    /// A release that arrived while the lifecycle ran becomes the target once it is over.
    fn take_next(&mut self, now: Millis) {
        if matches!(self.step_now(), Some(Step::Running | Step::Reverting)) {
            return;
        }
        if let Some((target, raw)) = self.memory.next.take() {
            let base = self.policy.clone().unwrap_or_default();
            let policy = raw.check(&base).unwrap_or(base);
            self.adopt(target, policy, now);
        }
    }

    /// Notes, once and for good, that every member it knows is done on the target (and it too,
    /// with no halt in force).
    pub(super) fn note_complete(&mut self, view: &View<'_>) {
        if self.memory.complete || self.step_now() != Some(Step::Done) || self.halted().is_some() {
            return;
        }
        let Some(target) = self.target() else {
            return;
        };
        let done: BTreeSet<&str> = view
            .peers
            .iter()
            .filter(|p| {
                p.state.is_some_and(|s| {
                    s.step == Some(Step::Done)
                        && s.target.as_ref().is_some_and(|t| t.id == target.id)
                })
            })
            .map(|p| p.node)
            .collect();
        let all = self
            .memory
            .members
            .keys()
            .filter(|node| **node != self.settings.node)
            .all(|node| done.contains(node.as_str()));
        if all {
            self.memory.complete = true;
        }
    }

    /// Halts the target when no host completed it within `progress_deadline`.
    pub(super) fn check_progress(&mut self, view: &View<'_>, now: Millis) {
        let (Some(state), Some(policy)) = (self.state(), self.policy.as_ref()) else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some()
            || matches!(self.wait, Wait::Promotion)
            || !self.sees_majority(view)
        {
            // Cut off from most of the group it cannot tell whether the others progress: a
            // minority side must not halt a rollout the majority carries on.
            self.progress.1 = now;
            return;
        }
        let on_target = |s: &GroupState| s.target.as_ref().map(|t| &t.id) == Some(&target.id);
        let mut done = usize::from(state.step == Some(Step::Done));
        let mut open = !settled(state.step);
        for peer in &view.peers {
            let Some(theirs) = peer.state.filter(|s| on_target(s)) else {
                open |= peer.alive;
                continue;
            };
            done += usize::from(theirs.step == Some(Step::Done));
            // A dead runner matters only to the live hosts waiting behind it: once every live
            // host has settled, nothing is stalled and a halt would only revert done hosts.
            open |= !settled(theirs.step) && peer.alive;
        }
        if done > self.progress.0 || !open {
            self.progress = (done.max(self.progress.0), now);
            self.advanced = now;
            return;
        }
        let deadline = policy.progress_deadline;
        if u128::from(now.saturating_sub(self.progress.1)) > deadline.as_millis() {
            let reason = format!(
                "progress deadline: no host completed {} within {}",
                target.revision,
                crate::duration::format_duration(deadline)
            );
            let node = self.settings.node.clone();
            self.halt(node, &reason, None);
        }
    }
}
