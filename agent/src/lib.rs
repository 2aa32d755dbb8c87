//! The shoal agent: everything that touches the host (files, processes, network).
//!
//! A revision flows one way: channel → verify → plan → coordinate → execute → report.
//! This crate holds the stages that do I/O; the pure logic lives in `shoal-shared`.

pub mod bundle;
pub mod channel;
pub mod cli;
pub mod clock;
pub mod config;
pub mod coordinate;
pub mod execute;
pub mod heap;
pub mod lock;
pub mod logging;
pub mod net;
pub mod report;
pub mod runtime;
pub mod share;
pub mod stop;
pub mod verify;
