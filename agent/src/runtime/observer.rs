//! Following a running deployment: the journal learns each step before it starts, and the
//! status board and metrics learn each event as it ends.

use std::fmt;
use std::path::Path;

use shoal_shared::rollout::journal::PREPARE;

use super::keeper::Keeper;
use crate::execute::deployment::{DeploymentRecord, Observer};
use crate::report::board::{at_event, summarize};
use crate::report::{Board, Metrics};

/// The last path component of a deployment directory: the deployment's id in status.
pub(super) fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The observer of one group's deployments.
pub(super) struct StepObserver {
    pub(super) group: String,
    pub(super) keeper: Keeper,
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

impl Observer for StepObserver {
    fn before(
        &self,
        dir: &Path,
        record: &DeploymentRecord,
        event: Option<&str>,
    ) -> std::io::Result<()> {
        let step = event.unwrap_or(PREPARE);
        // The step reaches the journal before it starts: a restart knows where it was cut.
        self.keeper
            .change(|host| host.at_step(Some(dir), step))
            .map_err(std::io::Error::other)?;
        let summary = summarize(&dir_name(dir), record);
        self.board.update(&self.group, |g| {
            at_event(g, Some(step));
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
