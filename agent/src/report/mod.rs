//! Showing what the agent does: the status board the runtime writes and the HTTP endpoint
//! reads, the deployments on disk, each group's history, Prometheus metrics, the admin token, and lifecycle notes to
//! systemd.

pub mod board;
pub mod deployments;
pub mod history;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod token;

pub use board::Board;
pub use http::{ServerState, serve};
pub use metrics::Metrics;
pub use notify::Notifier;
pub use token::ensure_token;
