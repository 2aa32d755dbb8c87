//! The handle the runtime holds: [`Notifications::send`] files a copy of an event for each
//! target whose filter takes it, in a bounded queue that pushes out its oldest delivery when full,
//! and never waits; [`Notifications::close`] lets the task deliver what is queued for a few
//! seconds. The queue, the counters and the close deadline are shared with the task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use shoal_shared::history::{EventKind, FleetEvent};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument as _, debug, warn};

use super::task::{Delivery, Target};
use super::webhook::{self, Webhook};
use super::{Backoff, CLOSE_GRACE, Counts, Events, NotifySettings, NotifyStats, TargetKind, hex};

/// At most one warning about a full queue in this time.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(60);
/// How long [`Notifications::close`] waits past its grace for a task that overran it.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

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

/// Where the runtime sends rollout events. Cheap to clone; every clone feeds the same queue.
#[derive(Clone, Default)]
pub struct Notifications {
    /// `None` when nothing is configured: every event is ignored.
    shared: Option<Arc<Shared>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Notifications {
    /// Starts delivering to the targets of `settings`, with the default backoff. Must be called
    /// inside the tokio runtime. With no targets it starts nothing.
    pub fn start(settings: &NotifySettings) -> Result<Self, NotifyError> {
        Self::start_with(settings, Backoff::default())
    }

    /// As [`Notifications::start`], with failed deliveries tried again as `backoff` says.
    pub fn start_with(settings: &NotifySettings, backoff: Backoff) -> Result<Self, NotifyError> {
        let client = webhook::client(Vec::new())?;
        let (handle, delivery) = Self::build(settings, backoff, client);
        if let Some(delivery) = delivery {
            handle.spawn(delivery)?;
        }
        Ok(handle)
    }

    /// The handle and, when there is a target, the task that delivers for it, not yet spawned.
    pub(super) fn build(
        settings: &NotifySettings,
        backoff: Backoff,
        client: reqwest::Client,
    ) -> (Self, Option<Delivery>) {
        let mut targets: Vec<Target> = settings
            .webhooks
            .iter()
            .map(|w| Target::Webhook(Webhook::new(w.clone(), client.clone())))
            .collect();
        targets.extend(settings.command.clone().map(Target::Command));
        if targets.is_empty() {
            return (Self::default(), None);
        }
        let (closing_tx, closing_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            routes: targets
                .iter()
                .map(|t| (t.kind(), t.events().clone()))
                .collect(),
            bound: settings.queue.max(1),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing_tx,
            webhook: Counters::default(),
            command: Counters::default(),
        });
        let delivery = Delivery::new(shared.clone(), targets, backoff, closing_rx);
        let handle = Self {
            shared: Some(shared),
            task: Arc::default(),
        };
        (handle, Some(delivery))
    }

    /// Runs `delivery` as the task of this handle.
    pub(super) fn spawn(&self, delivery: Delivery) -> Result<(), NotifyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let span = tracing::info_span!("notify");
        let task = runtime.spawn(delivery.run().instrument(span));
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        Ok(())
    }

    /// Queues `event` for each target whose filter takes it. Never waits: when the queue is full
    /// its oldest delivery is dropped (counted, and logged at most once a minute). After
    /// [`Notifications::close`], does nothing.
    pub fn send(&self, event: &FleetEvent) {
        if let Some(shared) = &self.shared {
            shared.send(event);
        }
    }

    /// The deliveries so far, by kind of target.
    pub fn stats(&self) -> NotifyStats {
        self.shared
            .as_ref()
            .map_or_else(NotifyStats::default, |shared| NotifyStats {
                webhook: shared.webhook.get(),
                command: shared.command.get(),
            })
    }

    /// Stops taking events and delivers what is queued for at most [`CLOSE_GRACE`] (retries
    /// included); what is left then is dropped, counted and logged.
    pub async fn close(&self) {
        self.close_within(CLOSE_GRACE).await;
    }

    /// As [`Notifications::close`], within `grace`.
    pub async fn close_within(&self, grace: Duration) {
        let Some(shared) = &self.shared else { return };
        shared.lock().closed = true;
        shared.closing_tx.send_replace(Some(Instant::now() + grace));
        shared.wake.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(grace + CLOSE_MARGIN, &mut task)
                .await
                .is_err()
        {
            warn!("notification task did not stop in time; stopped it");
            task.abort();
        }
    }
}

/// One event, as every target gets it.
#[derive(Debug)]
pub(super) struct Event {
    pub kind: EventKind,
    pub group: String,
    pub deployment: String,
    /// The event's JSON.
    pub body: Bytes,
}

/// One event for one target.
#[derive(Debug, Clone)]
pub(super) struct Job {
    /// The index of the target in the task's list.
    pub target: usize,
    pub kind: TargetKind,
    pub event: Arc<Event>,
    /// `X-Shoal-Delivery`: random, the same for every attempt.
    pub id: String,
}

/// What the task finds when it looks at the queue.
pub(super) enum Taken {
    /// A delivery to make.
    Job(Job),
    /// Nothing yet.
    Empty,
    /// Nothing, and nothing more will come.
    Closed,
}

/// What the handle and the task share.
pub(super) struct Shared {
    /// The kind and the filter of each target, in the task's order.
    routes: Vec<(TargetKind, Events)>,
    bound: usize,
    state: Mutex<State>,
    /// Woken when a delivery is queued, or at close.
    pub wake: Notify,
    /// When the task must stop, once [`Notifications::close`] is called.
    closing_tx: watch::Sender<Option<Instant>>,
    webhook: Counters,
    command: Counters,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
    /// Deliveries dropped from a full queue since the last warning.
    unreported: u64,
    last_warning: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, event: &FleetEvent) {
        let targets: Vec<(usize, TargetKind)> = (self.routes.iter().enumerate())
            .filter(|(_, (_, events))| events.takes(event.event))
            .map(|(index, (kind, _))| (index, *kind))
            .collect();
        if targets.is_empty() {
            return;
        }
        let body = match serde_json::to_vec(event) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                warn!(error = %e, notify.event = event.event.as_str(), "notification not sent: the event does not serialize");
                return;
            }
        };
        let event = Arc::new(Event {
            kind: event.event,
            group: event.group.clone(),
            deployment: event.deployment.clone(),
            body,
        });
        let mut state = self.lock();
        if state.closed {
            debug!(
                notify.event = event.kind.as_str(),
                "notification after close ignored"
            );
            return;
        }
        for (target, kind) in targets {
            if state.jobs.len() >= self.bound
                && let Some(oldest) = state.jobs.pop_front()
            {
                self.counters(oldest.kind)
                    .dropped
                    .fetch_add(1, Ordering::Relaxed);
                state.unreported += 1;
            }
            state.jobs.push_back(Job {
                target,
                kind,
                event: event.clone(),
                id: delivery_id(),
            });
        }
        self.warn_of_drops(&mut state);
        drop(state);
        self.wake.notify_one();
    }

    /// The next delivery, in the order they were queued.
    pub fn take(&self) -> Taken {
        let mut state = self.lock();
        self.warn_of_drops(&mut state);
        match state.jobs.pop_front() {
            Some(job) => Taken::Job(job),
            None if state.closed => Taken::Closed,
            None => Taken::Empty,
        }
    }

    /// Empties the queue, each delivery counted dropped; returns how many there were.
    pub fn drain(&self) -> usize {
        let jobs: Vec<Job> = self.lock().jobs.drain(..).collect();
        for job in &jobs {
            self.count_dropped(job.kind);
        }
        jobs.len()
    }

    pub fn count_delivered(&self, kind: TargetKind) {
        self.counters(kind)
            .delivered
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_failed(&self, kind: TargetKind) {
        self.counters(kind).failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_dropped(&self, kind: TargetKind) {
        self.counters(kind).dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn counters(&self, kind: TargetKind) -> &Counters {
        match kind {
            TargetKind::Webhook => &self.webhook,
            TargetKind::Command => &self.command,
        }
    }

    /// Warns of the deliveries a full queue dropped, unless it did less than a minute ago.
    fn warn_of_drops(&self, state: &mut State) {
        let now = Instant::now();
        let recent =
            (state.last_warning).is_some_and(|at| now.duration_since(at) < DROP_WARNING_EVERY);
        if state.unreported == 0 || recent {
            return;
        }
        warn!(
            notify.dropped = state.unreported,
            notify.queue = self.bound,
            "notification queue full: its oldest deliveries were dropped"
        );
        state.unreported = 0;
        state.last_warning = Some(now);
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn get(&self) -> Counts {
        Counts {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// 16 random bytes as hex; from the clock and a sequence number if the system has no randomness
/// to give (an id only has to be unique).
fn delivery_id() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&crate::clock::now_ns().to_be_bytes());
        bytes[8..].copy_from_slice(&SEQUENCE.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Answer, Receiver, WAIT, event, quick, stats_until, webhook};
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_deliveries() {
        let mut receiver = Receiver::start(&[], Answer::Status(200));
        let settings = NotifySettings {
            webhooks: vec![webhook(receiver.url("/hook"))],
            queue: 3,
            ..NotifySettings::default()
        };
        let client = webhook::client(Vec::new()).expect("client");
        let (notifications, delivery) = Notifications::build(&settings, quick(1), client);
        for n in 1..=5 {
            notifications.send(&event(EventKind::Completed, n));
        }
        let dropped = Counts {
            dropped: 2,
            ..Counts::default()
        };
        assert_eq!(notifications.stats().webhook, dropped);
        notifications
            .spawn(delivery.expect("a target"))
            .expect("spawn");
        let mut delivered = Vec::new();
        for _ in 0..3 {
            let request = receiver.next(WAIT).await.expect("a delivery");
            delivered.push(request.json()["deployment"].clone());
        }
        assert_eq!(delivered, ["d-3", "d-4", "d-5"]);
        let stats = stats_until(|| notifications.stats(), |s| s.webhook.delivered >= 3).await;
        assert_eq!(
            stats.webhook,
            Counts {
                delivered: 3,
                ..dropped
            }
        );
        assert!(receiver.pending().is_none());
    }

    #[test]
    fn with_nothing_configured_sending_does_nothing() {
        let (notifications, delivery) =
            Notifications::build(&NotifySettings::default(), quick(1), reqwest::Client::new());
        assert!(delivery.is_none(), "no task for no target");
        notifications.send(&event(EventKind::Completed, 1));
        assert_eq!(notifications.stats(), NotifyStats::default());
    }
}
