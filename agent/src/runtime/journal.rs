//! The journal: what a group on this host runs, its last known good revision, and the
//! deployment in flight with the step it is at. Kept in `<data_dir>/journal/<group>.json` and
//! written durably (temp file, fsync, rename, fsync of the directory) *before* each step
//! starts, so a restarted agent always knows what was cut short.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::execute::layout::write_durably;

/// The journal format; a newer agent reads older ones.
pub const FORMAT: u32 = 1;

/// A revision installed on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Version name (tag or store version).
    pub revision: String,
    /// Content digest (`git:<commit>` or `sha256:<hex>`).
    pub digest: String,
    /// The deployment directory it was installed from (its `deployment-archive` is the
    /// bundle a revert reinstalls).
    pub dir: PathBuf,
}

/// A deployment that has started and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// The deployment id (the same on every host of the group).
    pub deployment_id: String,
    /// The revision being installed.
    pub revision: String,
    /// Its digest.
    pub digest: String,
    /// The directory of its files (release cache tree, or the archive of the revision reverted to).
    pub bundle: PathBuf,
    /// The deployment this one reverts, when it is a revert.
    pub reverts: Option<String>,
    /// Whether a failure of this deployment reverts to the last known good revision.
    pub auto_revert: bool,
    /// The deployment directory, once created.
    pub dir: Option<PathBuf>,
    /// The step about to run or running: `Prepare`, a lifecycle event, or `HealthCheck`.
    pub step: String,
    /// When the deployment started (ms since the epoch).
    pub started_ms: u64,
    /// How many times this revert has been tried (a revert cut short is tried again, a few times).
    #[serde(default)]
    pub attempt: u32,
}

/// One group's journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: u32,
    /// What is installed now (it may have failed: see `last_known_good`).
    pub current: Option<Installed>,
    /// The newest revision that completed here and passed its health checks.
    pub last_known_good: Option<Installed>,
    /// The deployment cut short or running.
    pub in_flight: Option<InFlight>,
    /// The newest revision a deployment was started for (so a release verified just before a
    /// crash is still deployed after it).
    pub last_target: Option<String>,
    /// The last known good revision before `last_known_good`: where a host goes back when the
    /// group halts a rollout this host had completed.
    #[serde(default)]
    pub previous: Option<Installed>,
    /// The rollout planner's memory (its step, the halts it knows, the members it remembers).
    #[serde(default)]
    pub plan: Option<shoal_shared::rollout::Memory>,
}

/// The journal file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("cannot {action} the journal {}", path.display())]
    Io {
        /// read or write.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a journal; never reset silently, since it holds what is installed.
    #[error("{} is not a shoal journal ({reason}); move it aside to start this group afresh", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// A journal bound to its file.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    /// The contents.
    pub journal: Journal,
}

impl JournalFile {
    /// The journal file of `group`.
    pub fn path_for(data_dir: &Path, group: &str) -> PathBuf {
        data_dir.join("journal").join(format!("{group}.json"))
    }

    /// Reads the journal at `path`; a missing file is an empty journal.
    pub fn load(path: &Path) -> Result<Self, JournalError> {
        let journal = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Journal {
                format: FORMAT,
                ..Journal::default()
            },
            Err(source) => {
                return Err(JournalError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            journal,
        })
    }

    /// Writes the journal durably.
    pub fn save(&self) -> Result<(), JournalError> {
        let bytes = serde_json::to_vec_pretty(&self.journal).map_err(|e| JournalError::Io {
            action: "encode",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_durably(&self.path, &bytes).map_err(|source| JournalError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })
    }

    /// Changes the journal and writes it.
    pub fn change(&mut self, change: impl FnOnce(&mut Journal)) -> Result<(), JournalError> {
        change(&mut self.journal);
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_journal_reads_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = JournalFile::path_for(dir.path(), "web");
        let mut file = JournalFile::load(&path).expect("empty");
        assert_eq!(file.journal.current, None);
        file.change(|j| {
            j.in_flight = Some(InFlight {
                deployment_id: "d-0123456789ab".into(),
                revision: "v1.0.0".into(),
                digest: "git:abc".into(),
                bundle: "/cache/tree".into(),
                reverts: None,
                auto_revert: true,
                dir: None,
                step: "BeforeInstall".into(),
                started_ms: 1,
                attempt: 0,
            });
        })
        .expect("save");
        let again = JournalFile::load(&path).expect("load");
        assert_eq!(again.journal, file.journal);
    }

    #[test]
    fn a_corrupt_journal_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = JournalFile::path_for(dir.path(), "web");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "{ half").expect("write");
        let err = JournalFile::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("move it aside"), "{err}");
    }
}
