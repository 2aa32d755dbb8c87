//! One group's host (`GroupHost`): what follows a run, a failure, a restart or a halt, as the
//! agent and the simulator carry it out. A group of one host, so every decision shows alone;
//! the simulator (`tests/tests/simulator.rs`) runs the same code under crashes in a mesh.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::Duration;

use shoal_shared::gossip::{Step, Target};
use shoal_shared::rollout::{
    Command, Ended, Failure, GroupHost, InFlight, Installed, Journal, MAX_REVERT_ATTEMPTS, Policy,
    Settings, View, Work, deployment_id,
};

fn target(name: &str) -> Target {
    let digest = format!("git:{name}");
    Target {
        id: deployment_id("web", &digest),
        revision: name.to_owned(),
        digest,
    }
}

fn policy(auto_revert: bool) -> Policy {
    Policy {
        min_healthy_time: Duration::ZERO,
        auto_revert,
        ..Policy::default()
    }
}

fn start(journal: Journal) -> GroupHost {
    let settings = Settings {
        node: "h0".into(),
        warmup: 0,
        forget_after: 600_000,
        expected_members: None,
    };
    GroupHost::start("web", settings, journal, &policy(true), 0)
}

/// The journal of a host that runs `name` from `/root/web/<name>`.
fn running(name: &str) -> Journal {
    let installed = Installed {
        revision: name.into(),
        digest: format!("git:{name}"),
        dir: PathBuf::from(format!("/root/web/{name}")),
    };
    Journal {
        current: Some(installed.clone()),
        last_known_good: Some(installed),
        ..Journal::empty()
    }
}

fn the_run(work: &[Work]) -> InFlight {
    let runs: Vec<&InFlight> = work
        .iter()
        .filter_map(|w| match w {
            Work::Run(run) => Some(run),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 1, "one run asked for: {work:?}");
    runs[0].clone()
}

fn failed(changed_host: bool, installed: bool) -> Failure {
    Failure {
        reason: "ValidateService: exit 1".into(),
        changed_host,
        installed,
    }
}

/// A host on v1 that deploys v2; returns the host and v2's run, journaled in flight.
fn deploying_v2(auto_revert: bool) -> (GroupHost, InFlight) {
    let mut host = start(running("v1"));
    let work = host.release(
        target("v2"),
        policy(auto_revert),
        "/cache/v2".into(),
        &View::default(),
        1,
    );
    let run = the_run(&work);
    assert_eq!(host.journal().in_flight.as_ref(), Some(&run));
    assert_eq!(host.journal().last_target.as_deref(), Some("v2"));
    host.at_step(Some(&PathBuf::from("/root/web/d-v2")), "BeforeInstall");
    (host, run)
}

#[test]
fn a_success_makes_the_release_current_and_last_known_good() {
    let (mut host, _) = deploying_v2(true);
    let dir = PathBuf::from("/root/web/d-v2");
    let work = host.ended(Ended::Succeeded { dir: dir.clone() }, &View::default(), 2);
    assert!(work.is_empty(), "{work:?}");
    let journal = host.journal();
    assert_eq!(journal.in_flight, None);
    assert_eq!(journal.current.as_ref().map(|c| &c.dir), Some(&dir));
    assert_eq!(
        journal
            .last_known_good
            .as_ref()
            .map(|c| c.revision.as_str()),
        Some("v2")
    );
    assert_eq!(
        journal.previous.as_ref().map(|c| c.revision.as_str()),
        Some("v1")
    );
    assert_eq!(host.planner().step_now(), Some(Step::Done));
    assert!(host.take_changed());
}

/// The failure is in the journal (and published) in the same write that journals the revert.
#[test]
fn a_failure_that_changed_the_host_is_published_and_reverted_in_one_write() {
    let (mut host, run) = deploying_v2(true);
    host.take_changed();
    let work = host.ended(Ended::Failed(failed(true, true)), &View::default(), 2);
    let revert = the_run(&work);
    assert_eq!(revert.reverts.as_deref(), Some(run.deployment_id.as_str()));
    assert_eq!(revert.revision, "v1");
    assert_eq!(
        revert.bundle,
        PathBuf::from("/root/web/v1/deployment-archive")
    );
    assert!(host.take_changed());
    let journal = host.journal();
    assert_eq!(journal.in_flight.as_ref(), Some(&revert));
    assert_eq!(
        journal.current.as_ref().map(|c| c.revision.as_str()),
        Some("v2")
    );
    let state = journal
        .plan
        .as_ref()
        .and_then(|m| m.state.as_ref())
        .unwrap();
    assert_eq!((state.step, state.failures), (Some(Step::Reverting), 1));
    assert!(
        journal.plan.as_ref().unwrap().halt.is_some(),
        "halted before the revert"
    );
}

#[test]
fn without_auto_revert_a_failed_host_stays_as_it_is_and_says_why() {
    let (mut host, _) = deploying_v2(false);
    let work = host.ended(Ended::Failed(failed(true, true)), &View::default(), 2);
    assert!(
        matches!(&work[..], [Work::Unreverted { why, .. }] if why.contains("auto_revert is off")),
        "{work:?}"
    );
    assert_eq!(host.planner().step_now(), Some(Step::Failed));
    assert_eq!(host.journal().in_flight, None);
}

#[test]
fn a_run_cut_short_before_it_changed_anything_runs_again() {
    let (host, _) = deploying_v2(true);
    let mut restarted = start(host.journal().clone());
    let work = restarted.recover(failed(false, false), &View::default(), 5);
    assert!(work.is_empty(), "the files first: {work:?}");
    assert_eq!(restarted.planner().step_now(), Some(Step::Waiting));
    assert_eq!(
        restarted.journal().last_target,
        None,
        "the channel gives it again"
    );
    let again = restarted.release(
        target("v2"),
        policy(true),
        "/cache/v2".into(),
        &View::default(),
        6,
    );
    assert_eq!(the_run(&again).revision, "v2");
}

/// A revert cut short is tried again to the revision it was installing, whatever the journal
/// holds as last known good, a few times, then left to the operator.
#[test]
fn a_revert_cut_short_is_retried_to_the_same_revision_then_given_up() {
    let (mut host, _) = deploying_v2(true);
    host.ended(
        Ended::Succeeded {
            dir: "/root/web/d-v2".into(),
        },
        &View::default(),
        2,
    );
    host.command(Command::Halt {
        reason: "bad build".into(),
        by: None,
    })
    .unwrap();
    let work = host.step(shoal_shared::rollout::Event::Tick, &View::default(), 3);
    let mut revert = the_run(&work);
    assert_eq!((revert.revision.as_str(), revert.attempt), ("v1", 1));
    for attempt in 2..=MAX_REVERT_ATTEMPTS {
        let mut restarted = start(host.journal().clone());
        let work = restarted.recover(failed(true, false), &View::default(), 4);
        let retry = the_run(&work);
        assert_eq!((retry.revision.as_str(), retry.attempt), ("v1", attempt));
        assert_eq!(retry.deployment_id, revert.deployment_id);
        assert_eq!(restarted.planner().step_now(), Some(Step::Reverting));
        revert = retry;
        host = restarted;
    }
    let mut restarted = start(host.journal().clone());
    let work = restarted.recover(failed(true, false), &View::default(), 9);
    assert!(
        matches!(&work[..], [Work::Unreverted { why, .. }] if why.contains("cut short 3 times")),
        "{work:?}"
    );
    assert_eq!(restarted.planner().step_now(), Some(Step::Failed));
    let more = restarted.step(shoal_shared::rollout::Event::Tick, &View::default(), 10);
    assert!(more.is_empty(), "not sent back again: {more:?}");
}

/// A journal with the rollout mid-run and nothing in flight (an older agent wrote the two
/// apart) heals at the start.
#[test]
fn a_step_left_without_a_run_heals() {
    let (host, _) = deploying_v2(true);
    let mut journal = host.journal().clone();
    journal.in_flight = None;
    let mut running = start(journal.clone());
    let work = running.recover(failed(false, false), &View::default(), 5);
    assert!(work.is_empty(), "{work:?}");
    assert_eq!(running.planner().step_now(), Some(Step::Waiting));

    let state = journal
        .plan
        .as_mut()
        .and_then(|m| m.state.as_mut())
        .unwrap();
    state.step = Some(Step::Reverting);
    let mut reverting = start(journal);
    let work = reverting.recover(failed(false, false), &View::default(), 5);
    assert_eq!(
        the_run(&work).revision,
        "v1",
        "the revert is asked for again"
    );
}

/// A host's journal written and read back, as a restart finds it.
fn restarted(host: &GroupHost) -> GroupHost {
    let text = serde_json::to_string(host.journal()).unwrap();
    start(serde_json::from_str(&text).unwrap())
}

/// A shutdown in the middle of a run is journaled as a planned stop; the next start runs the
/// release again from the start once the channel gives it again, and counts no failure.
#[test]
fn a_planned_stop_runs_the_release_again_without_a_failure() {
    let (mut host, run) = deploying_v2(true);
    host.take_changed();
    assert!(host.ended(Ended::Stopped, &View::default(), 2).is_empty());
    assert!(host.take_changed(), "the stop is written down");
    assert!(host.journal().in_flight.as_ref().is_some_and(|r| r.stopped));
    let mut host = restarted(&host);
    let work = host.recover(failed(true, false), &View::default(), 3);
    assert!(work.is_empty(), "no revert: {work:?}");
    let state = host.planner().published().unwrap();
    assert_eq!((state.step, state.failures), (Some(Step::Running), 0));
    assert_eq!(host.wants_release(), Some("v2"));
    // A restart while it waits for the files keeps it so.
    let mut host = restarted(&host);
    assert!(
        host.recover(failed(false, false), &View::default(), 4)
            .is_empty()
    );
    assert_eq!(host.wants_release(), Some("v2"));
    let work = host.release(
        target("v2"),
        policy(true),
        "/cache/v2".into(),
        &View::default(),
        5,
    );
    let again = the_run(&work);
    assert_eq!(
        (again.deployment_id, again.stopped),
        (run.deployment_id, false)
    );
}

/// A crash (no stop written down) is run again once; the second crash of the same release
/// counts as a failure and the host goes back.
#[test]
fn a_second_crash_of_one_release_counts_as_a_failure() {
    let (host, _) = deploying_v2(true);
    let mut host = restarted(&host);
    assert!(
        host.recover(failed(true, false), &View::default(), 2)
            .is_empty()
    );
    let work = host.release(
        target("v2"),
        policy(true),
        "/cache/v2".into(),
        &View::default(),
        3,
    );
    the_run(&work);
    host.at_step(Some(&PathBuf::from("/root/web/d-v2b")), "AfterInstall");
    let mut host = restarted(&host);
    let work = host.recover(failed(true, true), &View::default(), 4);
    let revert = the_run(&work);
    assert_eq!(revert.revision, "v1");
    let state = host.planner().published().unwrap();
    assert_eq!(state.failures, 1);
}
