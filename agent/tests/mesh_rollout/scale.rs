//! Benchmark (not a test): fifty real agent processes as one sealed mesh on loopback. A release
//! reaches all of them, then a failing canary halts the next one everywhere; it prints how long
//! each took, in gossip rounds (100 ms), and what the sealed sockets dropped.

use std::time::Duration;

use super::fleet::{Fleet, Hooks, logged_at};

const HOSTS: usize = 50;
const ROUND: f64 = 0.1;
/// How long each step may take: the point is to measure it.
const WAIT: Duration = Duration::from_secs(900);

fn wait_all(fleet: &Fleet, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    for host in 0..HOSTS {
        fleet
            .agent(host)
            .wait_status(WAIT, &format!("host {host}: {what}"), |s| {
                done(&s["groups"][0])
            });
    }
}

#[test]
#[ignore = "benchmark: 50 agent processes; cargo test -p shoal-agent --test mesh_rollout scale -- --ignored --nocapture"]
fn bench_fifty_agents_on_one_sealed_mesh() {
    let fleet = Fleet::start_alone(HOSTS, "{ strategy: all-at-once, min_healthy_time: 0s }");
    fleet.publish("v1.0.0", Hooks::Good);
    wait_all(&fleet, "idle on v1.0.0", |g| {
        g["current_revision"] == "v1.0.0" && g["phase"] == "idle"
    });
    let done: Vec<f64> = (0..HOSTS)
        .filter_map(|i| logged_at(&fleet.log(i), "deployment succeeded"))
        .collect();
    let verified: Vec<f64> = (0..HOSTS)
        .filter_map(|i| logged_at(&fleet.log(i), "new release verified"))
        .collect();
    let first = verified.iter().copied().fold(f64::MAX, f64::min);
    let last = verified.iter().copied().fold(f64::MIN, f64::max);
    eprintln!(
        "{HOSTS} agents: v1.0.0 verified on every host within {:.2} s of the first ({:.0} rounds), deployed on every host {:.1} s after the first verified it",
        last - first,
        (last - first) / ROUND,
        done.iter().copied().fold(f64::MIN, f64::max) - first
    );

    fleet.publish_with_policy(
        "v2.0.0",
        Hooks::FailValidate,
        "{ strategy: canary, canary: 1, max_parallel: 5, min_healthy_time: 0s }",
    );
    wait_all(&fleet, "knows the halt of v2.0.0", |g| {
        g["rollout"]["revision"] == "v2.0.0" && !g["rollout"]["halted"].is_null()
    });
    let halts: Vec<f64> = (0..HOSTS)
        .filter_map(|i| logged_at(&fleet.log(i), "rollout halted"))
        .collect();
    let first = halts.iter().copied().fold(f64::MAX, f64::min);
    let last = halts.iter().copied().fold(f64::MIN, f64::max);
    let mut spread: Vec<f64> = halts.iter().map(|h| h - first).collect();
    spread.sort_by(f64::total_cmp);
    eprintln!(
        "the halt: every host within {:.2} s of the canary's ({:.0} rounds; median {:.2} s), {} hosts logged it",
        last - first,
        (last - first) / ROUND,
        spread[spread.len() / 2],
        halts.len()
    );
    let dropped: u64 = (0..HOSTS)
        .map(|i| {
            fleet
                .get(i, "/metrics")
                .body
                .lines()
                .filter(|l| l.starts_with("shoal_gossip_dropped_datagrams_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum::<f64>() as u64
        })
        .sum();
    eprintln!("sealed datagrams dropped across the mesh: {dropped}");
    assert_eq!(halts.len(), HOSTS);
}
