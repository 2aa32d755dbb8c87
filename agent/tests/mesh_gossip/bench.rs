//! Benchmarks for docs/performance.md, ignored by default; each prints its figures on stderr:
//!
//! ```sh
//! cargo test --release -p shoal-agent --test mesh_gossip \
//!     -- --ignored --nocapture --test-threads 1 bench_
//! ```
//!
//! Every node runs in this one process over chitchat's in-memory transport, which serialises
//! each message as UDP would; its counters give bytes and messages. Halt arrival is taken from a
//! chitchat key listener on every node (the moment the value lands in that node's state), not
//! from polling, so the figures do not include any poll period.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chitchat::ListenerHandle;
use shoal_tests::cpu_seconds;
use tokio::time::Instant;

use crate::{Cluster, channel, eventually, exclusive, halt, name};

const DEADLINE: Duration = Duration::from_secs(300);

/// When each node first held a halt of group `web`.
struct Arrivals {
    times: Arc<Mutex<Vec<Option<Instant>>>>,
    _listeners: Vec<ListenerHandle>,
}

impl Arrivals {
    async fn watch(cluster: &Cluster) -> Arrivals {
        let times = Arc::new(Mutex::new(vec![None; cluster.nodes.len()]));
        let mut listeners = Vec::new();
        for (i, mesh) in cluster.nodes.iter().enumerate() {
            let times = times.clone();
            let chitchat = mesh.chitchat();
            let listener = chitchat
                .lock()
                .await
                .subscribe_event("g:web:halt", move |_| {
                    let mut times = times.lock().unwrap();
                    times[i].get_or_insert_with(Instant::now);
                });
            listeners.push(listener);
        }
        Arrivals {
            times,
            _listeners: listeners,
        }
    }

    /// The time from `start` until the last node held it, once all do.
    fn all_since(&self, start: Instant) -> Option<Duration> {
        let times = self.times.lock().unwrap();
        let last = times
            .iter()
            .try_fold(start, |last, t| Some(last.max((*t)?)))?;
        Some(last - start)
    }

    /// Times from `start` until each node held it, sorted.
    fn each_since(&self, start: Instant) -> Vec<Duration> {
        let mut each: Vec<Duration> = self
            .times
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|t| *t - start)
            .collect();
        each.sort();
        each
    }
}

async fn halt_rounds(n: usize, interval: Duration, repeats: usize) {
    let _one = exclusive().await;
    let transport = channel();
    let started = Instant::now();
    let cluster = Cluster::web(n, interval, &transport).await;
    let spawned = started.elapsed();
    let converged = cluster.converge(DEADLINE).await;
    eprintln!(
        "N={n} gossip={interval:?}: started in {spawned:?}, membership converged in {converged:?} ({:.1} rounds)",
        cluster.rounds(converged)
    );
    for r in 0..repeats {
        let arrivals = Arrivals::watch(&cluster).await;
        let origin = (r * 7919 + n / 3) % n;
        let start = Instant::now();
        cluster.nodes[origin]
            .publish("web", &halt(&name(origin)))
            .await;
        let all = eventually(DEADLINE, "the halt to reach every node", || async {
            arrivals.all_since(start)
        })
        .await;
        let each = arrivals.each_since(start);
        let at = |q: f64| cluster.rounds(each[((each.len() - 1) as f64 * q) as usize]);
        eprintln!(
            "N={n} gossip={interval:?} halt #{r} from {}: all nodes in {all:?} = {:.1} rounds (half in {:.1}, 90 % in {:.1})",
            name(origin),
            cluster.rounds(all),
            at(0.5),
            at(0.9),
        );
        // The next halt comes from a fresh origin, in a fresh deployment.
        cluster.nodes[origin]
            .publish("web", &shoal_agent::coordinate::GroupValues::default())
            .await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_halt_rounds_100_nodes() {
    halt_rounds(100, Duration::from_millis(200), 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_halt_rounds_500_nodes() {
    halt_rounds(500, Duration::from_secs(1), 3).await;
}

/// A mesh of `n` nodes in one process, once: how long membership takes to converge, what an
/// idle round costs (bytes per message and per node, CPU), and how many rounds a halt takes to
/// reach every node.
async fn at_scale(n: usize, interval: Duration) {
    let _one = exclusive().await;
    let transport = channel();
    let deadline = DEADLINE.max(interval * 60);
    let started = Instant::now();
    let cluster = Cluster::web(n, interval, &transport).await;
    let spawned = started.elapsed();
    let converged = cluster.converge(deadline).await;
    eprintln!(
        "N={n} gossip={interval:?}: started in {spawned:?}, membership converged in {converged:?} ({:.1} rounds); process RSS {:.0} MB = {:.0} KB per node",
        cluster.rounds(converged),
        rss_bytes() as f64 / 1e6,
        rss_bytes() as f64 / n as f64 / 1e3,
    );
    let before = transport.statistics();
    let cpu_before = cpu_seconds("self");
    let window = Instant::now();
    tokio::time::sleep(interval * 3).await;
    let after = transport.statistics();
    let secs = window.elapsed().as_secs_f64();
    let bytes = (after.num_bytes_total - before.num_bytes_total) as f64;
    let messages = (after.num_messages_total - before.num_messages_total) as f64;
    eprintln!(
        "N={n} idle over 3 rounds: {:.0} B per message, {:.0} B/s and {:.2} messages/s sent per node; whole process {:.0} % of a core",
        bytes / messages,
        bytes / n as f64 / secs,
        messages / n as f64 / secs,
        (cpu_seconds("self") - cpu_before) / secs * 100.0,
    );
    let arrivals = Arrivals::watch(&cluster).await;
    let origin = n / 3;
    let start = Instant::now();
    cluster.nodes[origin]
        .publish("web", &halt(&name(origin)))
        .await;
    let all = eventually(deadline, "the halt to reach every node", || async {
        arrivals.all_since(start)
    })
    .await;
    eprintln!(
        "N={n} halt from {}: all nodes in {all:?} = {:.1} rounds",
        name(origin),
        cluster.rounds(all)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture (tens of minutes)"]
async fn bench_scale_1000_nodes() {
    at_scale(1000, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture (tens of minutes)"]
async fn bench_scale_2000_nodes() {
    at_scale(2000, Duration::from_secs(60)).await;
}

/// `at_scale` at `SHOAL_BENCH_NODES` nodes (default 500) and `SHOAL_BENCH_ROUND` seconds per
/// round (default 5), for sizes between the two above and for profiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_scale_any() {
    let number = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |v| v.parse().expect("a whole number"))
    };
    let nodes = number("SHOAL_BENCH_NODES", 500);
    let round = number("SHOAL_BENCH_ROUND", 5);
    at_scale(nodes as usize, Duration::from_secs(round)).await;
}

async fn traffic(n: usize, interval: Duration, window_rounds: u32) {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(n, interval, &transport).await;
    cluster.converge(DEADLINE).await;
    // Let the failure detectors settle before counting.
    tokio::time::sleep(interval * 5).await;
    let before = transport.statistics();
    let cpu_before = cpu_seconds("self");
    let start = Instant::now();
    tokio::time::sleep(interval * window_rounds).await;
    let after = transport.statistics();
    let secs = start.elapsed().as_secs_f64();
    let cpu = (cpu_seconds("self") - cpu_before) / secs;
    let per_node = |total: u64| total as f64 / n as f64 / secs;
    let bytes = per_node(after.num_bytes_total - before.num_bytes_total);
    let messages = per_node(after.num_messages_total - before.num_messages_total);
    let fleet = cluster.nodes[0].fleet().await;
    let alive = fleet.iter().filter(|node| node.alive).count();
    eprintln!(
        "N={n} gossip={interval:?} idle, over {secs:.1} s: {:.0} B/s and {messages:.1} messages/s sent per node ({:.0} B per message); whole process {:.1} % of a core ({:.2} % per node, in-memory transport included); node 0 saw {alive}/{n} alive at the end",
        bytes,
        bytes / messages,
        cpu * 100.0,
        cpu * 100.0 / n as f64,
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_traffic_100_nodes() {
    traffic(100, Duration::from_secs(1), 20).await;
    traffic(100, Duration::from_millis(200), 50).await;
}

/// This process's resident memory, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}
