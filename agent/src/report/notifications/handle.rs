//! The handle the runtime holds: [`Notifications::send`] files a copy of an event for each
//! target whose filter takes it in the [`super::queue`], and never waits;
//! [`Notifications::close`] lets the task deliver what is queued for a few seconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shoal_shared::history::FleetEvent;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument as _, warn};

use super::queue::Shared;
use super::task::{Delivery, Target};
use super::webhook::{self, Webhook};
use super::{Backoff, CLOSE_GRACE, NotifyError, NotifySettings, NotifyStats};

/// How long [`Notifications::close`] waits past its grace for a task that overran it.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

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
        let routes = targets
            .iter()
            .map(|t| (t.kind(), t.events().clone()))
            .collect();
        let shared = Arc::new(Shared::new(routes, settings.queue.max(1), closing_tx));
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
            .map_or_else(NotifyStats::default, |shared| shared.stats())
    }

    /// Stops taking events and delivers what is queued for at most [`CLOSE_GRACE`] (retries
    /// included); what is left then is dropped, counted and logged.
    pub async fn close(&self) {
        self.close_within(CLOSE_GRACE).await;
    }

    /// As [`Notifications::close`], within `grace`.
    pub async fn close_within(&self, grace: Duration) {
        let Some(shared) = &self.shared else { return };
        shared.close(Instant::now() + grace);
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

#[cfg(test)]
mod tests {
    use super::super::testing::{Answer, Receiver, WAIT, event, quick, stats_until, webhook};
    use super::*;
    use crate::report::notifications::Counts;
    use shoal_shared::history::EventKind;

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
