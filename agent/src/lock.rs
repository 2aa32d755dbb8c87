//! One agent per data directory: `<data_dir>/agent.lock`, locked with flock(2) before the agent
//! reads or writes anything else there and held until the process ends, with the holder's pid
//! written in it. The kernel drops the lock however the process ends (even `kill -9`), so a
//! file left behind never blocks a start; hooks do not inherit it (the file is close-on-exec).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name in the data directory.
pub const FILE_NAME: &str = "agent.lock";

/// The data directory, held by this process until the value is dropped or the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Flock<File>,
}

/// Why the data directory cannot be held.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live agent holds it.
    #[error("{}", held(dir, *holder))]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder: Option<u32>,
    },
    /// The data directory cannot be made.
    #[error("cannot create the data directory {}: {source}", dir.display())]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The lock file cannot be opened, locked or written.
    #[error("cannot lock {}: {source}", path.display())]
    File {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl DataDirLock {
    /// Creates `dir` (0700) if missing and takes its lock without waiting; on success the lock
    /// file holds this process's pid.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| LockError::DataDir {
                dir: dir.to_owned(),
                source,
            })?;
        let path = dir.join(FILE_NAME);
        let failed = |source: io::Error| LockError::File {
            path: path.clone(),
            source,
        };
        // Not truncated on open: while another agent holds the lock, its pid must stay readable.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder: read_pid(&mut file),
                });
            }
            Err((_, errno)) => return Err(failed(errno.into())),
        };
        file.set_len(0).map_err(failed)?;
        file.seek(SeekFrom::Start(0)).map_err(failed)?;
        writeln!(file, "{}", std::process::id()).map_err(failed)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The one sentence for a data directory another agent holds: who, and what to do.
fn held(dir: &Path, holder: Option<u32>) -> String {
    let dir = dir.display();
    match holder {
        Some(pid) => format!(
            "another shoal agent (pid {pid}) is running on the data directory {dir}; stop it first (`systemctl stop shoal` or `kill {pid}`), or give this agent its own node.data_dir"
        ),
        None => format!(
            "another shoal agent is running on the data directory {dir} (its pid is not in {dir}/{FILE_NAME} yet); stop it first (`systemctl stop shoal`), or give this agent its own node.data_dir"
        ),
    }
}

/// The pid in a lock file, if it holds one.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).expect("first lock");
        let text = std::fs::read_to_string(data.join(FILE_NAME)).expect("lock file");
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock locks belong to the open file, so a second open in this process conflicts too.
        let err = DataDirLock::acquire(&data).expect_err("held");
        assert!(
            matches!(err, LockError::Held { holder: Some(pid), .. } if pid == std::process::id()),
            "{err:?}"
        );
        let said = err.to_string();
        assert!(said.contains(&data.display().to_string()), "{said}");
        assert!(
            said.contains(&format!("pid {}", std::process::id())),
            "{said}"
        );
        drop(first);
        DataDirLock::acquire(&data).expect("free again");
    }

    #[test]
    fn a_holder_that_wrote_no_pid_is_still_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = DataDirLock::acquire(dir.path()).expect("first lock");
        std::fs::write(dir.path().join(FILE_NAME), "").expect("empty it");
        let said = DataDirLock::acquire(dir.path())
            .expect_err("held")
            .to_string();
        assert!(said.contains("its pid is not in"), "{said}");
    }
}
