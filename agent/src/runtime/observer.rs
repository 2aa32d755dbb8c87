//! Following a running deployment: the journal learns each step before it starts, and the
//! status board and metrics learn each event as it ends.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::execute::deployment::{DeploymentRecord, Observer};
use crate::report::board::summarize;
use crate::report::{Board, Metrics};

use super::journal::JournalFile;

/// The step before any event: unpacking and checking the bundle.
pub(super) const PREPARE: &str = "Prepare";
/// The step after the hooks: the health window.
pub(crate) const HEALTH_CHECK: &str = "HealthCheck";

/// The observer of one group's deployments.
pub(super) struct StepObserver {
    pub(super) group: String,
    pub(super) journal: Arc<Mutex<JournalFile>>,
    pub(super) board: Board,
    pub(super) metrics: Metrics,
}

impl fmt::Debug for StepObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepObserver")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Observer for StepObserver {
    fn before(
        &self,
        dir: &Path,
        record: &DeploymentRecord,
        event: Option<&str>,
    ) -> std::io::Result<()> {
        let step = event.unwrap_or(PREPARE);
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        journal
            .change(|j| {
                if let Some(in_flight) = j.in_flight.as_mut() {
                    in_flight.dir = Some(dir.to_owned());
                    step.clone_into(&mut in_flight.step);
                }
            })
            .map_err(std::io::Error::other)?;
        drop(journal);
        let summary = summarize(&dir_name(dir), record);
        self.board.update(&self.group, |g| {
            g.current_event = Some(step.to_owned());
            g.last_deployment = Some(summary);
        });
        Ok(())
    }

    fn after(&self, dir: &Path, record: &DeploymentRecord) {
        if let Some(event) = record.events.last() {
            let seconds = std::time::Duration::from_millis(event.duration_ms).as_secs_f64();
            self.metrics.event_took(&self.group, &event.name, seconds);
        }
        let summary = summarize(&dir_name(dir), record);
        self.board
            .update(&self.group, |g| g.last_deployment = Some(summary));
    }
}
