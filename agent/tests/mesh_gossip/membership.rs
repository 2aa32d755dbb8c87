//! Who is in the mesh and what they publish: membership converges, a state reaches everyone,
//! groups are filtered, the dead stay listed as dead, a restarted node replaces its old
//! generation, and another mesh's nodes are kept out.

use std::collections::BTreeMap;
use std::time::Duration;

use shoal_agent::coordinate::{GroupValues, Mesh};
use shoal_shared::gossip::Step;
use tokio::time::Instant;

use crate::{Cluster, channel, eventually, exclusive, name, settings, state};

const INTERVAL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_converges_and_a_state_reaches_every_node() {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(10, INTERVAL, &transport).await;
    let took = cluster.converge(DEADLINE).await;
    eprintln!(
        "10 nodes converged in {took:?} ({:.1} rounds)",
        cluster.rounds(took)
    );

    let running = GroupValues {
        state: Some(state("v2", Step::Running)),
        ..GroupValues::default()
    };
    cluster.nodes[3].publish("web", &running).await;
    for mesh in cluster.nodes.iter().filter(|m| m.node() != name(3)) {
        eventually(DEADLINE, "the state to reach every node", || async {
            let web = mesh.group("web").await;
            (web.peer(&name(3))?.state == running.state).then_some(())
        })
        .await;
    }

    // Publishing the same values writes nothing; publishing none deletes them everywhere.
    let chitchat = cluster.nodes[3].chitchat();
    let version = chitchat.lock().await.self_node_state().max_version();
    cluster.nodes[3].publish("web", &running).await;
    assert_eq!(
        chitchat.lock().await.self_node_state().max_version(),
        version
    );
    cluster.nodes[3]
        .publish("web", &GroupValues::default())
        .await;
    eventually(DEADLINE, "the deletion to reach node 0", || async {
        let web = cluster.nodes[0].group("web").await;
        web.peer(&name(3))?.state.is_none().then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_snapshots_filter_by_group_and_show_the_dead_as_dead() {
    let _one = exclusive().await;
    let transport = channel();
    // Even nodes run `web`, odd ones `db`; node 0 runs both.
    let cluster = Cluster::start(6, INTERVAL, &transport, |i| match i {
        0 => vec!["web".into(), "db".into()],
        i if i % 2 == 0 => vec!["web".into()],
        _ => vec!["db".into()],
    })
    .await;
    cluster.converge(DEADLINE).await;
    let members = |snapshot: shoal_agent::coordinate::GroupSnapshot| -> Vec<(String, bool)> {
        snapshot
            .peers
            .into_iter()
            .map(|p| (p.node, p.alive))
            .collect()
    };
    let alive = |nodes: &[usize]| -> Vec<(String, bool)> {
        nodes.iter().map(|i| (name(*i), true)).collect()
    };
    assert_eq!(
        members(cluster.nodes[1].group("web").await),
        alive(&[0, 2, 4])
    );
    assert_eq!(
        members(cluster.nodes[0].group("db").await),
        alive(&[1, 3, 5])
    );
    assert_eq!(members(cluster.nodes[2].group("web").await), alive(&[0, 4]));
    assert!(cluster.nodes[0].group("api").await.peers.is_empty());

    let mut changes = cluster.nodes[0].changes();
    changes.borrow_and_update();
    let mut nodes = cluster.nodes;
    let gone = nodes.remove(2);
    gone.shutdown().await;
    // The snapshot can show the death a moment before the notifier's next check bumps the
    // counter, so wait for both; a counter that never rises times out here.
    eventually(
        DEADLINE,
        "node 2 to be seen dead and the change counter to rise",
        || async {
            let web = nodes[0].group("web").await;
            let dead = web.peer(&name(2)).is_some_and(|p| !p.alive);
            (dead && changes.has_changed().unwrap_or(false)).then_some(())
        },
    )
    .await;
    let web = members(nodes[0].group("web").await);
    assert_eq!(web, [(name(2), false), (name(4), true)]);
    let fleet = nodes[0].fleet().await;
    assert_eq!(fleet.len(), 6, "the dead node stays listed");
    assert!(fleet.iter().any(|n| n.id == name(2) && !n.alive));
    Cluster {
        nodes,
        interval: INTERVAL,
    }
    .shutdown()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_replaces_its_old_generation() {
    let _one = exclusive().await;
    let transport = channel();
    let mut cluster = Cluster::web(5, INTERVAL, &transport).await;
    let before = GroupValues {
        state: Some(state("v1", Step::Running)),
        ..GroupValues::default()
    };
    cluster.nodes[4].publish("web", &before).await;
    cluster.converge(DEADLINE).await;
    eventually(DEADLINE, "v1 to reach node 0", || async {
        let web = cluster.nodes[0].group("web").await;
        (web.peer(&name(4))?.state == before.state).then_some(())
    })
    .await;

    let seed = cluster.nodes[0].gossip_addr();
    cluster.nodes.pop().unwrap().shutdown().await;
    let after = GroupValues {
        state: Some(state("v2", Step::Waiting)),
        ..GroupValues::default()
    };
    let values = BTreeMap::from([("web".to_owned(), after.clone())]);
    let restarted = Mesh::start_with_values(
        settings(&name(4), &[seed], INTERVAL),
        &["web".to_owned()],
        &values,
        Some(&transport),
    )
    .await
    .unwrap();
    cluster.nodes.push(restarted);

    for mesh in &cluster.nodes[..4] {
        eventually(
            DEADLINE,
            "the new generation to replace the old",
            || async {
                let web = mesh.group("web").await;
                let entries = web.peers.iter().filter(|p| p.node == name(4)).count();
                let peer = web.peer(&name(4))?;
                (entries == 1 && peer.alive && peer.state == after.state).then_some(())
            },
        )
        .await;
        assert_eq!(mesh.fleet().await.len(), 5, "one entry per node id");
    }
    let chitchat = cluster.nodes[0].chitchat();
    let generations = chitchat
        .lock()
        .await
        .node_states()
        .keys()
        .filter(|id| *id.node_id == *name(4))
        .count();
    assert_eq!(
        generations, 2,
        "chitchat still holds the old generation, dead"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_fire_on_peer_values_and_not_on_heartbeats() {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(3, INTERVAL, &transport).await;
    cluster.converge(DEADLINE).await;
    let mut changes = cluster.nodes[0].changes();
    // Liveness settles a round or two after every node is seen alive; then ten rounds pass
    // with heartbeats only.
    let deadline = Instant::now() + DEADLINE;
    loop {
        changes.borrow_and_update();
        if tokio::time::timeout(INTERVAL * 10, changes.changed())
            .await
            .is_err()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the mesh never went quiet");
    }
    cluster.nodes[1]
        .publish("web", &crate::halt(&name(1)))
        .await;
    tokio::time::timeout(DEADLINE, changes.changed())
        .await
        .expect("a peer's publish is a change")
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_another_mesh_are_kept_out() {
    let _one = exclusive().await;
    let transport = channel();
    let cluster = Cluster::web(3, INTERVAL, &transport).await;
    cluster.converge(DEADLINE).await;
    let mut stranger = settings("stranger", &[cluster.nodes[0].gossip_addr()], INTERVAL);
    stranger.cluster = "other".into();
    let stranger = Mesh::start_with(stranger, &["web".to_owned()], &transport)
        .await
        .unwrap();
    // The stranger keeps knocking; give it a good many rounds, then look.
    let mut changes = cluster.nodes[0].changes();
    changes.borrow_and_update();
    let knocked = tokio::time::timeout(INTERVAL * 20, changes.changed()).await;
    assert!(knocked.is_err(), "nothing changed for the mesh");
    assert!(
        cluster.nodes[0]
            .group("web")
            .await
            .peer("stranger")
            .is_none()
    );
    assert_eq!(stranger.fleet().await.len(), 1);
    stranger.shutdown().await;
    cluster.shutdown().await;
}
