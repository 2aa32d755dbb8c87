//! The gossip mesh on real chitchat: many `Mesh`es in one process over chitchat's in-memory
//! `ChannelTransport` (links cut for partitions, messages dropped for loss), and a few over real
//! UDP on 127.0.0.1. Every wait polls a condition under a deadline; figures are in gossip rounds.
//!
//! Scenarios take a process-wide lock and run one at a time: they measure time, and two
//! hundred-node clusters sharing two cores would measure each other.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod bench;
mod halt;
mod membership;
mod partition;
mod rollout;
mod sealed;
mod udp;

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chitchat::transport::{ChannelTransport, Transport};
use shoal_agent::coordinate::{GroupValues, Mesh, MeshSettings};
use shoal_shared::gossip::{GroupState, Halt, Health, Step};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// One scenario at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// chitchat's own limit, the largest UDP payload.
pub const MTU: usize = 65_507;

/// Takes the scenario lock.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Settings of node `node` joining through `seeds`, gossiping every `interval`.
pub fn settings(node: &str, seeds: &[SocketAddr], interval: Duration) -> MeshSettings {
    MeshSettings {
        cluster: "test".into(),
        node: node.into(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
        seeds: seeds.iter().map(ToString::to_string).collect(),
        interval,
        dead_grace: Duration::from_secs(600),
        keyring: None,
        max_datagram: shoal_agent::coordinate::MAX_DATAGRAM,
    }
}

/// The name of node `i`.
pub fn name(i: usize) -> String {
    format!("n{i:03}")
}

/// Meshes in one process over one transport.
pub struct Cluster {
    pub nodes: Vec<Mesh>,
    pub interval: Duration,
}

impl Cluster {
    /// Starts `n` nodes named `n000`…, node `i` in the groups `groups(i)`, joining through up
    /// to three earlier nodes. (Not all through node 0: a node that sees no peer alive yet
    /// gossips with a seed every round, so at a cold start one seed would take a SYN from every
    /// node every round.)
    pub async fn start(
        n: usize,
        interval: Duration,
        transport: &dyn Transport,
        groups: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        let mut nodes: Vec<Mesh> = Vec::with_capacity(n);
        for i in 0..n {
            let seeds = seeds(i).map(|j| nodes[j].gossip_addr()).collect::<Vec<_>>();
            let mesh =
                Mesh::start_with(settings(&name(i), &seeds, interval), &groups(i), transport)
                    .await
                    .unwrap();
            nodes.push(mesh);
        }
        Cluster { nodes, interval }
    }

    /// Every node in group `web`.
    pub async fn web(n: usize, interval: Duration, transport: &dyn Transport) -> Cluster {
        Self::start(n, interval, transport, |_| vec!["web".to_owned()]).await
    }

    /// Waits until every node sees every other one alive, and checks that its fleet view says
    /// so; returns the time. (Polled through chitchat's counts every quarter round: a fleet
    /// snapshot of every node at every poll would cost more than the gossip being measured.
    /// Above 500 nodes the fleet views of 100 nodes spread over the mesh are checked: each
    /// view keeps a decoded copy of every peer, 4 GB more at 2,000 nodes.)
    pub async fn converge(&self, timeout: Duration) -> Duration {
        let n = self.nodes.len();
        let started = Instant::now();
        let last = RefCell::new(String::new());
        let converged = tokio::time::timeout(timeout, async {
            loop {
                let mut lagging = Vec::new();
                for mesh in &self.nodes {
                    let chitchat = mesh.chitchat();
                    let chitchat = chitchat.lock().await;
                    let (alive, known) =
                        (chitchat.live_nodes().count(), chitchat.node_states().len());
                    if alive != n || known != n {
                        lagging.push(format!("{}: {alive}/{known} alive", mesh.node()));
                    }
                }
                if lagging.is_empty() {
                    return;
                }
                *last.borrow_mut() = lagging.join(", ");
                tokio::time::sleep(self.interval / 4).await;
            }
        })
        .await;
        assert!(
            converged.is_ok(),
            "membership did not converge within {timeout:?}; lagging: {}",
            last.borrow()
        );
        let took = started.elapsed();
        let every = if n > 500 { n / 100 } else { 1 };
        for mesh in self.nodes.iter().step_by(every) {
            let fleet = mesh.fleet().await;
            assert_eq!(fleet.len(), n, "{} lists every node once", mesh.node());
            assert!(
                fleet.iter().all(|node| node.alive),
                "{} sees all alive",
                mesh.node()
            );
        }
        took
    }

    /// How many gossip rounds `elapsed` is.
    pub fn rounds(&self, elapsed: Duration) -> f64 {
        elapsed.as_secs_f64() / self.interval.as_secs_f64()
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for mesh in self.nodes {
            mesh.shutdown().await;
        }
    }
}

/// The earlier nodes node `i` joins through: `i - 1`, `i / 2` and `i / 4`.
pub fn seeds(i: usize) -> impl Iterator<Item = usize> {
    let mut seeds = vec![i.wrapping_sub(1), i / 2, i / 4];
    seeds.retain(|j| *j < i);
    seeds.dedup();
    seeds.into_iter()
}

/// The in-memory transport at chitchat's MTU.
pub fn channel() -> ChannelTransport {
    ChannelTransport::with_mtu(MTU)
}

/// Calls `probe` until it gives `Some`, or panics naming `what` once `timeout` has passed.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A state at `step` of revision `revision`.
pub fn state(revision: &str, step: Step) -> GroupState {
    GroupState {
        revision: Some(revision.to_owned()),
        digest: Some(format!("git:{revision}")),
        step: Some(step),
        health: Health::Healthy,
        ..GroupState::default()
    }
}

/// A halt of deployment `d-1` by `host`.
pub fn halt(host: &str) -> GroupValues {
    GroupValues {
        halt: Some(Halt {
            id: "d-1".to_owned(),
            epoch: 1,
            host: host.to_owned(),
            reason: "ValidateService failed".to_owned(),
            by: None,
        }),
        ..GroupValues::default()
    }
}

/// Node `from` publishes a halt in group `web`; waits until every other node sees it, and
/// returns the time taken.
pub async fn halt_reaches_all(cluster: &Cluster, from: usize, timeout: Duration) -> Duration {
    let origin = name(from);
    let started = Instant::now();
    cluster.nodes[from].publish("web", &halt(&origin)).await;
    let seen = RefCell::new(vec![false; cluster.nodes.len()]);
    seen.borrow_mut()[from] = true;
    eventually(timeout, "the halt to reach every node", || async {
        for (i, mesh) in cluster.nodes.iter().enumerate() {
            if !seen.borrow()[i] {
                let web = mesh.group("web").await;
                seen.borrow_mut()[i] = web.peer(&origin).is_some_and(|p| p.halt.is_some());
            }
        }
        seen.borrow().iter().all(|s| *s).then_some(())
    })
    .await;
    started.elapsed()
}
