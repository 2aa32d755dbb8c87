//! Benchmark (not a test): fifty real agent processes (`SHOAL_BENCH_HOSTS` to change it) as one
//! sealed mesh on loopback. A release reaches all of them; idle, each agent's CPU and gossip
//! traffic are measured; then a failing canary halts the next release everywhere. It prints how
//! long each took, in gossip rounds (100 ms), and what the sealed sockets dropped.

use std::time::Duration;

use shoal_tests::agent::AgentProcess;
use shoal_tests::cpu_seconds;
use tokio::time::Instant;

use super::fleet::{Fleet, Hooks, logged_at};

const ROUND: f64 = 0.1;
/// How long the idle mesh is measured.
const IDLE: Duration = Duration::from_secs(20);
/// How long each step may take: the point is to measure it.
const WAIT: Duration = Duration::from_secs(900);

fn wait_all(fleet: &Fleet, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    for host in 0..fleet.len() {
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
    let hosts = std::env::var("SHOAL_BENCH_HOSTS").map_or(50, |n| n.parse().expect("a number"));
    let fleet = Fleet::start_alone(hosts, "{ strategy: all-at-once, min_healthy_time: 0s }");
    fleet.publish("v1.0.0", Hooks::Good);
    wait_all(&fleet, "idle on v1.0.0", |g| {
        g["current_revision"] == "v1.0.0" && g["phase"] == "idle"
    });
    let done: Vec<f64> = (0..hosts)
        .filter_map(|i| logged_at(&fleet.log(i), "deployment succeeded"))
        .collect();
    let verified: Vec<f64> = (0..hosts)
        .filter_map(|i| logged_at(&fleet.log(i), "new release verified"))
        .collect();
    let first = verified.iter().copied().fold(f64::MAX, f64::min);
    let last = verified.iter().copied().fold(f64::MIN, f64::max);
    eprintln!(
        "{hosts} agents: v1.0.0 verified on every host within {:.2} s of the first ({:.0} rounds), deployed on every host {:.1} s after the first verified it",
        last - first,
        (last - first) / ROUND,
        done.iter().copied().fold(f64::MIN, f64::max) - first
    );

    idle(&fleet);

    fleet.publish_with_policy(
        "v2.0.0",
        Hooks::FailValidate,
        "{ strategy: canary, canary: 1, max_parallel: 5, min_healthy_time: 0s }",
    );
    wait_all(&fleet, "knows the halt of v2.0.0", |g| {
        g["rollout"]["revision"] == "v2.0.0" && !g["rollout"]["halted"].is_null()
    });
    let halts: Vec<f64> = (0..hosts)
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
    let dropped: u64 = (0..hosts)
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
    assert_eq!(halts.len(), hosts);
}

/// Measures the idle mesh: each agent's CPU and what its gossip socket sent and received.
fn idle(fleet: &Fleet) {
    let agents: Vec<&AgentProcess> = (0..fleet.len()).map(|i| fleet.agent(i)).collect();
    let before: Vec<(f64, Sent)> = agents
        .iter()
        .map(|a| (cpu_seconds(a.pid()), sent(a)))
        .collect();
    let start = Instant::now();
    window();
    let secs = start.elapsed().as_secs_f64();
    let mut cpu = Vec::new();
    let (mut bytes, mut datagrams, mut received) = (0, 0, 0);
    for (agent, (cpu_before, sent_before)) in agents.iter().zip(before) {
        cpu.push((cpu_seconds(agent.pid()) - cpu_before) / secs * 100.0);
        let now = sent(agent);
        datagrams += now.datagrams - sent_before.datagrams;
        bytes += now.bytes - sent_before.bytes;
        received += now.received - sent_before.received;
    }
    cpu.sort_by(f64::total_cmp);
    let n = agents.len() as f64;
    eprintln!(
        "idle over {secs:.0} s: each agent {:.2} % of a core (median; {:.2}–{:.2} %), sent {:.0} B/s in {:.1} datagrams/s ({:.0} B each), received {:.0} B/s",
        cpu[cpu.len() / 2],
        cpu[0],
        cpu[cpu.len() - 1],
        bytes as f64 / n / secs,
        datagrams as f64 / n / secs,
        bytes as f64 / datagrams as f64,
        received as f64 / n / secs,
    );
}

/// The measuring window: not a wait for a condition, the time over which the mesh is measured.
#[allow(clippy::disallowed_methods)]
fn window() {
    std::thread::sleep(IDLE);
}

/// What an agent's gossip socket carried so far, from its `/metrics`.
struct Sent {
    datagrams: u64,
    bytes: u64,
    received: u64,
}

fn sent(agent: &AgentProcess) -> Sent {
    let text = agent.get("/metrics").expect("metrics").body;
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{series} on /metrics"))
    };
    Sent {
        datagrams: value("shoal_gossip_datagrams_total{direction=\"sent\"} "),
        bytes: value("shoal_gossip_bytes_total{direction=\"sent\"} "),
        received: value("shoal_gossip_bytes_total{direction=\"received\"} "),
    }
}
