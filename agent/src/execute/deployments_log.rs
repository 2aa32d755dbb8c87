//! `<root>/deployment-logs/codedeploy-agent-deployments.log`: every deployment's hook output
//! on the host in one file, as the CodeDeploy agent writes it, for runbooks that `tail -f` it.
//!
//! Each line is `[<YYYY-MM-DD HH:MM:SS.mmm>] [<deployment id>]<message>`, the messages the
//! agent writes: `LifecycleEvent - <event>` when an event's first script starts,
//! `Script - <location>` as each starts, then `[stdout]<line>` and `[stderr]<line>` (times in
//! UTC; the agent writes local time). It rotates as the agent's does: past 64 MiB the file
//! becomes `.0`, `.0` becomes `.1`, and so on, keeping 8 files in all (512 MiB at most).
//! Private to root like `scripts.log` (0600 in a 0700 directory): hook output may hold secrets.
//!
//! One handle per file in a process (the groups of an agent share it); a `shoal deploy` run
//! beside the agent appends to the same file, and rotation takes an `flock` on it so that only
//! one of them rotates, and the other reopens the new file.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use nix::fcntl::{Flock, FlockArg};

/// The directory under the deployment root.
pub const DIR: &str = "deployment-logs";
/// The file's name (the agent's program name is `codedeploy-agent`).
pub const FILE: &str = "codedeploy-agent-deployments.log";
/// The size past which it rotates.
pub const ROTATE_BYTES: u64 = 64 * 1024 * 1024;
/// Files kept in all: the live one and `.0` to `.6`.
pub const FILES: usize = 8;

/// The deployments log of one deployment root.
#[derive(Debug)]
pub struct DeploymentsLog {
    path: PathBuf,
    rotate_bytes: u64,
    file: Mutex<Option<Open>>,
}

/// The file being appended to.
#[derive(Debug)]
struct Open {
    file: File,
    /// Its size as last read, plus what this process wrote since.
    size: u64,
    /// When it was last checked against the path (another process may have rotated it).
    checked: Instant,
}

/// How often a file being written is checked against the path.
const RECHECK: Duration = Duration::from_secs(1);

impl DeploymentsLog {
    /// The log of the deployment root `root`, shared by every deployment of this process.
    pub fn of_root(root: &Path) -> Arc<Self> {
        Self::with_rotation(root, ROTATE_BYTES)
    }

    /// The same, rotating past `rotate_bytes` (tests use a small size).
    pub fn with_rotation(root: &Path, rotate_bytes: u64) -> Arc<Self> {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<DeploymentsLog>>>> = OnceLock::new();
        let path = root.join(DIR).join(FILE);
        let mut open = OPEN
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.entry(path.clone())
            .or_insert_with(|| {
                Arc::new(Self {
                    path,
                    rotate_bytes,
                    file: Mutex::new(None),
                })
            })
            .clone()
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per `messages` entry for `deployment_id`, in one write.
    pub fn append<S: AsRef<str>>(&self, deployment_id: &str, messages: &[S]) -> io::Result<()> {
        let stamp = now();
        let mut lines = String::new();
        for message in messages {
            lines.push_str(&format!(
                "[{stamp}] [{deployment_id}]{}\n",
                message.as_ref().trim()
            ));
        }
        let len = lines.len() as u64;
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current = match file.take() {
            Some(open) if open.checked.elapsed() < RECHECK => open,
            Some(open) if !self.replaced(&open.file) => self.reread(open.file)?,
            _ => self.open()?,
        };
        if current.size + len > self.rotate_bytes {
            // Another process may have written too: the file says how full it is.
            current = self.reread(current.file)?;
            if current.size + len > self.rotate_bytes {
                current = self.rotate(current.file)?;
            }
        }
        let written = (&current.file).write_all(lines.as_bytes());
        if written.is_ok() {
            current.size += len;
        }
        *file = Some(current);
        written
    }

    fn reread(&self, file: File) -> io::Result<Open> {
        Ok(Open {
            size: file.metadata()?.len(),
            file,
            checked: Instant::now(),
        })
    }

    /// Whether the file at the path is no longer the one `open` writes (another process
    /// rotated it).
    fn replaced(&self, open: &File) -> bool {
        match (fs::metadata(&self.path), open.metadata()) {
            (Ok(now), Ok(ours)) => now.ino() != ours.ino() || now.dev() != ours.dev(),
            _ => true,
        }
    }

    fn open(&self) -> io::Result<Open> {
        self.reread(open_private(&self.path)?)
    }

    /// Moves the full file aside (`.0`, the older ones up by one, the oldest dropped) and
    /// returns the new one; under an exclusive `flock` of the full file, and only if no other
    /// process rotated it meanwhile.
    fn rotate(&self, full: File) -> io::Result<Open> {
        let locked =
            Flock::lock(full, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        if !self.replaced(&locked) && locked.metadata()?.len() > 0 {
            let aside = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
            for n in (0..FILES - 2).rev() {
                match fs::rename(aside(n), aside(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            fs::rename(&self.path, aside(0))?;
        }
        drop(locked);
        self.open()
    }
}

/// Opens (or creates, with its parent directories) a log of hook output at `path` for
/// appending: 0600 in a 0700 directory, whatever the modes above it or the umask, and closed
/// up again if an older agent left it open.
pub(crate) fn open_private(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        fs::set_permissions(parent, Permissions::from_mode(0o700))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// The agent's stamp: `YYYY-MM-DD HH:MM:SS.mmm`, here in UTC.
fn now() -> String {
    let ms = crate::clock::now_ms();
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let utc = shoal_shared::time::format_utc(secs, u32::try_from(ms % 1000).unwrap_or(0));
    // `2026-12-07T05:41:39.123Z` → `2026-12-07 05:41:39.123`.
    utc.trim_end_matches('Z').replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lines_carry_time_and_deployment_id_as_the_agent_writes_them() {
        let root = tempfile::tempdir().expect("tempdir");
        let log = DeploymentsLog::of_root(root.path());
        log.append("d-1", &["LifecycleEvent - AfterInstall", "Script - a.sh"])
            .expect("append");
        log.append("d-1", &["[stdout]hello  "]).expect("append");
        let got = lines(&root.path().join(DIR).join(FILE));
        assert_eq!(got.len(), 3, "{got:?}");
        let (stamp, rest) = got[2].split_once("] ").expect("stamp");
        assert_eq!(rest, "[d-1][stdout]hello");
        // `[2026-12-07 05:41:39.123`
        assert_eq!(stamp.len(), 24, "{stamp}");
        assert_eq!(&stamp[11..12], " ");
        assert!(got[0].ends_with("] [d-1]LifecycleEvent - AfterInstall"));
        let mode = fs::metadata(log.path()).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn it_rotates_keeping_eight_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let log = DeploymentsLog::with_rotation(root.path(), 200);
        for n in 0..100 {
            log.append("d-2", &[&format!("[stdout]line {n:03}")])
                .expect("append");
        }
        let dir = root.path().join(DIR);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let expected: Vec<String> = std::iter::once(FILE.to_owned())
            .chain((0..FILES - 1).map(|n| format!("{FILE}.{n}")))
            .collect();
        assert_eq!(names, expected);
        for name in &names {
            let size = fs::metadata(dir.join(name)).expect("stat").len();
            assert!(size <= 200, "{name}: {size} bytes");
        }
        let newest = lines(&dir.join(FILE));
        assert!(
            newest.last().expect("a line").ends_with("line 099"),
            "{newest:?}"
        );
        let older = lines(&dir.join(format!("{FILE}.0")));
        let number = |line: &str| -> u32 { line[line.len() - 3..].parse().expect("a number") };
        let last_aside = number(older.last().expect("a line"));
        let first_live = number(&newest[0]);
        assert_eq!(last_aside + 1, first_live, "nothing lost between the files");
    }

    #[test]
    fn a_rotation_by_another_process_is_followed() {
        let root = tempfile::tempdir().expect("tempdir");
        let log = DeploymentsLog::of_root(root.path());
        log.append("d-3", &["[stdout]before"]).expect("append");
        // Another process moved the file aside; this one follows within a second.
        let aside = PathBuf::from(format!("{}.0", log.path().display()));
        fs::rename(log.path(), &aside).expect("rename");
        let deadline = Instant::now() + 10 * RECHECK;
        let mut n = 0;
        while !log.path().exists() {
            assert!(
                Instant::now() < deadline,
                "still writing to the file moved aside"
            );
            log.append("d-3", &[&format!("[stdout]after {n}")])
                .expect("append");
            n += 1;
        }
        let all: Vec<String> = lines(&aside).into_iter().chain(lines(log.path())).collect();
        assert_eq!(all.len(), n + 1, "nothing lost: {all:?}");
        assert!(
            all[n].ends_with(&format!("[stdout]after {}", n - 1)),
            "{all:?}"
        );
    }
}
