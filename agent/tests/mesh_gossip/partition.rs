//! Bad networks: a partition shows each side the other as dead and heals; 30 % of messages lost
//! still converge and still spread a halt.

use std::time::Duration;

use chitchat::transport::TransportExt;

use crate::{Cluster, channel, eventually, exclusive, halt_reaches_all, name};

const INTERVAL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(30);

/// Whether `cluster.nodes[from]` sees exactly the nodes in `alive` alive among `web`'s members.
async fn sees(cluster: &Cluster, from: usize, alive: &[usize]) -> bool {
    let web = cluster.nodes[from].group("web").await;
    web.peers.len() == cluster.nodes.len() - 1
        && web
            .peers
            .iter()
            .all(|p| p.alive == alive.iter().any(|i| name(*i) == p.node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_shows_the_other_side_dead_and_heals() {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(6, INTERVAL, &transport).await;
    cluster.converge(DEADLINE).await;
    let (left, right) = ([0, 1, 2], [3, 4, 5]);
    let addr = |i: usize| cluster.nodes[i].gossip_addr();
    for a in left {
        for b in right {
            transport.remove_link(addr(a), addr(b)).await;
        }
    }
    let cut = tokio::time::Instant::now();
    for side in [left, right] {
        for i in side {
            let mates: Vec<usize> = side.into_iter().filter(|j| *j != i).collect();
            eventually(DEADLINE, "each side to see the other dead", || async {
                sees(&cluster, i, &mates).await.then_some(())
            })
            .await;
        }
    }
    let detected = cut.elapsed();
    eprintln!(
        "partition detected on all 6 nodes in {detected:?} ({:.1} rounds)",
        cluster.rounds(detected)
    );

    for a in left {
        for b in right {
            transport.add_link(addr(a), addr(b)).await;
        }
    }
    let healed = cluster.converge(DEADLINE).await;
    for i in 0..6 {
        let others: Vec<usize> = (0..6).filter(|j| *j != i).collect();
        assert!(sees(&cluster, i, &others).await);
    }
    eprintln!(
        "partition healed in {healed:?} ({:.1} rounds)",
        cluster.rounds(healed)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_loss_still_converges_and_spreads_a_halt() {
    let _one = exclusive().await;
    let lossy = channel().drop_message(0.3);
    let cluster = Cluster::web(20, INTERVAL, &*lossy).await;
    let took = cluster.converge(DEADLINE).await;
    eprintln!(
        "20 nodes at 30 % loss converged in {took:?} ({:.1} rounds)",
        cluster.rounds(took)
    );
    let spread = halt_reaches_all(&cluster, 7, DEADLINE).await;
    eprintln!(
        "halt reached 20 nodes at 30 % loss in {spread:?} ({:.1} rounds)",
        cluster.rounds(spread)
    );
    cluster.shutdown().await;
}

/// A node cut off from the others stops hearing them within `RECENT_ROUNDS` (plus the rounds
/// a look and the last datagrams take), however long its failure detector takes to declare
/// them dead: a start needs a majority heard from that recently, so a minority cannot start
/// in the seconds the detector may take. While the mesh is whole, every peer stays heard from,
/// round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_stops_hearing_the_others_before_they_are_dead() {
    use shoal_shared::rollout::plan::RECENT_ROUNDS;

    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(5, INTERVAL, &transport).await;
    cluster.converge(DEADLINE).await;
    // Whole: every node hears from every peer at every look, for 30 rounds.
    let mut misses = 0;
    for _ in 0..30 {
        tokio::time::sleep(INTERVAL).await;
        for node in &cluster.nodes {
            let web = node.group("web").await;
            misses += web.peers.iter().filter(|p| !p.recent).count();
        }
    }
    // A look misses when a peer was not heard from for RECENT_ROUNDS intervals (300 ms): a
    // stall of the test's 2-core machine does that now and then (11 of 600 in one CI run).
    // A broken notion of "recent" misses at most looks.
    assert!(
        misses <= 30,
        "{misses} of 600 looks found a live peer not heard from"
    );

    let addr = |i: usize| cluster.nodes[i].gossip_addr();
    for b in 1..5 {
        transport.remove_link(addr(0), addr(b)).await;
    }
    let cut = tokio::time::Instant::now();
    let (mut unheard, mut dead) = (None, None);
    while dead.is_none() && cut.elapsed() < DEADLINE {
        let web = cluster.nodes[0].group("web").await;
        if unheard.is_none() && web.peers.iter().all(|p| !p.recent) {
            unheard = Some(cut.elapsed());
        }
        if web.peers.iter().all(|p| !p.alive) {
            dead = Some(cut.elapsed());
        }
        tokio::time::sleep(INTERVAL / 4).await;
    }
    let dead = dead.expect("node 0 never saw the others dead");
    let unheard = unheard.unwrap_or(dead);
    eprintln!(
        "cut off: the others unheard after {unheard:?} ({:.1} rounds), dead after {dead:?} ({:.1} rounds)",
        cluster.rounds(unheard),
        cluster.rounds(dead)
    );
    let bound = INTERVAL * (RECENT_ROUNDS + 3);
    assert!(
        unheard <= bound,
        "unheard after {unheard:?}, over {bound:?}"
    );
    cluster.shutdown().await;
}
