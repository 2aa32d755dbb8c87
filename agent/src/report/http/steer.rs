//! What the steering endpoints need of a group: record an operator's command, and say what the
//! group publishes. The runtime provides it; the endpoint depends on this and nothing more.

use shoal_shared::gossip::GroupValues;
use shoal_shared::rollout::Command;
use shoal_shared::rollout::plan::CommandError;
use shoal_shared::status::{RollbackAnswer, RollbackRequest};

use crate::report::metrics::RolloutGauges;

/// One group, as the endpoint steers and shows it.
pub trait Steer: Send + Sync {
    /// Records `command` on this host, durably, and wakes the group, which publishes it to
    /// the mesh. Returns the deployment it applies to.
    fn command(&self, command: Command) -> Result<String, SteerError>;

    /// `shoal rollback`: the order to sign for `request.to`, or (with a signed order) the
    /// order checked and handed to the group, by the operator `by`.
    fn rollback(&self, request: RollbackRequest, by: &str) -> Result<RollbackAnswer, SteerError>;

    /// What this host publishes about the group now.
    fn values(&self) -> GroupValues;

    /// Where the group's rollout stands, for the metrics.
    fn rollout(&self) -> RolloutGauges;
}

/// Why an operator command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    /// The planner does not take it now (no release, not halted, not a canary deployment).
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// A rollback order whose signature, signer or age is not accepted (403).
    #[error("{0}")]
    Forbidden(String),
    /// A rollback that does not fit the group as it stands (409).
    #[error("{0}")]
    Conflict(String),
    /// It could not be persisted; it is not applied either.
    #[error("cannot record the command on this host: {0}")]
    Journal(String),
}
