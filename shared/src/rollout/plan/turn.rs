//! Taking turns: whether this host may start the target now, and if not, why. First the
//! gates every strategy shares, then where each member stands in the target's order, then
//! the batch the strategy opens and the slots taken in it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::Planner;
use super::types::{Millis, Peer, View, Wait};
use crate::gossip::{Step, Target};
use crate::rollout::policy::{Policy, Strategy};

/// The other members gossip shows, by node id.
type Peers<'v, 'a> = BTreeMap<&'v str, &'v Peer<'a>>;

/// The slots a strategy opens to this host: `size` hosts at a time, counted from `first` in
/// the order.
struct Batch {
    size: usize,
    first: usize,
}

impl Planner {
    /// Why this host may not start the target now; `None` when it may.
    pub(super) fn blocked(&mut self, view: &View<'_>, now: Millis) -> Option<Wait> {
        let state = self.state()?;
        let target = state.target.clone()?;
        let epoch = state.epoch;
        let peers = self.peers(view);
        if let Some(wait) = self.gate(view, &peers, &target, epoch, now) {
            return Some(wait);
        }
        self.refresh_order(&target.id);
        let order = self.order().to_vec();
        let me = order.iter().position(|n| *n == self.settings.node)?;
        let slots: Vec<Slot> = order
            .iter()
            .map(|n| {
                if *n == self.settings.node {
                    Slot::Me
                } else {
                    Slot::of(peers.get(n.as_str()).copied(), &target, epoch)
                }
            })
            .collect();
        let policy = self.policy.clone().unwrap_or_default();
        match self.batch(&policy, &slots, me, &target, now) {
            Ok(batch) => batch.turn(&slots, me),
            Err(wait) => Some(wait),
        }
    }

    /// Why this host may not run its target again from the start now (after a run of it was
    /// cut short; it holds its slot): the gates every start passes. `None` when it may.
    pub(super) fn rerun_blocked(&self, view: &View<'_>, now: Millis) -> Option<Wait> {
        let state = self.state()?;
        let target = state.target.clone()?;
        let peers = self.peers(view);
        self.gate(view, &peers, &target, state.epoch, now)
    }

    /// The other members gossip shows, but those that leave the group.
    fn peers<'v, 'a>(&self, view: &'v View<'a>) -> Peers<'v, 'a> {
        view.peers
            .iter()
            .filter(|p| p.node != self.settings.node && !p.state.is_some_and(|s| s.leaving))
            .map(|p| (p.node, p))
            .collect()
    }

    /// What holds back every strategy: a halt, the release's files not at hand, no majority
    /// in sight, a start too recent, members that disagree on the members, or members alive
    /// that have not learned of the last resume.
    fn gate(
        &self,
        view: &View<'_>,
        peers: &Peers<'_, '_>,
        target: &Target,
        epoch: u32,
        now: Millis,
    ) -> Option<Wait> {
        if self.halted().is_some() {
            return Some(Wait::Halted);
        }
        if self.state().is_some_and(|s| s.leaving) {
            return Some(Wait::Leaving);
        }
        if view.duplicate {
            return Some(Wait::DuplicateId);
        }
        if self.fetched.as_deref() != Some(target.id.as_str()) {
            return Some(Wait::Fetching);
        }
        let (alive, members) = self.recent_members(view);
        if alive * 2 <= members {
            return Some(Wait::NoMajority { alive, members });
        }
        if self.warming_up(members, now) {
            return Some(Wait::WarmingUp);
        }
        let mine = self.state().and_then(|s| s.members.as_ref());
        if peers
            .values()
            .any(|p| p.alive && p.state.and_then(|s| s.members.as_ref()) != mine)
        {
            return Some(Wait::Membership);
        }
        let behind = |p: &Peer<'_>| {
            p.alive
                && p.state.is_some_and(|s| {
                    s.target.as_ref().map(|t| &t.id) == Some(&target.id) && s.epoch < epoch
                })
        };
        if epoch > 0 && peers.values().any(|p| behind(p)) {
            return Some(Wait::Resuming);
        }
        None
    }

    /// Whether it is too soon after the start: `warmup` has not passed, or it has not heard
    /// from a majority of the `members` it knows (itself included) since.
    fn warming_up(&self, members: usize, now: Millis) -> bool {
        let heard = 1 + self.heard.iter().filter(|m| self.counts(m)).count();
        now.saturating_sub(self.up_since) < self.settings.warmup || heard * 2 <= members
    }

    /// The batch the policy's strategy opens to this host, the `me`th of the order, or why it
    /// waits before any.
    fn batch(
        &mut self,
        policy: &Policy,
        slots: &[Slot],
        me: usize,
        target: &Target,
        now: Millis,
    ) -> Result<Batch, Wait> {
        let n = slots.len();
        let size = match policy.strategy {
            Strategy::AllAtOnce => n,
            Strategy::OneAtATime => 1,
            Strategy::HalfAtATime => n.div_ceil(2),
            Strategy::Rolling => policy.max_parallel.of(n),
            Strategy::Canary => return self.canary_batch(policy, slots, me, target),
            Strategy::Linear => return self.linear_batch(policy, slots, me, now),
        };
        Ok(Batch { size, first: 0 })
    }

    /// Canary: the canaries go first, all at once; the others wait until every canary is done
    /// and the deployment is promoted, then go `max_parallel` at a time.
    fn canary_batch(
        &self,
        policy: &Policy,
        slots: &[Slot],
        me: usize,
        target: &Target,
    ) -> Result<Batch, Wait> {
        let n = slots.len();
        let canaries = policy.canary.of(n);
        if me < canaries {
            return Ok(Batch {
                size: canaries,
                first: 0,
            });
        }
        if !slots[..canaries].iter().all(|s| *s == Slot::Done) {
            return Err(Wait::Canaries);
        }
        let promoted = policy.auto_promote
            || self
                .memory
                .promote
                .as_ref()
                .is_some_and(|p| p.id == target.id);
        if !promoted {
            return Err(Wait::Promotion);
        }
        Ok(Batch {
            size: policy.max_parallel.of(n),
            first: canaries,
        })
    }

    /// Linear: hosts go a step at a time; a step opens once every host before it has settled,
    /// and its hosts start once `every` has passed since it opened.
    fn linear_batch(
        &mut self,
        policy: &Policy,
        slots: &[Slot],
        me: usize,
        now: Millis,
    ) -> Result<Batch, Wait> {
        let n = slots.len();
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
                return Err(Wait::Step);
            }
            let opened = match self.linear_open {
                Some((open, at)) if open == stage => at,
                _ => {
                    self.linear_open = Some((stage, now));
                    now
                }
            };
            if now.saturating_sub(opened) < every {
                return Err(Wait::Step);
            }
        }
        Ok(Batch { size: step, first })
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

impl Batch {
    /// Why this host, the `me`th of the order, waits for a slot of the batch; `None` when one
    /// is free. The hosts ahead of it in the batch that have not settled, plus the hosts after
    /// it that may run, take the slots.
    fn turn(&self, slots: &[Slot], me: usize) -> Option<Wait> {
        let before = slots[self.first..me]
            .iter()
            .filter(|s| s.unsettled())
            .count();
        let after = slots[me + 1..].iter().filter(|s| s.may_run()).count();
        let busy = before + after;
        (busy >= self.size).then_some(Wait::Turn {
            busy,
            batch: self.size,
        })
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
    /// Where a member other than this host stands in the target's deployment, from what
    /// gossip shows of it (`None`: nothing).
    fn of(peer: Option<&Peer<'_>>, target: &Target, epoch: u32) -> Self {
        let Some(peer) = peer else {
            // Remembered but not in gossip (yet): it may be running.
            return Self::Unknown;
        };
        let on_target = peer
            .state
            .filter(|s| s.target.as_ref().map(|t| &t.id) == Some(&target.id));
        // Failed or gone back in an epoch a resume has voided, it will wait for its turn
        // again once it learns of the resume: it is not settled in this epoch.
        let voided = on_target.is_some_and(|s| s.epoch < epoch);
        match on_target.and_then(|s| s.step) {
            Some(Step::Running) => Self::Running,
            Some(Step::Done) => Self::Done,
            Some(step) if settled(Some(step)) && !voided => Self::Settled,
            _ if peer.alive => Self::NotStarted,
            // Cut off since before the resume, it may have started in the voided epoch, when
            // the hosts ahead of it had settled: it may be running now, unseen.
            Some(Step::Waiting) if voided => Self::Unknown,
            _ => Self::Skipped,
        }
    }

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
