//! Notifications of rollout events (`notify:` in agent.yaml): each [`FleetEvent`] goes to the
//! webhooks and the local command whose filter takes it, through a bounded queue that one task
//! delivers in order, retrying failures with exponential backoff. Here: the settings, the
//! filters, the backoff and the counters; the handle is in [`queue`], the loop in [`task`].
//! (`report::notify` is another thing: lifecycle notes to systemd.)
//!
//! [`FleetEvent`]: shoal_shared::history::FleetEvent

mod command;
mod handle;
mod queue;
mod secret;
mod task;
#[cfg(test)]
mod testing;
mod webhook;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use shoal_shared::history::EventKind;

pub use handle::Notifications;
pub use secret::{Secret, SecretError};

/// `notify.queue` unless configured.
pub const DEFAULT_QUEUE: usize = 256;
/// The largest `notify.queue`.
pub const MAX_QUEUE: usize = 65_536;
/// A webhook's `timeout` unless configured.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The command's `timeout` unless configured.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Notifications::close`] goes on delivering what is queued.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// `notify:`: where rollout events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// `webhooks:`, in file order.
    pub webhooks: Vec<WebhookTarget>,
    /// `command:`, if any.
    pub command: Option<CommandTarget>,
    /// How many deliveries may wait; past it the oldest is dropped.
    pub queue: usize,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            command: None,
            queue: DEFAULT_QUEUE,
        }
    }
}

impl NotifySettings {
    /// Whether nothing is configured, so nothing is ever sent.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.command.is_none()
    }
}

/// One entry of `webhooks:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// An http or https URL; events are POSTed to it.
    pub url: url::Url,
    /// The key of `X-Shoal-Signature`, if any.
    pub secret: Option<Secret>,
    /// The events it gets.
    pub events: Events,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
}

impl WebhookTarget {
    /// The URL as logs show it: scheme, host and port only, since the path and the query of a
    /// webhook URL often hold its token.
    pub fn shown(&self) -> String {
        shown_url(&self.url)
    }
}

/// `scheme://host[:port]` of `url`.
pub fn shown_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// `command:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTarget {
    /// The executable, run as the agent (root) with no shell.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The events it gets.
    pub events: Events,
    /// How long one run may take before its process group is killed.
    pub timeout: Duration,
}

/// The events a target gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events(BTreeSet<EventKind>);

impl Default for Events {
    fn default() -> Self {
        Self::all()
    }
}

impl Events {
    /// Every event.
    pub fn all() -> Self {
        Self(EventKind::ALL.into_iter().collect())
    }

    /// The events named in `names`; the error says which name is not an event, and lists those
    /// that are.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        if names.is_empty() {
            return Err(
                "an empty list would send nothing; list event names, or leave the key out to send every event"
                    .to_owned(),
            );
        }
        names
            .iter()
            .map(|name| {
                EventKind::parse(name).ok_or_else(|| {
                    format!(
                        "`{name}` is not an event name; use {}",
                        event_names().join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether an event of `kind` goes to the target.
    pub fn takes(&self, kind: EventKind) -> bool {
        self.0.contains(&kind)
    }
}

/// The names of every event, as `notify:` filters spell them.
pub fn event_names() -> Vec<&'static str> {
    EventKind::ALL.into_iter().map(EventKind::as_str).collect()
}

/// How failed deliveries are tried again: after attempt `n` fails, the next waits
/// `first × 2^(n-1)`, at most `max`; after `attempts` attempts the delivery is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts in all, the first one included.
    pub attempts: u32,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, … at most 60 s; 6 attempts.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based) failed, or `None` when it was the last.
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let doubled = 2u32
            .checked_pow(attempt.saturating_sub(1))
            .map_or(self.max, |factor| self.first.saturating_mul(factor));
        Some(doubled.min(self.max))
    }
}

/// What kind of target a delivery is for: the label of its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// An entry of `webhooks:`.
    Webhook,
    /// `command:`.
    Command,
}

impl TargetKind {
    /// The label in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Command => "command",
        }
    }
}

/// The deliveries of one kind of target since the agent started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accepted by the target (a 2xx answer, exit status 0), at some attempt.
    pub delivered: u64,
    /// Given up after the last attempt.
    pub failed: u64,
    /// Never tried to the end: pushed out of a full queue, or still queued when
    /// [`Notifications::close`] ran out of time.
    pub dropped: u64,
}

/// [`Counts`] by kind of target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyStats {
    /// Of the webhooks together.
    pub webhook: Counts,
    /// Of the command.
    pub command: Counts,
}

impl NotifyStats {
    /// The counts of `kind`.
    pub fn of(&self, kind: TargetKind) -> Counts {
        match kind {
            TargetKind::Webhook => self.webhook,
            TargetKind::Command => self.command,
        }
    }
}

/// Why one attempt at a delivery failed, as the warning says it (the target is in its fields).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No answer: the connection or the request failed. Never holds the URL, whose path may be
    /// a token.
    #[error("{0}")]
    Request(String),
    /// No answer within the target's timeout.
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// An answer that is not 2xx.
    #[error("answered {0}")]
    Status(u16),
    /// The signature could not be computed.
    #[error("cannot sign the request")]
    Sign,
    /// The command cannot be started.
    #[error("cannot start the command: {0}")]
    Spawn(#[source] std::io::Error),
    /// The command did not end within its timeout; its process group was killed.
    #[error("the command did not finish within {} s and was killed", .0.as_secs_f64())]
    CommandTimeout(Duration),
    /// The command's end could not be waited for.
    #[error("lost track of the command: {0}")]
    Wait(#[source] std::io::Error),
    /// The command ended unsuccessfully.
    #[error("the command {}", crate::execute::procs::failed_command(*status, stderr))]
    Exit {
        /// How it ended.
        status: ExitStatus,
        /// The end of what it wrote to stderr, trimmed.
        stderr: String,
    },
}

/// `bytes` in lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The HTTP client cannot be built (no TLS backend, no CA store).
    #[error("cannot set up the webhook client: {0}")]
    Client(String),
    /// Not called from inside the tokio runtime.
    #[error("notifications need a running tokio runtime")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_stops_after_the_last_attempt() {
        let backoff = Backoff::default();
        let waits: Vec<_> = (1..=6).map(|n| backoff.after(n)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(8), secs(16), None]);
        let long = Backoff {
            attempts: 40,
            ..Backoff::default()
        };
        assert_eq!(long.after(7), secs(60), "64 s is capped at 60 s");
        assert_eq!(long.after(39), secs(60), "no overflow far out");
        assert_eq!(long.after(40), None);
    }

    #[test]
    fn a_filter_takes_the_events_it_names() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let some = Events::parse(&names(&["halted", "host_failed"])).expect("known names");
        assert!(some.takes(EventKind::Halted) && some.takes(EventKind::HostFailed));
        assert!(!some.takes(EventKind::Completed));
        assert!(EventKind::ALL.into_iter().all(|k| Events::all().takes(k)));
        let err = Events::parse(&names(&["halted", "deployed"])).expect_err("unknown");
        assert!(
            err.starts_with("`deployed` is not an event name; use release_seen, rollout_started, host_failed, halted, resumed, promoted, completed, rolled_back"),
            "{err}"
        );
        let err = Events::parse(&[]).expect_err("empty");
        assert!(err.contains("leave the key out"), "{err}");
    }

    #[test]
    fn logs_show_a_webhook_by_its_host_only() {
        let url = |text: &str| url::Url::parse(text).expect("url");
        assert_eq!(
            shown_url(&url("https://hooks.example.com/services/T0/B0/s3cr3t?x=1")),
            "https://hooks.example.com"
        );
        assert_eq!(
            shown_url(&url("http://127.0.0.1:8080/hook")),
            "http://127.0.0.1:8080"
        );
    }
}
