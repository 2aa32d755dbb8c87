//! The one task that delivers notifications: it takes each delivery from the queue in order and
//! tries it until the target takes it or the backoff gives up; after `close`, until the queue is
//! empty or the close deadline passes.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::queue::{Job, Shared, Taken};
use super::webhook::Webhook;
use super::{Backoff, CommandTarget, DeliveryError, Events, TargetKind, command};

/// Where a delivery goes.
pub(super) enum Target {
    Webhook(Webhook),
    Command(CommandTarget),
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Webhook(_) => TargetKind::Webhook,
            Self::Command(_) => TargetKind::Command,
        }
    }

    pub fn events(&self) -> &Events {
        match self {
            Self::Webhook(webhook) => &webhook.target().events,
            Self::Command(command) => &command.events,
        }
    }

    /// The target as logs show it (no token of a webhook URL).
    fn shown(&self) -> String {
        match self {
            Self::Webhook(webhook) => webhook.target().shown(),
            Self::Command(command) => command.path.display().to_string(),
        }
    }

    async fn attempt(&self, job: &Job) -> Result<(), DeliveryError> {
        match self {
            Self::Webhook(webhook) => webhook.post(job).await,
            Self::Command(target) => command::run(target, job).await,
        }
    }
}

/// The close deadline passed before a delivery ended.
struct PastDeadline;

/// The delivering task.
pub(super) struct Delivery {
    shared: Arc<Shared>,
    targets: Vec<Target>,
    backoff: Backoff,
    closing_rx: watch::Receiver<Option<Instant>>,
}

impl Delivery {
    pub fn new(
        shared: Arc<Shared>,
        targets: Vec<Target>,
        backoff: Backoff,
        closing_rx: watch::Receiver<Option<Instant>>,
    ) -> Self {
        Self {
            shared,
            targets,
            backoff,
            closing_rx,
        }
    }

    pub async fn run(self) {
        loop {
            match self.shared.take() {
                Taken::Job(job) => {
                    if self.deliver(&job).await.is_err() {
                        self.shared.count_dropped(job.kind);
                        let left = 1 + self.shared.drain();
                        warn!(
                            notify.dropped = left,
                            "notifications still undelivered at shutdown were dropped"
                        );
                        return;
                    }
                }
                Taken::Empty => self.shared.wake.notified().await,
                Taken::Closed => return,
            }
        }
    }

    /// Tries `job` until its target takes it or the last attempt fails; counts the outcome.
    async fn deliver(&self, job: &Job) -> Result<(), PastDeadline> {
        let Some(target) = self.targets.get(job.target) else {
            return Ok(());
        };
        let mut attempt = 1;
        loop {
            let Some(tried) = self.before_deadline(target.attempt(job)).await else {
                return Err(PastDeadline);
            };
            let error = match tried {
                Ok(()) => {
                    debug!(
                        notify.target = target.kind().as_str(),
                        notify.to = %target.shown(),
                        notify.event = job.event.kind.as_str(),
                        notify.delivery = %job.id,
                        notify.attempt = attempt,
                        "notification delivered"
                    );
                    self.shared.count_delivered(job.kind);
                    return Ok(());
                }
                Err(error) => error,
            };
            let Some(wait) = self.backoff.after(attempt) else {
                warn!(
                    notify.target = target.kind().as_str(),
                    notify.to = %target.shown(),
                    notify.event = job.event.kind.as_str(),
                    group = %job.event.group,
                    deployment.id = %job.event.deployment,
                    notify.delivery = %job.id,
                    notify.attempts = attempt,
                    error = %error,
                    "notification dropped after its last attempt"
                );
                self.shared.count_failed(job.kind);
                return Ok(());
            };
            debug!(
                notify.target = target.kind().as_str(),
                notify.to = %target.shown(),
                notify.delivery = %job.id,
                notify.attempt = attempt,
                error = %error,
                retry_in = ?wait,
                "notification attempt failed"
            );
            if self
                .before_deadline(tokio::time::sleep(wait))
                .await
                .is_none()
            {
                return Err(PastDeadline);
            }
            attempt += 1;
        }
    }

    /// `work`'s output, or `None` if the close deadline passes first.
    async fn before_deadline<F: Future>(&self, work: F) -> Option<F::Output> {
        let mut closing_rx = self.closing_rx.clone();
        tokio::select! {
            biased;
            () = deadline(&mut closing_rx) => None,
            out = work => Some(out),
        }
    }
}

/// Ends when the close deadline has passed; never before `close` sets one.
async fn deadline(closing_rx: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let at = *closing_rx.borrow_and_update();
        if let Some(at) = at {
            tokio::time::sleep_until(at).await;
            return;
        }
        if closing_rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shoal_shared::history::EventKind;

    use super::super::testing::{Answer, Receiver, WAIT, event, quick, stats_until, webhook};
    use super::super::{Backoff, Counts, Notifications, NotifySettings, WebhookTarget};

    fn to(webhooks: Vec<WebhookTarget>) -> NotifySettings {
        NotifySettings {
            webhooks,
            ..NotifySettings::default()
        }
    }

    #[tokio::test]
    async fn a_failed_delivery_is_tried_again_under_one_delivery_id() {
        let failing = [Answer::Status(500), Answer::Status(500)];
        let mut receiver = Receiver::start(&failing, Answer::Status(200));
        let settings = to(vec![webhook(receiver.url("/hook"))]);
        let notifications = Notifications::start_with(&settings, quick(6)).expect("start");
        notifications.send(&event(EventKind::HostFailed, 1));
        let mut ids = Vec::new();
        for attempt in 1..=3 {
            let request = receiver.next(WAIT).await;
            let request = request.unwrap_or_else(|| panic!("attempt {attempt}"));
            assert_eq!(request.json()["event"], "host_failed");
            ids.push(request.header("x-shoal-delivery").map(str::to_owned));
        }
        assert!(
            ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
            "{ids:?}"
        );
        let stats = stats_until(
            || notifications.stats(),
            |s| s.webhook.delivered + s.webhook.failed > 0,
        )
        .await;
        assert_eq!(
            stats.webhook,
            Counts {
                delivered: 1,
                ..Counts::default()
            }
        );
        assert!(receiver.pending().is_none(), "no fourth attempt");
    }

    #[tokio::test]
    async fn a_webhook_that_never_answers_times_out_and_counts_failed_after_its_attempts() {
        let mut receiver = Receiver::start(&[], Answer::Silence);
        let timeout = Duration::from_millis(200);
        let settings = to(vec![WebhookTarget {
            timeout,
            ..webhook(receiver.url("/hook"))
        }]);
        let notifications = Notifications::start_with(&settings, quick(3)).expect("start");
        let started = tokio::time::Instant::now();
        notifications.send(&event(EventKind::Halted, 1));
        for attempt in 1..=3 {
            let request = receiver.next(WAIT).await;
            assert!(request.is_some(), "attempt {attempt}");
        }
        let stats = stats_until(|| notifications.stats(), |s| s.webhook.failed > 0).await;
        assert_eq!(
            stats.webhook,
            Counts {
                failed: 1,
                ..Counts::default()
            }
        );
        assert!(started.elapsed() >= timeout * 3, "each attempt waited");
        assert!(receiver.pending().is_none(), "three attempts only");
    }

    #[tokio::test]
    async fn close_delivers_what_it_can_then_drops_the_rest_at_its_deadline() {
        let mut answering = Receiver::start(&[], Answer::Status(200));
        let silent = Receiver::start(&[], Answer::Silence);
        let settings = to(vec![
            webhook(answering.url("/hook")),
            WebhookTarget {
                timeout: Duration::from_secs(30),
                ..webhook(silent.url("/hook"))
            },
        ]);
        let notifications =
            Notifications::start_with(&settings, Backoff::default()).expect("start");
        // Queued: 1 → answering, 1 → silent, 2 → answering, 2 → silent.
        notifications.send(&event(EventKind::Completed, 1));
        notifications.send(&event(EventKind::Completed, 2));
        let started = tokio::time::Instant::now();
        notifications.close_within(Duration::from_secs(2)).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "close kept its deadline"
        );
        let first = answering
            .next(WAIT)
            .await
            .expect("delivered before the silent one");
        assert_eq!(first.json()["deployment"], "d-1");
        let counts = Counts {
            delivered: 1,
            failed: 0,
            dropped: 3,
        };
        assert_eq!(notifications.stats().webhook, counts);
        notifications.send(&event(EventKind::Completed, 3));
        assert_eq!(
            notifications.stats().webhook,
            counts,
            "closed: nothing taken"
        );
        assert!(answering.pending().is_none());
    }
}
