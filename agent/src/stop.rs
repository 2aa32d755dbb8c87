//! Being told to stop: the agent's shutdown reaches a running deployment as a [`Stop`], which
//! ends it at the next event boundary and gives a running script a grace period to finish.

use std::time::Duration;

use tokio::sync::watch;

/// The stop side of a shutdown; cheap to clone.
#[derive(Debug, Clone)]
pub struct Stop {
    requested_rx: watch::Receiver<bool>,
    grace: Duration,
}

/// The side that asks for a stop.
#[derive(Debug)]
pub struct StopHandle {
    requested_tx: watch::Sender<bool>,
}

impl Stop {
    /// A stop and its handle; a running script gets `grace` after the request.
    pub fn new(grace: Duration) -> (Self, StopHandle) {
        let (requested_tx, requested_rx) = watch::channel(false);
        (
            Self {
                requested_rx,
                grace,
            },
            StopHandle { requested_tx },
        )
    }

    /// Whether a stop has been asked for.
    pub fn is_requested(&self) -> bool {
        *self.requested_rx.borrow()
    }

    /// How long a running script may go on once a stop is asked for.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Waits until a stop is asked for (forever if the handle is dropped without asking).
    pub async fn requested(&mut self) {
        if self.requested_rx.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl StopHandle {
    /// Asks every [`Stop`] of this handle to stop.
    pub fn request(&self) {
        self.requested_tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_wakes_every_clone() {
        let (stop, handle) = Stop::new(Duration::from_secs(1));
        let mut other = stop.clone();
        assert!(!stop.is_requested());
        let waiter = tokio::spawn(async move { other.requested().await });
        handle.request();
        waiter.await.expect("woken");
        assert!(stop.is_requested());
    }
}
