//! Carrying out a deployment on this host: unpack the bundle, install its files, run its hooks.

pub mod deployment;
pub mod deployments_log;
pub mod hooks;
pub mod install;
pub mod layout;
pub mod procs;
pub mod scripts_log;
pub mod walk;
