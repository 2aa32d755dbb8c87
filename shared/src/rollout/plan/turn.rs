//! Taking turns: whether this host may start the target now, and if not, why; the order in
//! which a deployment takes the members, and where each stands in it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::Planner;
use super::types::{Millis, Peer, View, Wait};
use crate::gossip::Step;
use crate::rollout::policy::Strategy;

impl Planner {
    /// Why this host may not start the target now; `None` when it may.
    pub(super) fn blocked(&mut self, view: &View<'_>, now: Millis) -> Option<Wait> {
        if self.halted().is_some() {
            return Some(Wait::Halted);
        }
        let state = self.state()?;
        let target = state.target.clone()?;
        let epoch = state.epoch;
        if self.fetched.as_deref() != Some(target.id.as_str()) {
            return Some(Wait::Fetching);
        }
        let policy = self.policy.clone().unwrap_or_default();
        let peers: BTreeMap<&str, &Peer<'_>> = view
            .peers
            .iter()
            .filter(|p| p.node != self.settings.node)
            .map(|p| (p.node, p))
            .collect();
        let (alive, members) = self.alive_members(view);
        if alive * 2 <= members {
            return Some(Wait::NoMajority { alive, members });
        }
        let heard = 1 + self
            .memory
            .members
            .keys()
            .filter(|m| self.heard.contains(*m))
            .count();
        if now.saturating_sub(self.up_since) < self.settings.warmup || heard * 2 <= members {
            return Some(Wait::WarmingUp);
        }
        let mine = self.state().and_then(|s| s.members.clone());
        let disagree = |p: &&&Peer<'_>| p.alive && p.state.and_then(|s| s.members.clone()) != mine;
        if peers.values().any(|p| disagree(&p)) {
            return Some(Wait::Membership);
        }
        let behind = |p: &&&Peer<'_>| {
            p.alive
                && p.state.is_some_and(|s| {
                    s.target.as_ref().map(|t| &t.id) == Some(&target.id) && s.epoch < epoch
                })
        };
        if epoch > 0 && peers.values().any(|p| behind(&p)) {
            return Some(Wait::Resuming);
        }
        self.refresh_order(&target.id);
        let order = self.order().to_vec();
        let me = order.iter().position(|n| *n == self.settings.node)?;
        let slot = |node: &str| -> Slot {
            let Some(peer) = peers.get(node) else {
                // Remembered but not in gossip (yet): it may be running.
                return Slot::Unknown;
            };
            let on_target = peer
                .state
                .filter(|s| s.target.as_ref().map(|t| &t.id) == Some(&target.id));
            // Failed or gone back in an epoch a resume has voided, it will wait for its turn
            // again once it learns of the resume: it is not settled in this epoch.
            let voided = on_target.is_some_and(|s| s.epoch < epoch);
            match on_target.and_then(|s| s.step) {
                Some(Step::Running) => Slot::Running,
                Some(Step::Done) => Slot::Done,
                Some(step) if settled(Some(step)) && !voided => Slot::Settled,
                _ if peer.alive => Slot::NotStarted,
                _ => Slot::Skipped,
            }
        };
        let slots: Vec<Slot> = order
            .iter()
            .map(|n| {
                if *n == self.settings.node {
                    Slot::Me
                } else {
                    slot(n)
                }
            })
            .collect();
        let n = order.len();
        let (batch, first) = match policy.strategy {
            Strategy::AllAtOnce => (n, 0),
            Strategy::OneAtATime => (1, 0),
            Strategy::HalfAtATime => (n.div_ceil(2), 0),
            Strategy::Rolling => (policy.max_parallel.of(n), 0),
            Strategy::Canary => {
                let canaries = policy.canary.of(n);
                if me < canaries {
                    (canaries, 0)
                } else {
                    if !slots[..canaries].iter().all(|s| *s == Slot::Done) {
                        return Some(Wait::Canaries);
                    }
                    let promoted = policy.auto_promote
                        || self
                            .memory
                            .promote
                            .as_ref()
                            .is_some_and(|p| p.id == target.id);
                    if !promoted {
                        return Some(Wait::Promotion);
                    }
                    (policy.max_parallel.of(n), canaries)
                }
            }
            Strategy::Linear => {
                let (step, every) = policy.linear.map_or((policy.max_parallel.of(n), 0), |l| {
                    (
                        l.step.of(n),
                        u64::try_from(l.every.as_millis()).unwrap_or(u64::MAX),
                    )
                });
                let stage = me / step;
                let first = stage * step;
                if stage > 0 {
                    if slots[..first].iter().any(|s| s.unsettled()) {
                        self.linear_open = None;
                        return Some(Wait::Step);
                    }
                    let opened = match self.linear_open {
                        Some((open, at)) if open == stage => at,
                        _ => {
                            self.linear_open = Some((stage, now));
                            now
                        }
                    };
                    if now.saturating_sub(opened) < every {
                        return Some(Wait::Step);
                    }
                }
                (step, first)
            }
        };
        let before = slots[first..me].iter().filter(|s| s.unsettled()).count();
        let after = slots[me + 1..].iter().filter(|s| s.may_run()).count();
        let busy = before + after;
        (busy >= batch).then_some(Wait::Turn { busy, batch })
    }

    fn refresh_order(&mut self, id: &str) {
        let mut members: Vec<String> = self.memory.members.keys().cloned().collect();
        members.push(self.settings.node.clone());
        members.sort();
        members.dedup();
        if let Some((cached, known, _)) = &self.order
            && cached == id
            && *known == members
        {
            return;
        }
        let order = rollout_order(id, &members);
        self.order = Some((id.to_owned(), members, order));
    }
}

/// Where another member stands, as this host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Me,
    /// Running the target's lifecycle (alive or not: a dead runner keeps its slot).
    Running,
    /// Done with the target.
    Done,
    /// Failed or went back.
    Settled,
    /// Alive and not started.
    NotStarted,
    /// Dead and not running: it may still start unseen, so it counts like one not started.
    Skipped,
    /// Remembered but not seen in gossip since this host started.
    Unknown,
}

impl Slot {
    /// Counts against the batch when it is ahead of this host in the order.
    fn unsettled(self) -> bool {
        matches!(
            self,
            Self::Running | Self::NotStarted | Self::Skipped | Self::Unknown
        )
    }

    /// Counts against the batch when it is after this host in the order.
    fn may_run(self) -> bool {
        matches!(self, Self::Running | Self::Unknown)
    }
}

/// Whether a host on this step has settled: done, failed, or going or gone back. Settling is
/// final within an epoch.
pub(super) fn settled(step: Option<Step>) -> bool {
    matches!(
        step,
        Some(Step::Done | Step::Failed | Step::Reverting | Step::Reverted)
    )
}

/// The members in the order a deployment takes them: by sha256(deployment id ‖ 0x00 ‖ node id).
pub fn rollout_order(id: &str, members: &[String]) -> Vec<String> {
    let mut keyed: Vec<([u8; 32], &String)> = members
        .iter()
        .map(|m| {
            let mut hash = Sha256::new();
            hash.update(id.as_bytes());
            hash.update([0]);
            hash.update(m.as_bytes());
            (hash.finalize().into(), m)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, m)| m.clone()).collect()
}
