//! The journal file: one group's [`Journal`] in `<data_dir>/journal/<group>.json`, written
//! durably (temp file, fsync, rename, fsync of the directory) before anything decided in it is
//! carried out, so a restarted agent always knows what was cut short. What goes into it is
//! decided by the pure [`shoal_shared::rollout::GroupHost`].

use std::path::{Path, PathBuf};

pub use shoal_shared::rollout::journal::{FORMAT, InFlight, Installed, Journal};

use crate::execute::layout::write_durably;

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

/// Where a group's journal lives.
#[derive(Debug, Clone)]
pub struct JournalFile {
    path: PathBuf,
}

impl JournalFile {
    /// The journal file of `group`.
    pub fn of(data_dir: &Path, group: &str) -> Self {
        Self {
            path: data_dir.join("journal").join(format!("{group}.json")),
        }
    }

    /// Reads the journal; a missing file is an empty journal.
    pub fn load(&self) -> Result<Journal, JournalError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::empty()),
            Err(source) => Err(JournalError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Writes `journal` durably.
    pub fn save(&self, journal: &Journal) -> Result<(), JournalError> {
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| JournalError::Io {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_journal_reads_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = JournalFile::of(dir.path(), "web");
        let mut journal = file.load().expect("empty");
        assert_eq!(journal, Journal::empty());
        journal.in_flight = Some(InFlight {
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
            stopped: false,
        });
        file.save(&journal).expect("save");
        assert_eq!(file.load().expect("load"), journal);
    }

    #[test]
    fn a_corrupt_journal_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = JournalFile::of(dir.path(), "web");
        std::fs::create_dir_all(dir.path().join("journal")).expect("mkdir");
        std::fs::write(dir.path().join("journal/web.json"), "{ half").expect("write");
        let err = file.load().expect_err("corrupt");
        assert!(err.to_string().contains("move it aside"), "{err}");
    }
}
