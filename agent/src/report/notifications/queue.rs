//! The bounded queue the handle fills and the task empties: it pushes out its oldest delivery
//! when full, and shares the counters and the close deadline between them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use shoal_shared::history::{EventKind, FleetEvent};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Counts, Events, NotifyStats, TargetKind, hex};

/// At most one warning about a full queue in this time.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(60);

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
    /// A queue for targets of these `routes` (kind and filter, in the task's order), holding at
    /// most `bound` deliveries; `closing_tx` tells the task its deadline at close.
    pub(super) fn new(
        routes: Vec<(TargetKind, Events)>,
        bound: usize,
        closing_tx: watch::Sender<Option<Instant>>,
    ) -> Self {
        Self {
            routes,
            bound,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing_tx,
            webhook: Counters::default(),
            command: Counters::default(),
        }
    }

    /// The deliveries so far, by kind of target.
    pub(super) fn stats(&self) -> NotifyStats {
        NotifyStats {
            webhook: self.webhook.get(),
            command: self.command.get(),
        }
    }

    /// Takes no more events, and tells the task to stop by `deadline`.
    pub(super) fn close(&self, deadline: Instant) {
        self.lock().closed = true;
        self.closing_tx.send_replace(Some(deadline));
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn send(&self, event: &FleetEvent) {
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
