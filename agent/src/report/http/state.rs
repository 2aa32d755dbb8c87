//! What the status endpoint serves from: the board, the metrics, the deployments on disk, the
//! groups (to steer and show) and the mesh, shared by the server and every answer.

use std::path::PathBuf;
use std::sync::Arc;

use super::auth::AdminToken;
use super::steer::Steer;
use crate::coordinate::Mesh;
use crate::report::{Board, Metrics};

/// What the endpoint serves from.
pub struct ServerState {
    /// The groups' state, written by the runtime.
    pub board: Board,
    /// The agent's metrics.
    pub metrics: Metrics,
    /// Where deployment directories are (`<data_dir>/deployment-root`).
    pub deployment_root: PathBuf,
    /// This host's node id.
    pub node: String,
    /// The token the steering calls must carry (from `status.token_file`).
    pub admin: AdminToken,
    /// Each group, steered and shown, by group name, in config order.
    pub groups: Vec<(String, Arc<dyn Steer>)>,
    /// The gossip mesh, when the agent has one (else each group is a group of one).
    pub mesh: Option<Arc<Mesh>>,
    /// Serve hook output without the admin token (`status.public_logs`).
    pub public_logs: bool,
}
