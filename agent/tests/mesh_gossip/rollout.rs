//! The agent's group host over real chitchat: every node of an in-memory cluster drives the
//! very `GroupHost` the agent runs (step it on every gossip change, publish what it publishes,
//! carry out the run it asks for as a timed stand-in for the hooks), so the batch rule is
//! checked and the coordination overhead measured on the real gossip layer.
//!
//! ```sh
//! cargo test --release -p shoal-agent --test mesh_gossip -- --ignored --nocapture bench_rollout
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shoal_agent::coordinate::Mesh;
use shoal_shared::gossip::{Step, Target};
use shoal_shared::rollout::{
    Amount, Ended, Event, GroupHost, Journal, Policy, Settings, Strategy, Work, deployment_id,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Cluster, channel, exclusive};

/// What the nodes of a rollout saw.
struct Rollout {
    /// When each node was done, from the release.
    done: Vec<Duration>,
    /// The most lifecycles running at once.
    most: usize,
}

/// Releases one revision to every node of `cluster` under `policy`, each lifecycle taking
/// `hook`, and waits until every node is done.
async fn roll_out(cluster: Cluster, policy: Policy, hook: Duration) -> (Rollout, Cluster) {
    let target = Target {
        id: deployment_id("web", "git:v2"),
        revision: "v2".into(),
        digest: "git:v2".into(),
    };
    let epoch = Instant::now();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let meshes: Vec<Arc<Mesh>> = cluster.nodes.into_iter().map(Arc::new).collect();
    let interval = cluster.interval;
    // Every node knows the others (published membership) before the release.
    let mut planners = Vec::new();
    for mesh in &meshes {
        let settings = Settings {
            node: mesh.node().to_owned(),
            warmup: 0,
            forget_after: 600_000,
            expected_members: None,
        };
        let mut host = GroupHost::start("web", settings, Journal::empty(), &policy, 0);
        let snapshot = mesh.group("web").await;
        host.step(Event::Tick, &snapshot.view(), millis(epoch));
        mesh.publish("web", &host.planner().values()).await;
        planners.push(host);
    }
    tokio::time::sleep(interval * 5).await;
    let released = Instant::now();
    let mut tasks = Vec::new();
    for (mesh, host) in meshes.iter().cloned().zip(planners) {
        let node = Node {
            mesh,
            host,
            running: running.clone(),
            most: most.clone(),
            hook,
            interval,
            epoch,
        };
        let (target, policy, done_tx) = (target.clone(), policy.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            node.run(target, policy).await;
            let _ = done_tx.send(released.elapsed());
        }));
    }
    drop(done_tx);
    let mut done = Vec::new();
    while let Some(at) = tokio::time::timeout(Duration::from_secs(600), done_rx.recv())
        .await
        .unwrap()
    {
        done.push(at);
    }
    for task in tasks {
        task.await.unwrap();
    }
    let nodes = meshes
        .into_iter()
        .map(|m| Arc::try_unwrap(m).ok().unwrap())
        .collect();
    let rollout = Rollout {
        done,
        most: most.load(Ordering::SeqCst),
    };
    (rollout, Cluster { nodes, interval })
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap()
}

/// One node's rollout loop.
struct Node {
    mesh: Arc<Mesh>,
    host: GroupHost,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    hook: Duration,
    interval: Duration,
    epoch: Instant,
}

impl Node {
    async fn run(mut self, target: Target, policy: Policy) {
        let mut changes = self.mesh.changes();
        let snapshot = self.mesh.group("web").await;
        let mut work = self.host.release(
            target,
            policy,
            "/cache/tree".into(),
            &snapshot.view(),
            millis(self.epoch),
        );
        loop {
            self.mesh
                .publish("web", &self.host.planner().values())
                .await;
            let snapshot = self.mesh.group("web").await;
            let now = millis(self.epoch);
            if work.iter().any(|w| matches!(w, Work::Run(_))) {
                let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(self.hook).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                let done = Ended::Succeeded {
                    dir: "/deployment-root/web/d".into(),
                };
                work = self.host.ended(done, &snapshot.view(), now);
                continue;
            }
            if self.host.planner().step_now() == Some(Step::Done) {
                return;
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(self.interval / 2) => {}
            }
            let snapshot = self.mesh.group("web").await;
            work = self
                .host
                .step(Event::Tick, &snapshot.view(), millis(self.epoch));
        }
    }
}

fn rolling(percent: u32) -> Policy {
    Policy {
        strategy: Strategy::Rolling,
        max_parallel: Amount::Percent(percent),
        min_healthy_time: Duration::ZERO,
        ..Policy::default()
    }
}

/// Twelve nodes rolling a quarter at a time over real gossip: never more than three
/// lifecycles at once, and everyone arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_holds_on_real_gossip() {
    let _one = exclusive().await;
    let interval = Duration::from_millis(100);
    let transport = channel();
    let cluster = Cluster::web(12, interval, &transport).await;
    cluster.converge(Duration::from_secs(60)).await;
    let (rollout, cluster) = roll_out(cluster, rolling(25), interval * 3).await;
    assert_eq!(rollout.done.len(), 12, "everyone arrived");
    assert_eq!(rollout.most, 3, "a quarter of 12 at once, and no more");
    cluster.shutdown().await;
}

/// Coordination overhead: instant lifecycles, rolling 25 %: the time from the release to the
/// last node done, per batch, in gossip rounds (the ideal is 0).
async fn overhead(n: usize, interval: Duration) {
    let transport = channel();
    let cluster = Cluster::web(n, interval, &transport).await;
    cluster.converge(Duration::from_secs(300)).await;
    let policy = rolling(25);
    let batches = n.div_ceil(policy.max_parallel.of(n));
    let (rollout, cluster) = roll_out(cluster, policy, Duration::ZERO).await;
    let last = rollout.done.iter().max().copied().unwrap_or_default();
    eprintln!(
        "N={n} rolling 25% ({batches} batches), instant hooks, gossip {interval:?}: all done in {:.2} s = {:.1} rounds, {:.2} rounds per batch; at most {} at once",
        last.as_secs_f64(),
        cluster.rounds(last),
        cluster.rounds(last) / batches as f64,
        rollout.most
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_rollout_overhead_20_nodes() {
    let _one = exclusive().await;
    overhead(20, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_rollout_overhead_100_nodes() {
    let _one = exclusive().await;
    overhead(100, Duration::from_millis(500)).await;
}
