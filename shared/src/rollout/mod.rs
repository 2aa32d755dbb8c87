//! Rollouts: the policy that says how a group upgrades (strategy, batch sizes, health gates),
//! the planner that carries it out over gossip, one host at a time ([`plan`]), and each host's
//! own side of it ([`host`]): the journal and what follows a run, a failure, a restart or a
//! halt. All of it pure: the agent and the simulator drive the same code.

pub mod host;
mod ids;
pub mod journal;
pub mod plan;
mod policy;
mod policy_file;
pub mod pollers;
pub mod sources;

pub use host::{Ended, Failure, GroupHost, MAX_REVERT_ATTEMPTS, Work};
pub use ids::{deployment_id, revert_id, rollback_id};
pub use journal::{InFlight, Installed, Journal};
pub use plan::{
    Action, Command, Event, Memory, Millis, Outcome, Planner, Revision, Settings, View,
};
pub use policy::{Amount, Linear, Policy, PolicyError, RawPolicy, Scalar, Strategy};
pub use policy_file::{
    PolicyFileError, RawHealth, ReleaseFile, Shape, parse_policy_file, parse_release_file,
};
