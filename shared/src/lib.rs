//! Pure types and logic of shoal, shared by the agent and the tests: no I/O, no async runtime.
//!
//! The AppSpec engine lives in [`appspec`]: the model of a CodeDeploy `appspec.yml`, a parser
//! that reads it as the CodeDeploy agent does (YAML 1.1), and its validation rules.
#![warn(missing_docs)]

pub mod appspec;
pub mod time;
