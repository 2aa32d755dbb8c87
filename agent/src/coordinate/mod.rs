//! STUB (replaced by the mesh branch).
#![allow(missing_docs, dead_code, unused_variables)]
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_shared::gossip::{GroupState, Halt, Promote, Resume};
use shoal_shared::rollout::View;
use shoal_shared::rollout::plan::Peer;

#[derive(Debug, Clone)]
pub struct MeshSettings {
    pub cluster: String,
    pub node: String,
    pub listen: SocketAddr,
    pub advertise: Option<SocketAddr>,
    pub seeds: Vec<String>,
    pub interval: Duration,
    pub dead_grace: Duration,
}
impl MeshSettings {
    pub fn from_config(mesh: &crate::config::Mesh, node: &str) -> Self {
        Self {
            cluster: mesh.name.clone(),
            node: node.to_owned(),
            listen: mesh.listen,
            advertise: mesh.advertise,
            seeds: mesh.seeds.clone(),
            interval: mesh.interval,
            dead_grace: Duration::from_secs(600),
        }
    }
}
pub struct Mesh {
    node: String,
    tx: tokio::sync::watch::Sender<u64>,
}
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("stub")]
    Stub,
}
impl Mesh {
    pub async fn start(settings: MeshSettings, groups: &[String]) -> Result<Mesh, MeshError> {
        Err(MeshError::Stub)
    }
    pub fn node(&self) -> &str {
        &self.node
    }
    pub fn gossip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
    pub async fn publish(&self, group: &str, values: &Published) {}
    pub async fn group(&self, group: &str) -> GroupSnapshot {
        GroupSnapshot::default()
    }
    pub async fn fleet(&self) -> Vec<NodeSnapshot> {
        Vec::new()
    }
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }
    pub fn decode_failures(&self) -> u64 {
        0
    }
    pub async fn shutdown(self) {}
}
#[derive(Clone, Default, PartialEq, Debug)]
pub struct Published {
    pub state: Option<GroupState>,
    pub halt: Option<Halt>,
    pub resume: Option<Resume>,
    pub promote: Option<Promote>,
}
#[derive(Debug, Clone)]
pub struct PeerState {
    pub node: String,
    pub alive: bool,
    pub state: Option<GroupState>,
    pub halt: Option<Halt>,
    pub resume: Option<Resume>,
    pub promote: Option<Promote>,
}
#[derive(Debug, Clone, Default)]
pub struct GroupSnapshot {
    pub peers: Vec<PeerState>,
}
impl GroupSnapshot {
    pub fn view(&self) -> View<'_> {
        View {
            peers: self
                .peers
                .iter()
                .map(|p| Peer {
                    node: &p.node,
                    alive: p.alive,
                    state: p.state.as_ref(),
                    halt: p.halt.as_ref(),
                    resume: p.resume.as_ref(),
                    promote: p.promote.as_ref(),
                })
                .collect(),
        }
    }
}
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    pub node: String,
    pub alive: bool,
    pub groups: Vec<String>,
    pub values: BTreeMap<String, Published>,
}
