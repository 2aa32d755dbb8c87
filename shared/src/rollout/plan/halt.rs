//! Halts, resumes and promotes: the operator's commands on this host, what peers publish of
//! them, the halt that failures beyond `max_failures` call, and going back once halted.

use super::Planner;
use super::types::{Action, Command, CommandError, Peer, View};
use crate::gossip::{Halt, MAX_FORGETS, Promote, Resume, Step, Target, short_reason};
use crate::rollout::policy::Strategy;

impl Planner {
    /// Records an operator command and what it publishes; the next [`Planner::step`] acts on
    /// it. Returns the deployment it applies to.
    pub fn command(&mut self, command: Command) -> Result<String, CommandError> {
        match command {
            Command::Forget { node } => return self.forget(node),
            Command::Leave => {
                self.state_mut().leaving = true;
                return Ok(self.target().map(|t| t.id.clone()).unwrap_or_default());
            }
            _ => {}
        }
        let target = self
            .target()
            .cloned()
            .ok_or(CommandError::NoRelease(command.name()))?;
        match command {
            Command::Halt { reason, by } => {
                let reason = match &by {
                    Some(by) => format!("halted by {by}: {reason}"),
                    None => format!("halted by the operator on {}: {reason}", self.node()),
                };
                let node = self.node().to_owned();
                // The operator on this host may send it back even from a completed release.
                self.memory.complete = false;
                self.halt(node, &reason, by);
            }
            Command::Resume { by } => {
                if self.halted().is_none() {
                    return Err(CommandError::NotHalted(target.id));
                }
                self.resume(by);
            }
            Command::Promote { by } => {
                let Some(policy) = self
                    .policy
                    .as_ref()
                    .filter(|p| p.strategy == Strategy::Canary)
                else {
                    return Err(CommandError::NotCanary(target.id));
                };
                if let Some(halt) = self.halted() {
                    return Err(CommandError::Halted {
                        deployment: target.id,
                        host: halt.host.clone(),
                        reason: halt.reason.clone(),
                    });
                }
                if self.memory.complete {
                    return Err(CommandError::Complete(target.id));
                }
                if policy.auto_promote {
                    return Err(CommandError::AutoPromote(target.id));
                }
                if self
                    .memory
                    .promote
                    .as_ref()
                    .is_some_and(|p| p.id == target.id)
                {
                    return Err(CommandError::Promoted(target.id));
                }
                self.memory.promote = Some(Promote {
                    id: target.id.clone(),
                    by: by.map(|b| short_reason(&b)),
                });
            }
            Command::Forget { .. } | Command::Leave => {}
        }
        Ok(target.id)
    }

    /// `shoal forget NODE`: published, so every member drops the node while it is dead (the
    /// next step applies it here too).
    fn forget(&mut self, node: String) -> Result<String, CommandError> {
        if node == self.settings.node {
            return Err(CommandError::Itself(node));
        }
        if !self.counts(&node) {
            let members: Vec<&str> = self
                .memory
                .known
                .iter()
                .chain(self.memory.members.keys())
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(CommandError::NotAMember {
                node,
                members: members.join(", "),
            });
        }
        let forgets = &mut self.state_mut().forgets;
        forgets.retain(|n| *n != node);
        forgets.push(node);
        let excess = forgets.len().saturating_sub(MAX_FORGETS);
        forgets.drain(..excess);
        Ok(self.target().map(|t| t.id.clone()).unwrap_or_default())
    }

    /// Halted: a host done on the target goes back to its last known good revision (one still
    /// running goes back once it is done). A half-installed one (waiting to run again, or
    /// failed) fails, and goes back too when the policy says so.
    pub(super) fn revert_if_moved(&mut self, actions: &mut Vec<Action>) {
        if self.memory.complete {
            return; // a completed release is not undone by a peer's halt
        }
        // A host whose revert failed is left failed: it is not sent back again and again.
        if self.gave_up.is_some() && self.gave_up == self.deployment_epoch() {
            return;
        }
        let rerun = std::mem::take(&mut self.memory.rerun);
        let broken = self.memory.broken
            && (rerun || matches!(self.step_now(), Some(Step::Waiting | Step::Failed)));
        if broken {
            self.set_step(Step::Failed);
        } else if self.step_now() != Some(Step::Done) {
            return;
        }
        let Some(target) = self.target().cloned() else {
            return;
        };
        let auto_revert = self.policy.as_ref().is_some_and(|p| p.auto_revert);
        let Some(lkg) = self.memory.lkg.clone() else {
            return;
        };
        if !auto_revert || (!broken && lkg.digest == target.digest) {
            return;
        }
        self.set_step(Step::Reverting);
        actions.push(Action::Revert(lkg));
    }

    pub(super) fn halt(&mut self, host: String, reason: &str, by: Option<String>) {
        let Some(state) = self.state() else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some() {
            return;
        }
        self.memory.halt = Some(Halt {
            id: target.id.clone(),
            epoch: state.epoch,
            host,
            reason: short_reason(reason),
            by: by.map(|b| short_reason(&b)),
        });
    }

    fn resume(&mut self, by: Option<String>) {
        let Some(halt) = self.halted().cloned() else {
            return;
        };
        let resume = Resume {
            id: halt.id,
            epoch: halt.epoch,
            by: by.map(|b| short_reason(&b)),
        };
        self.apply_resume(resume);
    }

    /// A resume of `epoch` voids the halts up to it and starts the next epoch: failures are
    /// counted afresh, and hosts that failed or went back wait for their turn again.
    pub(super) fn apply_resume(&mut self, resume: Resume) {
        if self.step_now() == Some(Step::Reverting) {
            // It takes the new epoch once it is back: moving to it now would show a settled step
            // in the new epoch that becomes `waiting` later, and hosts behind it would count a
            // slot free that it takes again. Meanwhile it stays behind, so the others wait.
            self.memory.resume = Some(resume);
            return;
        }
        let broken = self.memory.broken;
        let state = self.state_mut();
        state.epoch = resume.epoch + 1;
        state.failures = 0;
        // A half-installed host keeps its failure's reason while it waits to run again: its
        // state then never hides that it is half-installed.
        if !broken {
            state.reason = None;
        }
        if matches!(state.step, Some(Step::Failed | Step::Reverted)) {
            state.step = Some(Step::Waiting);
        }
        // A run cut short held its slot in the old epoch only: it takes its turn again.
        if std::mem::take(&mut self.memory.rerun) {
            self.set_step(Step::Waiting);
        }
        self.memory.resume = Some(resume);
    }

    /// Takes what peers publish: resumes, halts and promotes of the target; releases this host
    /// has not verified.
    pub(super) fn learn(&mut self, view: &View<'_>, actions: &mut Vec<Action>) {
        let Some(target) = self.target().cloned() else {
            for peer in &view.peers {
                self.hint(peer, None, actions);
            }
            return;
        };
        for peer in &view.peers {
            if peer.node == self.settings.node {
                continue;
            }
            let epoch = self.state().map_or(0, |s| s.epoch);
            if let Some(resume) = peer
                .resume
                .filter(|r| r.id == target.id && r.epoch >= epoch)
            {
                self.apply_resume(resume.clone());
            }
            let epoch = self.state().map_or(0, |s| s.epoch);
            if let Some(halt) = peer.halt.filter(|h| h.id == target.id && h.epoch >= epoch) {
                let newer = self
                    .memory
                    .halt
                    .as_ref()
                    .is_none_or(|known| known.id != halt.id || known.epoch < halt.epoch);
                let from_member = self.takes_halt_from(peer, &target);
                if newer && from_member {
                    self.memory.halt = Some(halt.clone());
                }
                if newer && (!from_member || self.memory.complete) {
                    self.ignored
                        .insert((halt.id.clone(), halt.epoch, peer.node.to_owned()));
                }
            }
            if let Some(promote) = peer.promote.filter(|p| p.id == target.id) {
                self.memory.promote = Some(promote.clone());
            }
            self.hint(peer, Some(&target), actions);
        }
    }

    /// Whether a halt `peer` publishes for `target` is taken: the peer is a member whose own
    /// state is on that deployment.
    fn takes_halt_from(&self, peer: &Peer<'_>, target: &Target) -> bool {
        self.memory.members.contains_key(peer.node)
            && peer
                .state
                .and_then(|s| s.target.as_ref())
                .is_some_and(|t| t.id == target.id)
    }

    fn hint(&mut self, peer: &Peer<'_>, mine: Option<&Target>, actions: &mut Vec<Action>) {
        let Some(theirs) = peer.state.and_then(|s| s.target.as_ref()) else {
            return;
        };
        if peer.alive && Some(theirs) != mine && self.hinted.insert(theirs.clone()) {
            actions.push(Action::CheckChannel(theirs.clone()));
        }
    }

    /// Halts the target once its failures in this epoch exceed `max_failures` (never once it is
    /// complete: failures claimed after that send no one back).
    pub(super) fn count_failures(&mut self, view: &View<'_>) {
        if self.memory.complete {
            return;
        }
        let (Some(state), Some(policy)) = (self.state(), self.policy.as_ref()) else {
            return;
        };
        let Some(target) = &state.target else {
            return;
        };
        if self.halted().is_some() {
            return;
        }
        let (epoch, own, own_reason) = (state.epoch, state.failures, state.reason.clone());
        let (target, max_failures) = (target.id.clone(), policy.max_failures);
        // Failures are remembered, so a member that fails and then goes quiet past the
        // dead-node grace (out of the view, out of the order) still counts.
        for peer in &view.peers {
            let Some(theirs) = peer.state else { continue };
            if peer.node == self.settings.node
                || !self.counts(peer.node)
                || theirs.target.as_ref().map(|t| &t.id) != Some(&target)
                || theirs.epoch != epoch
                || theirs.failures == 0
            {
                continue;
            }
            let seen = self
                .memory
                .failed
                .entry(peer.node.to_owned())
                .or_insert_with(|| (epoch, 0, None));
            if seen.0 != epoch || theirs.failures > seen.1 {
                *seen = (epoch, theirs.failures, theirs.reason.clone());
            }
        }
        let peers = self
            .memory
            .failed
            .iter()
            .filter(|(node, (e, _, _))| *e == epoch && **node != self.settings.node);
        let total = own + peers.clone().map(|(_, (_, n, _))| n).sum::<u32>();
        if total <= max_failures {
            return;
        }
        let (host, reason) = if own > 0 {
            (self.settings.node.clone(), own_reason)
        } else {
            peers
                .min_by_key(|(node, _)| node.as_str())
                .map_or((self.settings.node.clone(), None), |(node, (_, _, r))| {
                    (node.clone(), r.clone())
                })
        };
        let reason = format!(
            "{host} failed: {}",
            reason.as_deref().unwrap_or("deployment failed")
        );
        self.halt(host, &reason, None);
    }
}
