//! The rollout planner as stories: a handful of hosts whose gossip is perfect (each sees what
//! the others publish at once), driven step by step, so each rule shows on its own. The
//! simulator (`tests/tests/simulator.rs`) checks the same rules under loss, partitions and
//! crashes.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use shoal_shared::gossip::{GroupState, Halt, Promote, Resume, Step, Target};
use shoal_shared::rollout::plan::{CommandError, Cut, MAX_INTERRUPTIONS, Peer, Wait};
use shoal_shared::rollout::{
    Action, Amount, Command, Event, Memory, Outcome, Planner, Policy, Revision, Settings, Strategy,
    View,
};

const SECOND: u64 = 1000;

/// Hosts `h0…` of one group, all knowing each other, with a clock in milliseconds.
struct Group {
    hosts: Vec<Planner>,
    alive: Vec<bool>,
    now: u64,
}

fn target(name: &str) -> Target {
    Target {
        id: shoal_shared::rollout::deployment_id("web", &format!("git:{name}")),
        revision: name.to_owned(),
        digest: format!("git:{name}"),
    }
}

fn settings(node: &str) -> Settings {
    Settings {
        node: node.to_owned(),
        warmup: 0,
        forget_after: 600 * SECOND,
        expected_members: None,
    }
}

fn installed(name: &str) -> Memory {
    Memory {
        state: Some(GroupState {
            revision: Some(name.to_owned()),
            digest: Some(format!("git:{name}")),
            ..GroupState::default()
        }),
        ..Memory::default()
    }
}

impl Group {
    fn new(n: usize) -> Group {
        let hosts = (0..n)
            .map(|i| {
                Planner::new(
                    settings(&format!("h{i}")),
                    installed("v1"),
                    &Policy::default(),
                    0,
                )
            })
            .collect();
        Group {
            hosts,
            alive: vec![true; n],
            now: 0,
        }
    }

    /// What host `i` sees: every other host as it publishes now.
    fn view_of(&self, i: usize) -> View<'_> {
        View {
            peers: self
                .hosts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, h)| {
                    let memory = h.memory();
                    Peer {
                        node: h.node(),
                        alive: self.alive[j],
                        recent: self.alive[j],
                        state: h.published(),
                        halt: memory.halt.as_ref(),
                        resume: memory.resume.as_ref(),
                        promote: memory.promote.as_ref(),
                    }
                })
                .collect(),
            duplicate: false,
        }
    }

    fn step(&mut self, i: usize, event: Event) -> Vec<Action> {
        let mut planner = self.hosts[i].clone();
        let actions = planner.step(event, &self.view_of(i), self.now);
        self.hosts[i] = planner;
        actions
    }

    /// Every alive host verifies `name` with `policy`; returns who started.
    fn release(&mut self, name: &str, policy: &Policy) -> Vec<usize> {
        let mut started = Vec::new();
        for i in 0..self.hosts.len() {
            if !self.alive[i] {
                continue;
            }
            let event = Event::Release {
                target: target(name),
                policy: policy.clone(),
            };
            if self
                .step(i, event)
                .iter()
                .any(|a| matches!(a, Action::Deploy(_)))
            {
                started.push(i);
            }
        }
        started.extend(self.settle());
        started.sort();
        started.dedup();
        started
    }

    /// Steps every alive host until nobody starts anything more; returns who started.
    fn settle(&mut self) -> Vec<usize> {
        let mut started = Vec::new();
        loop {
            let before: Vec<_> = self.hosts.iter().map(|h| h.memory().clone()).collect();
            let mut any = false;
            for i in 0..self.hosts.len() {
                if !self.alive[i] {
                    continue;
                }
                let actions = self.step(i, Event::Tick);
                if actions.iter().any(|a| matches!(a, Action::Deploy(_))) {
                    started.push(i);
                    any = true;
                }
            }
            let after: Vec<_> = self.hosts.iter().map(|h| h.memory().clone()).collect();
            if !any && before == after {
                return started;
            }
        }
    }

    fn running(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|i| self.hosts[*i].step_now() == Some(Step::Running))
            .collect()
    }

    /// Host `i`'s run ends with `outcome`; a revert it asks for then succeeds.
    fn finish(&mut self, i: usize, outcome: Outcome) -> Vec<Action> {
        let mut actions = self.step(i, Event::Ran(outcome));
        if actions.iter().any(|a| matches!(a, Action::Revert(_))) {
            actions.extend(self.step(i, Event::Reverted { ok: true }));
        }
        actions
    }
}

fn policy(strategy: Strategy) -> Policy {
    Policy {
        strategy,
        min_healthy_time: Duration::ZERO,
        ..Policy::default()
    }
}

#[test]
fn rolling_takes_hosts_a_batch_at_a_time_in_the_same_order_everywhere() {
    let mut group = Group::new(8);
    let rolling = Policy {
        max_parallel: Amount::Percent(25),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &rolling);
    assert_eq!(first.len(), 2, "25% of 8 is 2: {first:?}");
    let order = group.hosts[0].order().to_vec();
    for host in &group.hosts {
        assert_eq!(host.order(), order, "every host orders the group the same");
    }
    let position = |g: &Group, i: usize| order.iter().position(|n| n == g.hosts[i].node());
    let mut starts: Vec<usize> = first
        .iter()
        .map(|i| position(&group, *i).unwrap())
        .collect();
    starts.sort();
    assert_eq!(starts, [0, 1], "the first two in the order go first");
    // The third in the order waits for one of the two ahead of it.
    let third = (0..8).find(|i| position(&group, *i) == Some(2)).unwrap();
    assert_eq!(group.hosts[third].wait(), &Wait::Turn { busy: 2, batch: 2 });
    // One done frees one slot, taken by the next host in the order.
    group.finish(first[0], Outcome::Done);
    let next = group.settle();
    assert_eq!(next.len(), 1);
    assert_eq!(position(&group, next[0]), Some(2));
    assert_eq!(group.running().len(), 2);
    // Then everyone arrives, never more than two at once.
    while group.hosts.iter().any(|h| h.step_now() != Some(Step::Done)) {
        let running = group.running();
        assert!(running.len() <= 2, "{running:?}");
        group.finish(running[0], Outcome::Done);
        group.settle();
    }
}

#[test]
fn non_canaries_wait_for_healthy_canaries_and_for_promotion_when_asked() {
    let mut group = Group::new(5);
    let canary = Policy {
        canary: Amount::Count(1),
        max_parallel: Amount::Count(2),
        auto_promote: false,
        ..policy(Strategy::Canary)
    };
    let first = group.release("v2", &canary);
    assert_eq!(first.len(), 1, "one canary: {first:?}");
    let other = (0..5).find(|i| *i != first[0]).unwrap();
    assert_eq!(group.hosts[other].wait(), &Wait::Canaries);
    group.finish(first[0], Outcome::Done);
    assert!(group.settle().is_empty(), "no start before promotion");
    assert_eq!(group.hosts[other].wait(), &Wait::Promotion);
    group.hosts[other]
        .command(Command::Promote { by: None })
        .unwrap();
    let next = group.settle();
    assert_eq!(next.len(), 2, "promoted: max_parallel 2 follow: {next:?}");
    // Again, here or on a host that heard of it: refused, saying so.
    let third = (0..5).find(|i| *i != first[0] && *i != other).unwrap();
    for host in [other, third] {
        let again = group.hosts[host].command(Command::Promote { by: None });
        assert!(
            matches!(&again, Err(CommandError::Promoted(_))),
            "host {host}: {again:?}"
        );
    }
}

#[test]
fn a_halted_or_self_promoting_canary_deployment_refuses_a_promote() {
    let mut group = Group::new(3);
    let canary = Policy {
        canary: Amount::Count(1),
        auto_promote: false,
        ..policy(Strategy::Canary)
    };
    let first = group.release("v2", &canary);
    group.finish(
        first[0],
        Outcome::Failed {
            reason: "ValidateService: exit 1".into(),
            changed_host: true,
        },
    );
    group.settle();
    let other = (0..3).find(|i| *i != first[0]).unwrap();
    let refused = group.hosts[other].command(Command::Promote { by: None });
    let Err(CommandError::Halted { host, reason, .. }) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(host, group.hosts[first[0]].node());
    assert!(reason.contains("ValidateService: exit 1"), "{reason}");

    let mut group = Group::new(3);
    let first = group.release("v3", &policy(Strategy::Canary));
    let other = (0..3).find(|i| *i != first[0]).unwrap();
    let refused = group.hosts[other].command(Command::Promote { by: None });
    assert!(
        matches!(&refused, Err(CommandError::AutoPromote(_))),
        "{refused:?}"
    );
}

#[test]
fn one_failure_halts_everyone_and_sends_the_hosts_that_moved_back() {
    let mut group = Group::new(4);
    let rolling = Policy {
        max_parallel: Amount::Count(2),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &rolling);
    assert_eq!(first.len(), 2);
    group.finish(first[0], Outcome::Done);
    group.finish(
        first[1],
        Outcome::Failed {
            reason: "ValidateService: exit 1".into(),
            changed_host: true,
        },
    );
    // The host that failed halts the release for the group; every host learns it at its next
    // step, nobody starts, and the host that was done goes back.
    let mut reverts = Vec::new();
    for i in 0..4 {
        for action in group.step(i, Event::Tick) {
            match action {
                Action::Revert(to) => reverts.push((i, to)),
                Action::Deploy(_) => panic!("host {i} started after the halt"),
                Action::CheckChannel(_) => {}
            }
        }
        let halt = group.hosts[i].halted().expect("halted");
        assert_eq!(halt.host, group.hosts[first[1]].node());
        assert!(halt.reason.contains("ValidateService"), "{}", halt.reason);
    }
    assert_eq!(
        reverts,
        [(
            first[0],
            Revision {
                name: "v1".into(),
                digest: "git:v1".into()
            }
        )]
    );
    group.step(first[0], Event::Reverted { ok: true });
    assert_eq!(group.hosts[first[0]].step_now(), Some(Step::Reverted));
    assert_eq!(
        group.hosts[first[0]]
            .published()
            .unwrap()
            .revision
            .as_deref(),
        Some("v1")
    );
    // A newer release lifts the halt.
    let again = group.release("v3", &rolling);
    assert_eq!(again.len(), 2);
    assert!(group.hosts.iter().all(|h| h.halted().is_none()));
}

#[test]
fn failures_up_to_max_failures_do_not_halt() {
    let mut group = Group::new(4);
    let tolerant = Policy {
        max_parallel: Amount::Count(1),
        max_failures: 1,
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &tolerant);
    group.finish(
        first[0],
        Outcome::Failed {
            reason: "boom".into(),
            changed_host: true,
        },
    );
    let next = group.settle();
    assert_eq!(next.len(), 1, "one failure is tolerated");
    group.finish(
        next[0],
        Outcome::Failed {
            reason: "boom".into(),
            changed_host: true,
        },
    );
    assert!(group.settle().is_empty(), "the second failure halts");
    assert!(group.hosts.iter().all(|h| h.halted().is_some()));
}

#[test]
fn a_minority_starts_nothing() {
    let mut group = Group::new(5);
    // h0 remembers five members; three of them are now dead.
    group.release("v0", &policy(Strategy::AllAtOnce));
    for i in 0..5 {
        group.finish(i, Outcome::Done);
    }
    group.alive = vec![true, true, false, false, false];
    let started = group.release("v2", &policy(Strategy::AllAtOnce));
    assert!(started.is_empty(), "{started:?}");
    assert_eq!(
        group.hosts[0].wait(),
        &Wait::NoMajority {
            alive: 2,
            members: 5
        }
    );
    // The majority comes back: it starts.
    group.alive[2] = true;
    assert_eq!(group.settle().len(), 2);
}

#[test]
fn a_dead_host_keeps_its_place_until_it_is_forgotten() {
    let mut group = Group::new(5);
    let one = Policy {
        max_parallel: Amount::Count(1),
        progress_deadline: Duration::from_secs(3600),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one);
    assert_eq!(first.len(), 1);
    // The runner dies mid-hook: its slot stays taken.
    group.alive[first[0]] = false;
    assert!(group.settle().is_empty(), "a dead runner keeps its slot");
    group.alive[first[0]] = true;
    group.finish(first[0], Outcome::Done);
    // The next host in the order dies before its turn. It may only look dead (a partition
    // that is healing): nobody goes past it while it is remembered.
    let order = group.hosts[0].order().to_vec();
    let nodes: Vec<String> = group.hosts.iter().map(|h| h.node().to_owned()).collect();
    let index = |node: &str| nodes.iter().position(|n| n == node).unwrap();
    let second = index(&order[1]);
    group.alive[second] = false;
    assert!(group.settle().is_empty(), "a dead host ahead still counts");
    // Forgotten after the dead-node grace, it no longer holds anyone back.
    group.now += 601 * SECOND;
    let next = group.settle();
    assert_eq!(next, [index(&order[2])], "forgotten, it is passed");
    assert!(
        group.hosts[index(&order[2])]
            .order()
            .iter()
            .all(|n| *n != order[1]),
        "and it left the order"
    );
}

fn cut(cut: Cut) -> Outcome {
    Outcome::Interrupted {
        reason: "interrupted by agent restart during BeforeInstall".into(),
        changed_host: true,
        cut,
    }
}

/// A crash in the middle of a hook of a good release is no reason to halt: the host runs the
/// release again from the start, after a restart, holding its slot meanwhile.
#[test]
fn a_crashed_run_runs_again_from_the_start_and_holds_its_slot() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    // Crash: a new planner from the persisted memory.
    let memory: Memory =
        serde_json::from_str(&serde_json::to_string(group.hosts[first].memory()).unwrap()).unwrap();
    let node = group.hosts[first].node().to_owned();
    group.hosts[first] = Planner::new(settings(&node), memory, &Policy::default(), group.now);
    assert_eq!(group.hosts[first].step_now(), Some(Step::Running));
    assert!(
        group.finish(first, cut(Cut::Crashed)).is_empty(),
        "no revert"
    );
    assert!(group.settle().is_empty(), "its slot stays taken");
    let published = group.hosts[first].published().unwrap();
    assert_eq!(
        (published.step, published.failures),
        (Some(Step::Running), 0)
    );
    assert!(group.hosts[first].halted().is_none());
    assert_eq!(group.hosts[first].wait(), &Wait::Fetching);
    let again = group.step(
        first,
        Event::Release {
            target: target("v2"),
            policy: one.clone(),
        },
    );
    assert_eq!(again, [Action::Deploy(target("v2"))], "from the start");
    assert_eq!(group.finish(first, Outcome::Done), []);
    assert_eq!(group.settle().len(), 1, "the next host's turn");
}

/// A newer release that comes while a host waits to run a cut run again replaces it: the
/// host does not wait for files of a release its channel no longer offers.
#[test]
fn a_newer_release_replaces_a_cut_run_waiting_to_run_again() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    assert!(group.step(first, Event::Ran(cut(Cut::Crashed))).is_empty());
    assert_eq!(group.hosts[first].step_now(), Some(Step::Running));
    let started = group.release("v3", &one);
    assert_eq!(group.hosts[first].target(), Some(&target("v3")));
    assert_eq!(started.len(), 1, "one host takes v3's slot: {started:?}");
    assert_eq!(group.hosts[first].published().unwrap().failures, 0);
}

/// The same when the newer release came while the cut run ran: it goes next.
#[test]
fn a_release_queued_behind_a_cut_run_goes_instead_of_running_it_again() {
    let mut group = Group::new(1);
    let one = policy(Strategy::Rolling);
    assert_eq!(group.release("v2", &one), [0]);
    let queued = group.step(
        0,
        Event::Release {
            target: target("v3"),
            policy: one.clone(),
        },
    );
    assert!(queued.is_empty());
    // Its files came with the release, in this run of the agent.
    let actions = group.step(0, Event::Ran(cut(Cut::Crashed)));
    assert_eq!(actions, [Action::Deploy(target("v3"))]);
    assert_eq!(group.hosts[0].published().unwrap().failures, 0);
}

/// A planned stop (a restart, an upgrade of the agent) never counts, up to
/// `MAX_INTERRUPTIONS` times on one host; then it does.
#[test]
fn planned_stops_do_not_count_until_they_repeat_too_often() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    let release = Event::Release {
        target: target("v2"),
        policy: one.clone(),
    };
    for _ in 0..MAX_INTERRUPTIONS {
        assert!(group.finish(first, cut(Cut::Stopped)).is_empty());
        assert_eq!(group.hosts[first].published().unwrap().failures, 0);
        assert_eq!(
            group.step(first, release.clone()),
            [Action::Deploy(target("v2"))]
        );
    }
    let actions = group.step(first, Event::Ran(cut(Cut::Stopped)));
    assert!(
        matches!(&actions[..], [Action::Revert(r)] if r.name == "v1"),
        "{actions:?}"
    );
    assert_eq!(group.hosts[first].published().unwrap().failures, 1);
    assert!(group.hosts[first].halted().is_some(), "max_failures 0");
}

/// A halt while a host waits to run its release again sends it back: the run it cut short
/// changed it.
#[test]
fn a_halt_while_a_cut_run_waits_to_run_again_sends_the_host_back() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    assert!(group.step(first, Event::Ran(cut(Cut::Crashed))).is_empty());
    let other = (first + 1) % 3;
    group.hosts[other]
        .command(Command::Halt {
            reason: "operator".into(),
            by: None,
        })
        .unwrap();
    group.step(other, Event::Tick);
    let actions = group.step(first, Event::Tick);
    assert!(
        matches!(&actions[..], [Action::Revert(r)] if r.name == "v1"),
        "{actions:?}"
    );
    assert_eq!(group.hosts[first].step_now(), Some(Step::Reverting));
    group.step(first, Event::Reverted { ok: true });
    assert_eq!(group.hosts[first].step_now(), Some(Step::Reverted));
}

#[test]
fn resume_starts_a_new_epoch_once_everyone_knows() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    group.finish(
        first,
        Outcome::Failed {
            reason: "boom".into(),
            changed_host: true,
        },
    );
    group.settle();
    assert!(group.hosts.iter().all(|h| h.halted().is_some()));
    let other = (first + 1) % 3;
    group.hosts[other]
        .command(Command::Resume { by: None })
        .unwrap();
    // The host that resumed waits until every alive member is in the new epoch.
    let actions = group.step(other, Event::Tick);
    assert!(actions.is_empty());
    assert_eq!(group.hosts[other].wait(), &Wait::Resuming);
    let started = group.settle();
    assert_eq!(started.len(), 1, "the rollout goes on: {started:?}");
    assert!(group.hosts.iter().all(|h| h.halted().is_none()));
    assert!(
        group
            .hosts
            .iter()
            .all(|h| h.published().unwrap().epoch == 1)
    );
}

#[test]
fn no_progress_within_the_deadline_halts() {
    let mut group = Group::new(2);
    let slow = Policy {
        max_parallel: Amount::Count(1),
        progress_deadline: Duration::from_secs(60),
        ..policy(Strategy::Rolling)
    };
    group.release("v2", &slow);
    group.now += 59 * SECOND;
    group.settle();
    assert!(group.hosts.iter().all(|h| h.halted().is_none()));
    group.now += 2 * SECOND;
    group.settle();
    let halt = group.hosts[0].halted().expect("halted by the deadline");
    assert!(halt.reason.contains("progress deadline"), "{}", halt.reason);
}

#[test]
fn linear_adds_a_step_every_period_after_the_previous_one_is_done() {
    let mut group = Group::new(4);
    let linear = Policy {
        strategy: Strategy::Linear,
        linear: Some(shoal_shared::rollout::Linear {
            step: Amount::Count(2),
            every: Duration::from_secs(30),
        }),
        ..policy(Strategy::Linear)
    };
    let first = group.release("v2", &linear);
    assert_eq!(first.len(), 2);
    for i in &first {
        group.finish(*i, Outcome::Done);
    }
    assert!(group.settle().is_empty(), "every 30 s");
    group.now += 30 * SECOND;
    assert_eq!(group.settle().len(), 2);
}

#[test]
fn gossip_announces_a_release_a_host_has_not_verified_yet() {
    let mut group = Group::new(2);
    group.step(
        0,
        Event::Release {
            target: target("v2"),
            policy: policy(Strategy::Rolling),
        },
    );
    let actions = group.step(1, Event::Tick);
    assert_eq!(actions, [Action::CheckChannel(target("v2"))]);
    assert!(group.step(1, Event::Tick).is_empty(), "announced once");
}

#[test]
fn halts_and_resumes_from_peers_are_only_taken_for_the_same_deployment() {
    let mut group = Group::new(2);
    group.release("v2", &policy(Strategy::Rolling));
    let stale = Halt {
        id: target("v1").id,
        epoch: 5,
        host: "h9".into(),
        reason: "old".into(),
        by: None,
    };
    let resume = Resume {
        id: target("v1").id,
        epoch: 5,
        by: None,
    };
    let promote = Promote {
        id: target("v1").id,
        by: None,
    };
    let view = View {
        peers: vec![Peer {
            node: "h9",
            alive: true,
            recent: true,
            state: None,
            halt: Some(&stale),
            resume: Some(&resume),
            promote: Some(&promote),
        }],
        duplicate: false,
    };
    let mut host = group.hosts[0].clone();
    host.step(Event::Tick, &view, 0);
    assert!(host.halted().is_none());
    assert_eq!(host.published().unwrap().epoch, 0);
    assert!(host.memory().promote.is_none());
}

/// Every host of the group done on `name`, one batch at a time.
fn roll_out(group: &mut Group, name: &str, policy: &Policy) {
    let mut started = group.release(name, policy);
    while !started.is_empty() {
        for i in started {
            group.finish(i, Outcome::Done);
        }
        started = group.settle();
    }
    assert!(
        group.hosts.iter().all(|h| h.step_now() == Some(Step::Done)),
        "every host done"
    );
}

/// A holder of the cluster key joins once a release is done everywhere, names itself a member
/// on that deployment, and halts it: no host goes back, and each counts the halt it ignored.
/// Only `shoal halt` on a host sends that host back.
#[test]
fn a_halt_after_the_release_completed_sends_no_one_back() {
    let mut group = Group::new(3);
    roll_out(&mut group, "v2", &policy(Strategy::Rolling));
    group.settle();
    assert!(group.hosts.iter().all(Planner::complete));
    let on_v2 = GroupState {
        target: Some(target("v2")),
        step: Some(Step::Failed),
        failures: 1,
        reason: Some("ValidateService: exit 1".into()),
        ..GroupState::default()
    };
    let forged = Halt {
        id: target("v2").id,
        epoch: 0,
        host: "intruder".into(),
        reason: "intruder failed: ValidateService".into(),
        by: None,
    };
    for i in 0..3 {
        let mut view = group.view_of(i);
        view.peers.push(Peer {
            node: "intruder",
            alive: true,
            recent: true,
            state: Some(&on_v2),
            halt: Some(&forged),
            resume: None,
            promote: None,
        });
        let mut host = group.hosts[i].clone();
        for _ in 0..3 {
            let actions = host.step(Event::Tick, &view, group.now);
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Revert(_))),
                "h{i} went back from a completed release: {actions:?}"
            );
        }
        assert_eq!(host.step_now(), Some(Step::Done), "h{i}");
        assert_eq!(
            host.ignored_halts(),
            1,
            "h{i} counts the halt it did not act on"
        );
        group.hosts[i] = host;
    }
    // The operator on h0 may still send h0 back; the others keep the release.
    group.hosts[0]
        .command(Command::Halt {
            reason: "bad build".into(),
            by: None,
        })
        .unwrap();
    let actions = group.step(0, Event::Tick);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Revert(_))),
        "{actions:?}"
    );
    for i in 1..3 {
        let actions = group.step(i, Event::Tick);
        assert!(actions.is_empty(), "h{i}: {actions:?}");
        assert_eq!(group.hosts[i].step_now(), Some(Step::Done));
    }
}

/// While a release is in progress, a halt is taken only from a member whose own state is on
/// that deployment; one from a node outside it is ignored and counted.
#[test]
fn a_halt_from_a_node_not_in_the_deployment_is_ignored_and_counted() {
    let mut group = Group::new(3);
    let one_at_a_time = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one_at_a_time);
    group.finish(first[0], Outcome::Done);
    let elsewhere = GroupState {
        target: Some(target("v1")),
        ..GroupState::default()
    };
    let halt = Halt {
        id: target("v2").id,
        epoch: 0,
        host: "outsider".into(),
        reason: "outsider failed".into(),
        by: None,
    };
    for state in [None, Some(&elsewhere)] {
        let mut view = group.view_of(first[0]);
        view.peers.push(Peer {
            node: "outsider",
            alive: true,
            recent: true,
            state,
            halt: Some(&halt),
            resume: None,
            promote: None,
        });
        let mut host = group.hosts[first[0]].clone();
        let actions = host.step(Event::Tick, &view, group.now);
        assert!(
            host.halted().is_none(),
            "took the outsider's halt ({state:?})"
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::Revert(_))));
        assert_eq!(host.ignored_halts(), 1);
    }
}

/// The host whose run failed publishes the failure, and the halt it causes, before it goes
/// back: the hosts behind it stop at once, not a whole revert later.
#[test]
fn a_failure_and_its_halt_are_published_before_the_failing_host_goes_back() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    let actions = group.step(
        first,
        Event::Ran(Outcome::Failed {
            reason: "ValidateService: exit 1".into(),
            changed_host: true,
        }),
    );
    assert_eq!(
        actions,
        [Action::Revert(Revision {
            name: "v1".into(),
            digest: "git:v1".into()
        })]
    );
    let published = group.hosts[first].published().unwrap();
    assert_eq!(published.step, Some(Step::Reverting));
    assert_eq!(published.failures, 1);
    assert!(
        group.hosts[first].halted().is_some(),
        "halted before the revert"
    );
    // While it still goes back, nobody else starts.
    assert!(group.settle().is_empty());
    assert!(group.hosts.iter().all(|h| h.halted().is_some()));
    group.step(first, Event::Reverted { ok: true });
    assert_eq!(group.hosts[first].step_now(), Some(Step::Reverted));
}

/// A host whose revert failed stays failed for the operator: the halt does not send it back
/// again at every step.
#[test]
fn a_failed_revert_is_not_asked_for_again() {
    let mut group = Group::new(2);
    let all = policy(Strategy::AllAtOnce);
    let started = group.release("v2", &all);
    assert_eq!(started.len(), 2);
    group.finish(started[0], Outcome::Done);
    group.finish(
        started[1],
        Outcome::Failed {
            reason: "boom".into(),
            changed_host: true,
        },
    );
    let done = started[0];
    let actions = group.step(done, Event::Tick);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Revert(_))),
        "{actions:?}"
    );
    let after = group.step(done, Event::Reverted { ok: false });
    assert!(after.is_empty(), "{after:?}");
    for _ in 0..3 {
        assert!(group.step(done, Event::Tick).is_empty());
    }
    assert_eq!(group.hosts[done].step_now(), Some(Step::Failed));
}

/// A host cut off since before a resume may have started the release in the voided epoch (the
/// hosts ahead of it had settled then): until it is seen again or forgotten, it holds a slot,
/// wherever it stands in the order.
#[test]
fn a_host_cut_off_before_a_resume_may_be_running_and_holds_its_slot() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        progress_deadline: Duration::from_secs(3600),
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    group.finish(
        first,
        Outcome::Failed {
            reason: "boom".into(),
            changed_host: true,
        },
    );
    group.settle();
    assert!(group.hosts.iter().all(|h| h.halted().is_some()));
    let order = group.hosts[first].order().to_vec();
    let nodes: Vec<String> = group.hosts.iter().map(|h| h.node().to_owned()).collect();
    let index = |node: &str| nodes.iter().position(|n| n == node).unwrap();
    let (head, second, last) = (index(&order[0]), index(&order[1]), index(&order[2]));
    assert_eq!(head, first, "the first in the order went first");
    // The last in the order is cut off before it hears of the resume.
    group.alive[last] = false;
    group.hosts[first]
        .command(Command::Resume { by: None })
        .unwrap();
    group.step(first, Event::Tick);
    group.step(second, Event::Tick);
    let actions = group.step(head, Event::Tick);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(group.hosts[head].wait(), &Wait::Turn { busy: 1, batch: 1 });
    // Forgotten after the dead-node grace, it holds nothing any more.
    group.now += 601 * SECOND;
    assert_eq!(group.settle(), [head]);
}

/// A run cut short by a second crash keeps its slot while the host goes back, and the host then
/// waits for its turn again: it never shows a settled step that becomes unsettled in the same
/// epoch, so nobody behind it takes the slot meanwhile.
#[test]
fn a_run_cut_short_keeps_its_slot_while_it_goes_back() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        max_failures: 1,
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    // The first crash runs it again; the second counts.
    assert!(group.step(first, Event::Ran(cut(Cut::Crashed))).is_empty());
    group.step(
        first,
        Event::Release {
            target: target("v2"),
            policy: one.clone(),
        },
    );
    let actions = group.step(first, Event::Ran(cut(Cut::Crashed)));
    assert!(
        matches!(&actions[..], [Action::Revert(r)] if r.name == "v1"),
        "{actions:?}"
    );
    let published = group.hosts[first].published().unwrap();
    assert_eq!(
        (published.step, published.failures),
        (Some(Step::Running), 1)
    );
    assert!(group.settle().is_empty(), "its slot stays taken");
    group.step(first, Event::Reverted { ok: true });
    assert_eq!(group.hosts[first].step_now(), Some(Step::Waiting));
    assert_eq!(group.hosts[first].wait(), &Wait::Fetching);
}

/// Hosts `cut` see only each other: every other host is dead to them (a partition).
fn cut_off(group: &mut Group, cut: &[usize]) {
    for i in 0..group.hosts.len() {
        group.alive[i] = cut.contains(&i);
    }
}

/// A minority cut off for far longer than the dead-node grace never becomes a majority of
/// itself: the others leave its rollout order but still count in its quorum.
#[test]
fn a_minority_cut_off_for_hours_starts_nothing() {
    let mut group = Group::new(5);
    group.settle();
    cut_off(&mut group, &[3, 4]);
    for _ in 0..6 {
        group.now += 3600 * SECOND;
        group.step(3, Event::Tick);
        group.step(4, Event::Tick);
    }
    let started = group.release("v2", &policy(Strategy::AllAtOnce));
    assert!(started.is_empty(), "{started:?} started in a minority");
    assert_eq!(
        group.hosts[3].wait(),
        &Wait::NoMajority {
            alive: 2,
            members: 5
        }
    );
    let memory = group.hosts[3].memory();
    assert_eq!(memory.members.len(), 1, "the others left its order");
    assert_eq!(memory.known.len(), 4, "and still count");
}

/// With the group's expected size configured, the quorum is a majority of it: members gone
/// quiet stop counting once forgotten, and a minority still starts nothing.
#[test]
fn with_an_expected_size_the_quorum_is_a_majority_of_it() {
    let mut group = Group::new(5);
    for (i, host) in group.hosts.iter_mut().enumerate() {
        *host = Planner::new(
            Settings {
                expected_members: Some(5),
                ..settings(&format!("h{i}"))
            },
            installed("v1"),
            &Policy::default(),
            0,
        );
    }
    group.settle();
    cut_off(&mut group, &[3, 4]);
    group.now += 3600 * SECOND;
    assert!(group.release("v2", &policy(Strategy::AllAtOnce)).is_empty());
    assert_eq!(
        group.hosts[3].wait(),
        &Wait::NoMajority {
            alive: 2,
            members: 5
        }
    );
    assert!(
        group.hosts[3].memory().known.len() <= 2,
        "gone-quiet members forgotten"
    );
}

/// `shoal forget` of the dead members, on one host: every host drops them, and the hosts left
/// are a majority again.
#[test]
fn forgetting_dead_members_gives_the_rest_their_quorum_back() {
    let mut group = Group::new(4);
    group.settle();
    cut_off(&mut group, &[0]);
    group.alive[1] = true;
    group.now += 3600 * SECOND;
    group.settle();
    assert!(
        group.release("v2", &policy(Strategy::AllAtOnce)).is_empty(),
        "2 of 4"
    );
    assert_eq!(
        group.hosts[0].command(Command::Forget { node: "h0".into() }),
        Err(CommandError::Itself("h0".into()))
    );
    assert!(matches!(
        group.hosts[0].command(Command::Forget { node: "h9".into() }),
        Err(CommandError::NotAMember { .. })
    ));
    group.hosts[0]
        .command(Command::Forget { node: "h2".into() })
        .unwrap();
    let mut started = group.settle();
    started.sort_unstable();
    // h1 learns the forget from h0; h3 is still counted, so 2 of 3 is a majority.
    assert_eq!(started, [0, 1], "h0 and h1 start v2");
    assert_eq!(group.hosts[1].memory().known.len(), 2, "h0 and h3");
}

/// A host that leaves is dropped by the others at once, and starts nothing itself.
#[test]
fn a_host_that_leaves_is_dropped_at_once_and_starts_nothing() {
    let mut group = Group::new(3);
    group.settle();
    group.hosts[2].command(Command::Leave).unwrap();
    group.step(2, Event::Tick);
    group.settle();
    for i in 0..2 {
        assert!(!group.hosts[i].memory().known.contains("h2"), "h{i}");
    }
    let started = group.release("v2", &policy(Strategy::AllAtOnce));
    assert!(!started.contains(&2), "{started:?}");
    assert_eq!(started.len(), 2);
    assert_eq!(group.hosts[2].wait(), &Wait::Leaving);
}

/// Peers the failure detector still deems alive but not heard from within the last few
/// rounds do not make a majority: a host just cut off starts nothing in the seconds its
/// detector takes.
#[test]
fn peers_not_heard_from_lately_make_no_majority() {
    let mut group = Group::new(3);
    group.settle();
    let peers: Vec<(String, GroupState)> = (1..3)
        .map(|j| {
            let host = &group.hosts[j];
            (host.node().to_owned(), host.published().unwrap().clone())
        })
        .collect();
    for recent in [false, true] {
        let view = View {
            peers: peers
                .iter()
                .map(|(node, state)| Peer {
                    recent,
                    ..Peer::new(node, true, Some(state))
                })
                .collect(),
            duplicate: false,
        };
        let mut host = group.hosts[0].clone();
        let actions = host.step(
            Event::Release {
                target: target("v2"),
                policy: policy(Strategy::AllAtOnce),
            },
            &view,
            group.now,
        );
        if recent {
            assert_eq!(actions, [Action::Deploy(target("v2"))]);
        } else {
            assert!(actions.is_empty(), "{actions:?}");
            assert_eq!(
                host.wait(),
                &Wait::NoMajority {
                    alive: 1,
                    members: 3
                }
            );
        }
    }
}

/// A run cut short holds its slot in its own epoch only: after a halt and a resume, the host
/// takes its turn again in the new epoch rather than running at once.
#[test]
fn a_resume_sends_a_cut_run_back_to_its_turn() {
    let mut group = Group::new(3);
    let one = Policy {
        max_parallel: Amount::Count(1),
        max_failures: 1,
        ..policy(Strategy::Rolling)
    };
    let first = group.release("v2", &one)[0];
    assert!(group.step(first, Event::Ran(cut(Cut::Crashed))).is_empty());
    let other = (first + 1) % 3;
    group.hosts[other]
        .command(Command::Halt {
            reason: "operator".into(),
            by: None,
        })
        .unwrap();
    group.step(other, Event::Tick);
    group.hosts[other]
        .command(Command::Resume { by: None })
        .unwrap();
    group.step(other, Event::Tick);
    // The halt and the resume reach the cut-off host together.
    let actions = group.step(first, Event::Tick);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Deploy(_))),
        "{actions:?}"
    );
    assert_eq!(group.hosts[first].step_now(), Some(Step::Waiting));
    assert!(!group.hosts[first].memory().rerun);
}

/// A forget from a node outside the group drops no one, and a forget of a member alive drops
/// it nowhere: a peer cannot shrink the quorum by claiming others gone.
#[test]
fn forgets_from_outsiders_and_of_live_members_drop_no_one() {
    let mut group = Group::new(3);
    group.settle();
    let outsider = GroupState {
        forgets: vec!["h1".into(), "h2".into()],
        ..GroupState::default()
    };
    group.alive[1] = false;
    let mut view = group.view_of(0);
    view.peers
        .push(Peer::new("intruder", true, Some(&outsider)));
    let mut host = group.hosts[0].clone();
    host.step(Event::Tick, &view, group.now);
    let known = &host.memory().known;
    assert!(known.contains("h1") && known.contains("h2"), "{known:?}");

    group.alive[1] = true;
    group.hosts[1]
        .command(Command::Forget { node: "h2".into() })
        .unwrap();
    group.settle();
    for i in 0..3 {
        assert_eq!(
            group.hosts[i].memory().known.len(),
            2,
            "h{i} keeps every live member"
        );
    }
}
