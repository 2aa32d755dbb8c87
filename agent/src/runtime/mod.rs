//! The long-running agent: one loop per group, made of parts with their own names.
//!
//! - [`watcher`]: looks at the group's channel, verifies and fetches what is new;
//! - the pure [`shoal_shared::rollout::GroupHost`] decides everything that follows (taking
//!   turns with peers, what a failure, a restart or a halt means for this host), and
//!   [`keeper`] keeps it with its journal, written before anything it decided is carried out;
//! - [`deployer`]: runs the deployments and reverts it asks for, and their health window;
//! - [`group`]: the loop that joins them, with the mesh and status.
//!
//! The simulator drives the same `GroupHost`, so what it checks is the agent's own code.

pub mod agent;
mod channel;
mod chronicle;
mod deployer;
mod group;
mod groups;
pub mod health;
pub mod journal;
pub mod keeper;
mod live;
mod observer;
pub mod orphans;
mod release_file;
mod rollback;
mod show;
pub mod signals;
#[cfg(test)]
mod testing;
mod watcher;

pub use deployer::{changed_host, mark_interrupted};
pub use keeper::Keeper;
pub use rollback::GroupSteer;
pub use shoal_shared::rollout::journal::HEALTH_CHECK;
