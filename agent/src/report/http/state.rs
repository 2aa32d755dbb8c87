//! What the status endpoint serves from: the board, the metrics, the deployments on disk, the
//! groups (to steer and show) and the mesh, shared by the server and every answer.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use super::auth::AdminToken;
use super::steer::Steer;
use crate::coordinate::Mesh;
use crate::report::Notifications;
use crate::report::history::Histories;
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
    pub groups: Steering,
    /// The gossip mesh, when the agent has one (else each group is a group of one).
    pub mesh: Option<Arc<Mesh>>,
    /// Serve hook output without the admin token (`status.public_logs`).
    pub public_logs: bool,
    /// Each group's history, written by the runtime.
    pub histories: Histories,
    /// Where rollout events go (`notify:`), for their counts.
    pub notifications: Notifications,
}

/// A group's name and the group, steered and shown.
pub type Steered = (String, Arc<dyn Steer>);

/// The groups the endpoint steers and shows, by name in config order; a reload adds and
/// removes them while the agent runs. Cheap to clone.
#[derive(Clone, Default)]
pub struct Steering {
    groups: Arc<RwLock<Vec<Steered>>>,
}

impl Steering {
    /// These groups.
    pub fn new(groups: Vec<Steered>) -> Self {
        Self {
            groups: Arc::new(RwLock::new(groups)),
        }
    }

    /// Every group, in order.
    pub fn all(&self) -> Vec<Steered> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The names of the groups, in order.
    pub fn names(&self) -> Vec<String> {
        self.all().into_iter().map(|(name, _)| name).collect()
    }

    /// The group called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Steer>> {
        self.all()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, steer)| steer)
    }

    /// Sets the groups to `groups` (a reload).
    pub fn replace(&self, groups: Vec<Steered>) {
        *self.groups.write().unwrap_or_else(PoisonError::into_inner) = groups;
    }
}

impl FromIterator<Steered> for Steering {
    fn from_iter<I: IntoIterator<Item = Steered>>(groups: I) -> Self {
        Self::new(groups.into_iter().collect())
    }
}
