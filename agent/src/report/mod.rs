//! Showing what the agent does: the status board the runtime writes and the HTTP endpoint
//! reads, Prometheus metrics, and lifecycle notes to systemd.

pub mod board;
pub mod metrics;

pub use board::Board;
pub use metrics::Metrics;
