//! What status shows of a group's host between runs: the revisions its journal holds, its
//! part in the rollout, and the phase that follows from both. While a run goes on, the
//! deployer and its observer show its progress.

use shoal_shared::gossip::Step;
use shoal_shared::rollout::GroupHost;
use shoal_shared::rollout::plan::Wait;
use shoal_shared::status::{GroupStatus, HaltInfo, Phase, Rollout};
use shoal_shared::time::format_rfc3339;

use crate::report::board::rfc3339_ms;

/// Shows `host` in `status` at `now` (seconds since the epoch). What status already shows of
/// the same deployment's rollout keeps its times: when the host learned of it, when its step
/// began, and a failure's time and output.
pub(super) fn show(status: &mut GroupStatus, host: &GroupHost, now: i64) {
    let journal = host.journal();
    status.current_revision = journal.current.as_ref().map(|c| c.revision.clone());
    status.last_known_good = journal.last_known_good.as_ref().map(|c| c.revision.clone());
    let planner = host.planner();
    let Some(target) = planner.target() else {
        status.rollout = None;
        if journal.in_flight.is_none() && status.phase != Phase::Starting {
            status.phase = Phase::Idle;
        }
        return;
    };
    let step = planner.step_now();
    let halted = planner.halted().map(|h| HaltInfo {
        host: h.host.clone(),
        reason: h.reason.clone(),
        ..HaltInfo::default()
    });
    let order = planner.order();
    let before = status
        .rollout
        .take()
        .filter(|r| r.deployment == target.id)
        .unwrap_or_default();
    let step_name = step.map_or("waiting", Step::as_str).to_owned();
    let done = step == Some(Step::Done);
    let now_text = || Some(format_rfc3339(now));
    status.rollout = Some(Rollout {
        deployment: target.id.clone(),
        revision: target.revision.clone(),
        waiting_for: (step == Some(Step::Waiting)).then(|| planner.wait().to_string()),
        position: order.iter().position(|n| n == planner.node()),
        members: planner.memory().members.len() + 1,
        halted: halted.clone(),
        canary: planner.is_canary(),
        promote_pending: matches!(planner.wait(), Wait::Promotion),
        seen: before.seen.or_else(now_text),
        step_since: (before.step_since)
            .filter(|_| before.step == step_name)
            .or_else(now_text),
        deadline: planner.deadline().map(rfc3339_ms),
        done_at: before.done_at.or_else(|| now_text().filter(|_| done)),
        failed_at: before.failed_at.filter(|_| !done),
        failure_output: if done {
            Vec::new()
        } else {
            before.failure_output
        },
        step: step_name,
    });
    if journal.in_flight.is_some() {
        return; // the run shows itself
    }
    let broken = planner.memory().broken;
    let (phase, target_revision) = match step {
        Some(Step::Failed) if broken => (Phase::Failed, None),
        _ if halted.is_some() => (Phase::Halted, Some(target.revision.clone())),
        Some(Step::Waiting) => (Phase::Waiting, Some(target.revision.clone())),
        _ if status.phase == Phase::Starting => (Phase::Starting, None),
        _ => (Phase::Idle, None),
    };
    status.phase = phase;
    status.target_revision = target_revision;
    crate::report::board::at_event(status, None);
}

#[cfg(test)]
mod tests {
    use shoal_shared::rollout::{Command, Ended, Failure, View};

    use super::*;
    use crate::runtime::testing::{host, release_v1 as released};

    fn shown(host: &GroupHost) -> GroupStatus {
        let mut status = GroupStatus::starting("web", "shop", "git /srv/repo");
        status.phase = Phase::Idle;
        show(&mut status, host, 1_000);
        status
    }

    #[test]
    fn a_run_in_flight_shows_itself_and_the_rollout_shows_its_step() {
        let mut host = host();
        released(&mut host);
        let status = shown(&host);
        assert_eq!(status.phase, Phase::Idle, "the deployer shows the run");
        assert_eq!(status.rollout.map(|r| r.step).as_deref(), Some("running"));
    }

    #[test]
    fn a_first_deployment_that_failed_shows_failed_and_a_halt_shows_halted() {
        let mut first = host();
        released(&mut first);
        first.at_step(Some(std::path::Path::new("/root/web/d-1")), "BeforeInstall");
        let failure = Failure {
            reason: "BeforeInstall: exit 1".into(),
            changed_host: true,
            installed: false,
        };
        first.ended(Ended::Failed(failure), &View::default(), 2);
        let status = shown(&first);
        assert_eq!(
            status.phase,
            Phase::Failed,
            "nothing to go back to: {status:?}"
        );

        let mut halted = host();
        released(&mut halted);
        halted.ended(
            Ended::Succeeded {
                dir: "/root/web/d-1".into(),
            },
            &View::default(),
            2,
        );
        halted
            .command(Command::Halt {
                reason: "bad build".into(),
                by: None,
            })
            .expect("halt");
        let status = shown(&halted);
        assert_eq!(status.phase, Phase::Halted);
        assert_eq!(status.current_revision.as_deref(), Some("v1"));
        assert!(status.rollout.and_then(|r| r.halted).is_some());
    }
}
