//! The gossip mesh: this host's values published to its peers, and the peers' values read back
//! as owned snapshots that lend the pure planner its [`View`].
//!
//! One chitchat cluster per mesh (`mesh.name` is the cluster id). A node writes only its own
//! keys (the schema is [`shoal_shared::gossip`]); every peer value is decoded here, and one that
//! does not decode is treated as absent and counted, never trusted. Each start of the agent is a
//! new chitchat *generation* of its node id; snapshots show one entry per node id, its newest
//! generation. [`Mesh`] is the handle (`mesh.rs`), [`MeshSettings`] the knobs (`settings.rs`);
//! reading and decoding peers is `snapshot.rs`, the change notifier `task.rs`, the socket `udp.rs`.

mod duplicates;
pub mod fragment;
mod heard;
mod mesh;
mod relay;
pub mod seal;
mod sealed;
mod settings;
mod snapshot;
mod task;
mod udp;

use std::net::SocketAddr;

use shoal_shared::gossip::{GroupState, Halt, Promote, Resume, Rollback};
use shoal_shared::rollout::View;
use shoal_shared::rollout::plan::Peer;

pub use mesh::Mesh;
pub use sealed::{Flow, MAX_DATAGRAM, MIN_DATAGRAM, REPLAY_WINDOW};
pub use settings::MeshSettings;
pub use shoal_shared::fleet::NodeView;
pub use shoal_shared::gossip::GroupValues;

/// One other member of a group as gossip shows it to this host.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerState {
    /// Its node id.
    pub node: String,
    /// Whether the failure detector deems its newest generation alive.
    pub alive: bool,
    /// Whether this host heard from it (a newer heartbeat) within the last few rounds.
    pub recent: bool,
    /// Its `g:<group>:state`, if published and readable.
    pub state: Option<GroupState>,
    /// Its `g:<group>:halt`, if published and readable.
    pub halt: Option<Halt>,
    /// Its `g:<group>:resume`, if published and readable.
    pub resume: Option<Resume>,
    /// Its `g:<group>:promote`, if published and readable.
    pub promote: Option<Promote>,
    /// Its `g:<group>:rollback`, if published and readable (not checked: the watcher checks
    /// an order before it takes it).
    pub rollback: Option<Rollback>,
    /// Where it serves the releases it verified (`share`), if it does.
    pub share: Option<SocketAddr>,
}

/// The other members of one group, sorted by node id, alive or dead (until the dead grace ends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSnapshot {
    /// The members, this host excluded.
    pub peers: Vec<PeerState>,
    /// Another live host gossips under this host's node id.
    pub duplicate: bool,
}

impl GroupSnapshot {
    /// The snapshot as the planner reads it (borrowed).
    pub fn view(&self) -> View<'_> {
        View {
            peers: self.peers.iter().map(PeerState::peer).collect(),
            duplicate: self.duplicate,
        }
    }

    /// The member with this node id, if any.
    pub fn peer(&self, node: &str) -> Option<&PeerState> {
        self.peers.iter().find(|p| p.node == node)
    }
}

impl PeerState {
    fn peer(&self) -> Peer<'_> {
        Peer {
            node: &self.node,
            alive: self.alive,
            recent: self.recent,
            state: self.state.as_ref(),
            halt: self.halt.as_ref(),
            resume: self.resume.as_ref(),
            promote: self.promote.as_ref(),
        }
    }
}

/// The mesh cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// The UDP socket cannot be bound.
    #[error("cannot bind the gossip socket to {addr} (udp)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The transport refused to open (tests' in-memory transports).
    #[error("cannot open the gossip transport at {addr}")]
    Open {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// chitchat did not start.
    #[error("cannot start gossip")]
    Spawn {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The settings cannot work.
    #[error("invalid mesh settings: {0}")]
    Settings(String),
}

impl MeshError {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Bind { .. } => "bind",
            Self::Open { .. } => "open",
            Self::Spawn { .. } => "spawn",
            Self::Settings(_) => "settings",
        }
    }
}
