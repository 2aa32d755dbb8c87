//! Rollouts: the policy that says how a group upgrades (strategy, batch sizes, health gates).
//! The planner that carries a policy out over gossip builds on this.

mod ids;
mod policy;

pub use ids::{deployment_id, revert_id};

pub use policy::{Amount, Linear, Policy, PolicyError, RawPolicy, Scalar, Strategy};
