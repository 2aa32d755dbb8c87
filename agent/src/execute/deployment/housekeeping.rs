//! Keeping a group's deployment root in order: one deployment at a time (a lock file), and only
//! the newest few deployment directories on disk (CodeDeploy's `max_revisions`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Why a group's lock cannot be taken. The cause is part of the sentence.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The group's directory cannot be made.
    #[error("cannot create {}: {error}", dir.display())]
    Create {
        /// The group's directory.
        dir: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The lock file cannot be opened.
    #[error("cannot open {}: {error}", path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// Another deployment holds the lock.
    #[error(
        "another deployment of this group is running (it holds {}); wait for it to finish",
        path.display()
    )]
    Held {
        /// The lock file.
        path: PathBuf,
    },
}

/// Held while a deployment of a group runs; released on drop.
pub struct GroupLock {
    _lock: Flock<File>,
}

impl GroupLock {
    /// Takes `<root>/<group>/.lock`, or says that another deployment holds it.
    pub fn acquire(group_dir: &Path) -> Result<Self, LockError> {
        fs::create_dir_all(group_dir).map_err(|error| LockError::Create {
            dir: group_dir.to_owned(),
            error,
        })?;
        let path = group_dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| LockError::Open {
                path: path.clone(),
                error,
            })?;
        Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map(|lock| Self { _lock: lock })
            .map_err(|_| LockError::Held { path })
    }
}

/// Removes the oldest deployment directories of a group so that at most `keep` remain,
/// never one of `protect`. Returns the directories removed.
pub fn prune(group_dir: &Path, keep: usize, protect: &[&Path]) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(group_dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("d-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort();
    let mut left = dirs.len();
    let mut removed = Vec::new();
    for (_, dir) in dirs {
        if left <= keep.max(1) {
            break;
        }
        if protect.iter().any(|p| *p == dir) {
            continue;
        }
        fs::remove_dir_all(&dir)?;
        removed.push(dir);
        left -= 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn keeps_the_newest_and_the_protected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut dirs = Vec::new();
        for i in 0..6u64 {
            let dir = tmp.path().join(format!("d-{i}"));
            fs::create_dir(&dir).expect("mkdir");
            File::open(&dir)
                .and_then(|f| f.set_modified(base + Duration::from_secs(i)))
                .expect("mtime");
            dirs.push(dir);
        }
        fs::write(tmp.path().join(".lock"), "").expect("lock file is not a deployment");
        let removed = prune(tmp.path(), 3, &[&dirs[1]]).expect("prune");
        assert_eq!(
            removed,
            vec![dirs[0].clone(), dirs[2].clone(), dirs[3].clone()]
        );
        assert!(dirs[1].exists() && dirs[4].exists() && dirs[5].exists());
    }

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = GroupLock::acquire(tmp.path()).expect("first lock");
        let error = GroupLock::acquire(tmp.path())
            .err()
            .expect("second lock refused")
            .to_string();
        assert!(
            error.contains("another deployment of this group is running"),
            "{error}"
        );
        drop(first);
        GroupLock::acquire(tmp.path()).expect("free again");
    }
}
