//! Watching local channels (a git repository on this host, a `file://` store) with `notify`,
//! so a new release is seen within a second instead of at the next poll.

use std::path::PathBuf;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watch; changes under its paths wake [`Watch::changed`].
pub struct Watch {
    // Dropping the watcher stops it.
    _watcher: RecommendedWatcher,
    changes_rx: mpsc::Receiver<()>,
}

impl Watch {
    /// Watches each of `paths` recursively. Paths that do not exist yet are an error: watch
    /// their parent instead.
    pub fn start(paths: &[PathBuf]) -> notify::Result<Self> {
        // One slot: any number of events between two looks is one change.
        let (changes_tx, changes_rx) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = event.is_err() || event.as_ref().is_ok_and(|e| !e.kind.is_access());
                if relevant {
                    let _ = changes_tx.try_send(());
                }
            })?;
        for path in paths {
            watcher.watch(path, RecursiveMode::Recursive)?;
        }
        Ok(Self {
            _watcher: watcher,
            changes_rx,
        })
    }

    /// Waits for the next change; returns false if the watcher stopped.
    pub async fn changed(&mut self) -> bool {
        self.changes_rx.recv().await.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_new_file_wakes_the_watch_and_quiet_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("refs/tags");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let mut watch = Watch::start(&[dir.path().to_path_buf()]).expect("watch");
        let quiet = tokio::time::timeout(Duration::from_millis(200), watch.changed()).await;
        assert!(quiet.is_err(), "nothing changed yet");
        std::fs::write(sub.join("v1.0.0"), "x").expect("write");
        let woke = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await;
        assert_eq!(woke, Ok(true));
    }
}
