//! Pure types and logic of shoal, shared by the agent and the tests: no I/O, no async runtime.
//!
//! The AppSpec engine lives in [`appspec`]: the model of a CodeDeploy `appspec.yml`, a parser
//! that reads it as the CodeDeploy agent does (YAML 1.1), and its validation rules.
//! Releases and trust live in [`release`]: `allowed_signers`, SSH signatures, signed tags,
//! versions and the store manifest. Rollout policies live in [`rollout`];
//! the fleet view assembled from gossip in [`fleet`], and what happened to rollouts in
//! [`history`].
#![warn(missing_docs)]

pub mod appspec;
pub mod duration;
pub mod fleet;
pub mod gossip;
pub mod history;
pub mod release;
pub mod rollout;
pub mod status;
pub mod text;
pub mod time;
mod yaml_limits;
