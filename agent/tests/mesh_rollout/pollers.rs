//! Few pollers: six hosts on a remote channel (`git://` through a counting proxy). Three of
//! them poll the origin; the others leave it alone until gossip announces a release, then all
//! six deploy it. Restarted one by one, the three others are ready again without a look at the
//! origin, on a store as on git. When a poller stops, another host takes its place.

use std::time::Duration;

use shoal_tests::poll_until;

use super::fleet::{Fleet, Hooks};

const WAIT: Duration = Duration::from_secs(120);

/// A counter or gauge of group `web` in host `i`'s `/metrics`.
pub(super) fn metric(fleet: &Fleet, i: usize, name: &str) -> Option<u64> {
    let text = fleet.get(i, "/metrics").body;
    let line = format!("{name}{{group=\"web\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
}

/// The hosts (of `hosts`) whose poller gauge says they poll, once every one of them says the
/// same `count` hosts poll.
pub(super) fn wait_pollers(fleet: &Fleet, hosts: &[usize], count: usize) -> Vec<usize> {
    poll_until(WAIT, || {
        let gauges: Vec<Option<u64>> = hosts
            .iter()
            .map(|&i| metric(fleet, i, "shoal_channel_poller"))
            .collect();
        let polling: Vec<usize> = hosts
            .iter()
            .zip(&gauges)
            .filter(|(_, g)| **g == Some(1))
            .map(|(&i, _)| i)
            .collect();
        (gauges.iter().all(Option::is_some) && polling.len() == count).then_some(polling)
    })
    .unwrap_or_else(|| panic!("never {count} pollers:\n{}", fleet.log(hosts[0])))
}

pub(super) fn polls(fleet: &Fleet, hosts: &[usize]) -> Vec<u64> {
    hosts
        .iter()
        .map(|&i| metric(fleet, i, "shoal_channel_polls_total").unwrap_or_default())
        .collect()
}

#[test]
fn three_of_six_hosts_poll_a_remote_origin_and_all_six_deploy() {
    let mut fleet = Fleet::start_remote(6, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let all: Vec<usize> = (0..fleet.len()).collect();
    let pollers = wait_pollers(&fleet, &all, 3);
    // Over several poll intervals, only the pollers look at the origin.
    let before = polls(&fleet, &all);
    let after = poll_until(WAIT, || {
        let now = polls(&fleet, &all);
        pollers
            .iter()
            .all(|&p| now[p] >= before[p] + 3)
            .then_some(now)
    })
    .unwrap_or_else(|| panic!("the pollers did not poll:\n{}", fleet.log(pollers[0])));
    let looked: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| after[i] > before[i])
        .collect();
    let mut expected = pollers.clone();
    expected.sort_unstable();
    assert_eq!(looked, expected, "polls before {before:?}, after {after:?}");

    // A release: a poller sees it, gossip tells the rest, and every host deploys it.
    fleet.publish("v1.0.0", Hooks::Good);
    fleet.wait_all_on("v1.0.0");
    assert!(fleet.origin().stats().connections > 0);

    restart_host_by_host(&mut fleet, "v1.0.0");
    // They still take the next release, from gossip.
    fleet.publish("v2.0.0", Hooks::Good);
    fleet.wait_all_on("v2.0.0");
    let pollers = wait_pollers(&fleet, &all, 3);

    // A poller stops: the others choose one more among the hosts left.
    let gone = pollers[0];
    fleet.stop(gone);
    let left: Vec<usize> = all.iter().copied().filter(|&i| i != gone).collect();
    let now = wait_pollers(&fleet, &left, 3);
    assert!(!now.contains(&gone));
    let kept = pollers.iter().filter(|p| now.contains(p)).count();
    assert_eq!(
        kept, 2,
        "the two other pollers stay: {pollers:?} then {now:?}"
    );
}

#[test]
fn six_hosts_on_a_store_restarted_one_by_one_leave_the_origin_to_three() {
    let mut fleet = Fleet::start_store(6, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let all: Vec<usize> = (0..fleet.len()).collect();
    wait_pollers(&fleet, &all, 3);
    fleet.publish_store("v1.0.0", Hooks::Good, 0);
    fleet.wait_all_on("v1.0.0");
    restart_host_by_host(&mut fleet, "v1.0.0");
    fleet.publish_store("v2.0.0", Hooks::Good, 0);
    fleet.wait_all_on("v2.0.0");
}

/// Restarts every host one by one, as a package upgrade does it: a host that does not poll
/// hears the mesh, sees no peer ahead of it and is ready, on `floor` and idle, without a look
/// at the origin; three of them.
fn restart_host_by_host(fleet: &mut Fleet, floor: &str) {
    let all: Vec<usize> = (0..fleet.len()).collect();
    let mut quiet = Vec::new();
    for &i in &all {
        fleet.stop(i);
        fleet.restart(i);
        let status = fleet
            .agent(i)
            .wait_status(WAIT, "ready after a restart", |s| {
                s["node"]["ready"] == true
            });
        let group = &status["groups"][0];
        let looked = metric(fleet, i, "shoal_channel_polls_total").unwrap_or_default();
        if group["polls"] == false {
            assert_eq!(looked, 0, "host {i} looked at the origin: {group}");
            assert_eq!(group["phase"], "idle", "{group}");
            assert_eq!(group["floor"], floor, "{group}");
            let said = fleet.shoal(i, &["status"]);
            let said = String::from_utf8_lossy(&said.stdout);
            assert!(
                said.contains(": left to the group's pollers; gossip announces their releases\n"),
                "shoal status on host {i}:\n{said}"
            );
            quiet.push(i);
        } else {
            assert_eq!(group["polls"], true, "{group}");
        }
    }
    assert_eq!(quiet.len(), 3, "hosts ready without a look: {quiet:?}");
}
