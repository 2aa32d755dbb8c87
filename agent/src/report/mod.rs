//! Showing what the agent does: the status board the runtime writes and the HTTP endpoint
//! reads, the deployments on disk, each group's history, Prometheus metrics, the admin token,
//! lifecycle notes to systemd, and notifications of rollout events to webhooks and a command.

pub mod board;
pub mod deployments;
pub mod history;
pub mod http;
pub mod metrics;
pub mod notifications;
pub mod notify;
pub mod token;

pub use board::Board;
pub use http::{ServerState, serve};
pub use metrics::Metrics;
pub use notifications::Notifications;
pub use notify::Notifier;
pub use token::ensure_token;
