//! One group's journal and the pure [`GroupHost`] that decides every change to it, shared by the
//! group's loop, the observer of a running deployment and the status endpoint's controls.
//! Whatever changes the host, the journal is written before the lock is let go, so nothing it
//! decided is carried out before it is on disk.

use std::sync::{Arc, Mutex, PoisonError};

use shoal_shared::gossip::{GroupValues, Rollback};
use shoal_shared::rollout::plan::Wait;
use shoal_shared::rollout::{Command, GroupHost};
use tokio::sync::Notify;
use tracing::error;

use super::journal::{JournalError, JournalFile};
use crate::report::http::SteerError;
use crate::report::metrics::RolloutGauges;

/// A group's host and its journal file.
#[derive(Clone)]
pub struct Keeper {
    inner: Arc<Mutex<Kept>>,
    /// Wakes the group's loop after an operator's command.
    wake: Arc<Notify>,
    /// Rollback orders given on this host, for the group's loop to check and take.
    orders: Arc<Mutex<Vec<Rollback>>>,
}

struct Kept {
    file: JournalFile,
    host: GroupHost,
}

impl Keeper {
    /// Keeps `host`, whose journal lives in `file`.
    pub fn new(file: JournalFile, host: GroupHost) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Kept { file, host })),
            wake: Arc::new(Notify::new()),
            orders: Arc::default(),
        }
    }

    /// Changes the host with `change` and writes the journal if it changed. `Err` when the
    /// write failed: then nothing `change` returned may be carried out.
    pub fn change<R>(&self, change: impl FnOnce(&mut GroupHost) -> R) -> Result<R, JournalError> {
        let mut kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let result = change(&mut kept.host);
        if kept.host.take_changed() {
            kept.file.save(kept.host.journal())?;
        }
        Ok(result)
    }

    /// Like [`Keeper::change`], for changes that only record progress: a failed write is
    /// logged (the next one catches up).
    pub fn note(&self, change: impl FnOnce(&mut GroupHost)) {
        if let Err(e) = self.change(change) {
            error!(error = %e, "cannot write the journal");
        }
    }

    /// Reads the host.
    pub fn read<R>(&self, read: impl FnOnce(&GroupHost) -> R) -> R {
        let kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        read(&kept.host)
    }

    /// Hands the group's loop a rollback order given on this host, and wakes it.
    pub fn give_order(&self, order: Rollback) {
        self.orders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(order);
        self.wake.notify_one();
    }

    /// The rollback orders given on this host since the last call.
    pub fn take_orders(&self) -> Vec<Rollback> {
        std::mem::take(&mut *self.orders.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// What wakes the group's loop.
    pub fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}

impl Keeper {
    /// Records an operator's `command` on this host, durably, and wakes the group's loop,
    /// which publishes it. Returns the deployment it applies to.
    pub fn command(&self, command: Command) -> Result<String, SteerError> {
        let mut kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let before = kept.host.clone();
        let deployment = kept.host.command(command)?;
        if kept.host.take_changed()
            && let Err(e) = kept.file.save(kept.host.journal())
        {
            // Not recorded: not applied either.
            kept.host = before;
            return Err(SteerError::Journal(e.to_string()));
        }
        drop(kept);
        self.wake.notify_one();
        Ok(deployment)
    }

    /// What the group's planner publishes now.
    pub fn values(&self) -> GroupValues {
        self.read(|host| host.planner().values())
    }

    /// Where the group's rollout stands, for the metrics.
    pub fn rollout(&self) -> RolloutGauges {
        self.read(|host| {
            let planner = host.planner();
            // Standing still counts only where nobody is asked to act: not once complete,
            // halted (an alert of its own) or waiting for a promote (one too).
            RolloutGauges {
                promote_pending: matches!(planner.wait(), Wait::Promotion),
                last_progress_ms: planner.going().then(|| planner.advanced_at()),
                progress_deadline: planner.policy().map(|p| p.progress_deadline),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::testing::{host, release_v1 as release};

    fn keeper(dir: &std::path::Path) -> Keeper {
        Keeper::new(JournalFile::of(dir, "web"), host())
    }

    #[test]
    fn what_the_host_decides_is_on_disk_before_change_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keeper = keeper(dir.path());
        keeper.change(release).expect("written");
        let on_disk = JournalFile::of(dir.path(), "web").load().expect("load");
        assert_eq!(on_disk, keeper.read(|host| host.journal().clone()));
        assert_eq!(on_disk.in_flight.map(|r| r.revision).as_deref(), Some("v1"));
    }

    #[test]
    fn a_command_that_cannot_be_written_is_not_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keeper = keeper(dir.path());
        keeper.change(release).expect("written");
        // The journal's directory becomes a file: no write can succeed.
        std::fs::remove_dir_all(dir.path().join("journal")).expect("rm");
        std::fs::write(dir.path().join("journal"), "").expect("block");
        let refused = keeper.command(Command::Halt {
            reason: "bad build".into(),
            by: None,
        });
        assert!(
            matches!(refused, Err(SteerError::Journal(_))),
            "{refused:?}"
        );
        assert!(keeper.read(|host| host.planner().halted().is_none()));
        let nothing = keeper.command(Command::Resume { by: None });
        assert!(
            matches!(nothing, Err(SteerError::Refused(_))),
            "{nothing:?}"
        );
    }
}
