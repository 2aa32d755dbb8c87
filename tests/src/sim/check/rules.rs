//! The rules the checker holds each start and each step to, as pure functions of ground truth:
//! how many hosts may run at once, the canary gate, and what a host may publish.

use shoal_shared::gossip::Step;
use shoal_shared::rollout::{Planner, Strategy};

use super::{Ended, HostTruth, TargetTruth};
use crate::sim::host::Work;

/// At most how many hosts may run the target's lifecycle at once, for a group of `n`.
pub(super) fn allowed(truth: &TargetTruth, n: usize) -> usize {
    let p = &truth.policy;
    match p.strategy {
        Strategy::AllAtOnce => n,
        Strategy::OneAtATime => 1,
        Strategy::HalfAtATime => n.div_ceil(2),
        Strategy::Rolling => p.max_parallel.of(n),
        Strategy::Canary => {
            let canaries = p.canary.of(n);
            if truth.starters.len() <= canaries {
                canaries
            } else {
                canaries.max(p.max_parallel.of(n))
            }
        }
        Strategy::Linear => p.linear.map_or(p.max_parallel.of(n), |l| l.step.of(n)),
    }
}

/// Canaries are the first hosts to start; any later host may start only once each canary's
/// last lifecycle ended done (and none runs again), and, without `auto_promote`, after a
/// promote. A canary the starting host has not heard from for the dead-node grace (`gone`) left
/// its order, and the next starter takes its place.
pub(super) fn canary_gate(
    truth: &TargetTruth,
    hosts: &[HostTruth],
    h: usize,
    n: usize,
    gone: &[usize],
) -> Result<(), String> {
    let p = &truth.policy;
    if p.strategy != Strategy::Canary {
        return Ok(());
    }
    // The canaries are a share of the members in the starting host's order.
    let canaries = p.canary.of(n - gone.len());
    let starters: Vec<usize> = truth
        .starters
        .iter()
        .copied()
        .filter(|k| !gone.contains(k))
        .collect();
    let position = starters.iter().position(|k| *k == h).unwrap_or(0);
    if position < canaries {
        return Ok(());
    }
    for &c in &starters[..canaries] {
        let last = hosts[c].last.get(&truth.id);
        let running = hosts[c].running.as_deref() == Some(truth.id.as_str());
        if last != Some(&Ended::Done) || running {
            return Err(format!(
                "h{h} starts {} although canary h{c} is not done (its last lifecycle: {})",
                truth.revision,
                if running {
                    "running".to_owned()
                } else {
                    last.map_or("none".to_owned(), |e| format!("{e:?}").to_lowercase())
                }
            ));
        }
    }
    if !p.auto_promote && !truth.promoted {
        return Err(format!(
            "h{h} starts {} after the canaries without anyone promoting it (auto_promote false)",
            truth.revision
        ));
    }
    Ok(())
}

/// What a host publishes must say what it really does: `running` exactly while a lifecycle
/// of its target runs, `reverting` exactly while a revert runs.
pub(super) fn published_matches_work(planner: &Planner, work: &Work) -> Result<(), String> {
    let step = planner.step_now();
    match (step, work) {
        (Some(Step::Running), Work::Deploying(run)) if planner.target() == Some(&run.target) => {
            Ok(())
        }
        (Some(Step::Reverting), Work::Reverting { .. }) => Ok(()),
        // A run cut short keeps its slot while it goes back, to run again after.
        (Some(Step::Running), Work::Reverting { .. }) if planner.memory().again => Ok(()),
        // A run stopped or crashed keeps its slot until it runs again from the start, once
        // the channel gave it the files again.
        (Some(Step::Running), Work::Idle) if planner.memory().rerun => Ok(()),
        (Some(Step::Running | Step::Reverting), _)
        | (_, Work::Deploying(_) | Work::Reverting { .. }) => Err(format!(
            "publishes {} but really {}",
            step.map_or("nothing", |s| s.as_str()),
            match work {
                Work::Idle => "runs nothing".to_owned(),
                Work::Deploying(run) => format!("runs the lifecycle of {}", run.target.revision),
                Work::Reverting { to, .. } => format!("reverts to {}", to.name),
            }
        )),
        _ => Ok(()),
    }
}

pub(super) fn done_on(planner: &Planner, id: &str) -> bool {
    planner.target().map(|t| t.id.as_str()) == Some(id) && planner.step_now() == Some(Step::Done)
}
