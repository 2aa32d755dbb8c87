//! A halt published on one node is seen by every node of the group; the time it takes is
//! printed in gossip rounds (the wall-clock deadline is only there to catch a hang).

use std::time::Duration;

use crate::{Cluster, channel, exclusive, halt_reaches_all};

const DEADLINE: Duration = Duration::from_secs(60);

async fn halt_spreads(n: usize, interval: Duration) {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(n, interval, &transport).await;
    let converged = cluster.converge(DEADLINE).await;
    let took = halt_reaches_all(&cluster, n / 2, DEADLINE).await;
    eprintln!(
        "{n} nodes, gossip every {interval:?}: converged in {:.1} rounds; halt seen by all in {took:?} ({:.1} rounds)",
        cluster.rounds(converged),
        cluster.rounds(took)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_reaches_all_20_nodes() {
    halt_spreads(20, Duration::from_millis(100)).await;
}

/// An unoptimised build of chitchat (and of zstd, which compresses every digest) cannot keep a
/// hundred nodes gossiping every 100 ms on two shared cores: starved of CPU, every failure
/// detector sees its peers' heartbeats late and declares them dead, and membership never
/// converges. Rounds, not seconds, are what is measured, so the debug build gossips every 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_reaches_all_100_nodes() {
    let interval = if cfg!(debug_assertions) { 1000 } else { 100 };
    halt_spreads(100, Duration::from_millis(interval)).await;
}
