//! Carrying out a deployment on this host: unpack the bundle, install its files, run its hooks.

pub mod bundle;
pub mod hooks;
pub mod scripts_log;
