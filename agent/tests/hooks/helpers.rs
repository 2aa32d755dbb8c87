//! A throwaway deployment to run scripts in, and ways to watch processes die.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use shoal_agent::execute::hooks::{self, HookError, ScriptOutcome, ScriptResult, ScriptRun};
use shoal_agent::execute::scripts_log::ScriptsLog;
use shoal_shared::appspec::Script;
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

pub const EVENT: &str = "AfterInstall";

/// A deployment directory with an archive to put scripts in and its scripts.log.
pub struct Deployment {
    pub dir: TempDir,
    pub archive: PathBuf,
    pub log: ScriptsLog,
}

impl Deployment {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("deployment-archive");
        fs::create_dir_all(archive.join("scripts")).expect("archive dir");
        let log = ScriptsLog::open(dir.path().join("logs/scripts.log")).expect("scripts.log");
        Self { dir, archive, log }
    }

    /// A file for the scripts to leave pids and marks in.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an executable script at `location` and returns its AppSpec entry.
    pub fn script(&self, location: &str, body: &str) -> Script {
        let path = self.archive.join(location);
        fs::write(&path, body).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        Script {
            location: location.to_string(),
            timeout: Duration::from_secs(30),
            runas: None,
            sudo: false,
        }
    }

    pub fn run<'a>(&'a self, script: &'a Script, env: &'a [(String, String)]) -> ScriptRun<'a> {
        let mut run = ScriptRun::new(EVENT, script, &self.archive, env, &self.log);
        run.kill_grace = Duration::from_secs(5);
        run.output_grace = Duration::from_millis(500);
        run
    }

    /// Every log line with its timestamp cut off.
    pub fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(self.log.path())
            .expect("read scripts.log")
            .lines()
            .map(|line| line.split_once(' ').expect("timestamp").1.to_string())
            .collect()
    }

    /// The texts logged for `location` on `stream`, in order.
    pub fn texts(&self, location: &str, stream: &str) -> Vec<String> {
        let tags = format!("[{EVENT}] [{location}] [{stream}] ");
        self.log_lines()
            .iter()
            .filter_map(|line| line.strip_prefix(&tags).map(str::to_string))
            .collect()
    }
}

pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

pub fn read_pid(path: &Path) -> Pid {
    let text = fs::read_to_string(path).expect("pid file written by the script");
    Pid::from_raw(text.trim().parse().expect("a pid"))
}

/// Alive means present and not a zombie (an orphan's new parent may not reap it at once).
pub fn is_alive(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')))
}

/// Polls until `pid` is gone; false if it is still alive after `within`.
pub async fn gone_within(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Runs the script, failing the test instead of hanging it.
pub async fn run_to_end(run: ScriptRun<'_>) -> Result<ScriptOutcome, HookError> {
    tokio::time::timeout(Duration::from_secs(60), hooks::run_script(run))
        .await
        .expect("run_script returned within 60 s")
}

pub fn assert_succeeded(outcome: &ScriptOutcome) {
    assert_eq!(outcome.result, ScriptResult::Succeeded, "{outcome:?}");
}
