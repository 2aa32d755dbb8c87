//! Running one hook script: find it in the deployment archive, start it in its own process
//! group (as its `runas` user), log its output, and hold the whole group to the timeout.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::unistd::Pid;
use shoal_shared::appspec::Script;
use tokio::time::Instant;
use tracing::{info, warn};

use super::scripts_log::{self, ScriptsLog};
use crate::bundle::{self, Outside};
use crate::stop::Stop;

mod launch;
mod process;
mod view;

use launch::*;
use process::*;

/// How long a timed-out script's process group gets between `SIGTERM` and `SIGKILL`.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
/// How long output is still read after the script exits.
pub const DEFAULT_OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after a timed-out or stopped script's group was killed: what
/// it wrote is already in the pipe, and a process outside the group that holds the pipe must
/// not hold up the record of a script already over its time.
const KILLED_OUTPUT_GRACE: Duration = Duration::from_millis(100);
/// `PATH` of a script run as another user, like a login shell's.
pub const RUNAS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The variables of the agent's environment a runas script gets unless `hooks.runas_env`
/// says otherwise: the locale and the time zone. Not proxies, whose URLs may hold passwords.
pub const DEFAULT_RUNAS_ENV: [&str; 3] = ["LANG", "LC_ALL", "TZ"];
/// How often a dying process group is checked.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// SIGTERM → SIGKILL grace for a script stopped at shutdown, at most.
const STOP_KILL_GRACE: Duration = Duration::from_secs(5);
/// How often a spawn is retried while the script file is briefly busy (`ETXTBSY`).
const BUSY_RETRIES: u32 = 10;

/// Everything needed to run one script of one lifecycle event.
#[derive(Debug, Clone, Copy)]
pub struct ScriptRun<'a> {
    /// The lifecycle event, e.g. `AfterInstall`.
    pub event: &'a str,
    /// The script entry from the AppSpec.
    pub script: &'a Script,
    /// `<root>/<group-id>/<deployment-id>/deployment-archive`.
    pub archive_dir: &'a Path,
    /// The deployment's variables (`LIFECYCLE_EVENT` etc., set by the caller): on top of the
    /// agent's environment, or of a runas script's clean one.
    pub env: &'a [(String, String)],
    /// The names of the agent's variables a runas script also gets (`hooks.runas_env`).
    pub runas_env: &'a [String],
    /// The deployment's `scripts.log`.
    pub log: &'a ScriptsLog,
    /// Grace between `SIGTERM` and `SIGKILL` of a timed-out script's process group.
    pub kill_grace: Duration,
    /// How long to keep reading output after the script exits.
    pub output_grace: Duration,
    /// The agent's shutdown: the script gets the stop's grace, then its group is killed.
    pub stop: Option<&'a Stop>,
}

impl<'a> ScriptRun<'a> {
    /// A run with the default graces; a runas script gets none of the agent's variables.
    pub fn new(
        event: &'a str,
        script: &'a Script,
        archive_dir: &'a Path,
        env: &'a [(String, String)],
        log: &'a ScriptsLog,
    ) -> Self {
        Self {
            event,
            script,
            archive_dir,
            env,
            runas_env: &[],
            log,
            kill_grace: DEFAULT_KILL_GRACE,
            output_grace: DEFAULT_OUTPUT_GRACE,
            stop: None,
        }
    }
}

/// What happened to a script that was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutcome {
    /// How it ended.
    pub result: ScriptResult,
    /// From spawn until its output was read (or given up on).
    pub duration: Duration,
    /// Things the user should fix that did not fail the script.
    pub warnings: Vec<String>,
    /// A background process still held stdout or stderr when the output grace ran out.
    pub output_left_open: bool,
}

/// How a started script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptResult {
    /// Exit code 0.
    Succeeded,
    /// A non-zero exit code, or death by a signal.
    Failed {
        /// The exit code, when the script exited.
        exit_code: Option<i32>,
        /// The signal that killed it, when it did not exit.
        signal: Option<i32>,
    },
    /// It overran its timeout and its process group was stopped.
    TimedOut {
        /// The timeout it overran.
        after: Duration,
    },
    /// The agent was shutting down and the script outlived the grace; its group was killed.
    Stopped {
        /// The grace it was given.
        grace: Duration,
    },
}

impl ScriptResult {
    /// The CodeDeploy error code of this result.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Succeeded => ErrorCode::Succeeded,
            Self::Failed { .. } => ErrorCode::ScriptFailed,
            Self::TimedOut { .. } => ErrorCode::ScriptTimedOut,
            Self::Stopped { .. } => ErrorCode::UnknownError,
        }
    }
}

/// The error codes CodeDeploy reports for a script, with the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Succeeded = 0,
    ScriptMissing = 1,
    ScriptNotExecutable = 2,
    ScriptTimedOut = 3,
    ScriptFailed = 4,
    UnknownError = 5,
    /// A warning in shoal: the script's own result stands.
    OutputsLeftOpen = 6,
}

impl ErrorCode {
    /// The number CodeDeploy uses.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name CodeDeploy uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::ScriptMissing => "ScriptMissing",
            Self::ScriptNotExecutable => "ScriptNotExecutable",
            Self::ScriptTimedOut => "ScriptTimedOut",
            Self::ScriptFailed => "ScriptFailed",
            Self::UnknownError => "UnknownError",
            Self::OutputsLeftOpen => "OutputsLeftOpen",
        }
    }
}

/// Why a script could not be run (or its run not recorded).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("script location {location:?} points outside the bundle: remove the `..` parts")]
    LocationEscapes { location: String },
    #[error(
        "script {location} is not in the bundle (looked for {}): check `location` is relative to the bundle root",
        path.display()
    )]
    ScriptMissing { location: String, path: PathBuf },
    #[error("script location {location:?} does not stay inside the bundle: {why}")]
    LinkOutside { location: String, why: Outside },
    #[error("script {} is not executable and its execute bits could not be set", path.display())]
    ScriptNotExecutable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run script {} as user {user}: {reason}", path.display())]
    RunAs {
        user: String,
        path: PathBuf,
        reason: &'static str,
        #[source]
        source: Option<io::Error>,
    },
    #[error("could not start script {}: {reason}", path.display())]
    Spawn {
        path: PathBuf,
        reason: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("lost track of script {}", path.display())]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not write the scripts log {}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HookError {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LocationEscapes { .. } | Self::LinkOutside { .. } => "location_escapes",
            Self::ScriptMissing { .. } => "script_missing",
            Self::ScriptNotExecutable { .. } => "script_not_executable",
            Self::RunAs { .. } => "run_as",
            Self::Spawn { .. } => "spawn",
            Self::Wait { .. } => "wait",
            Self::Log { .. } => "log",
        }
    }

    /// The CodeDeploy error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ScriptMissing { .. } => ErrorCode::ScriptMissing,
            Self::ScriptNotExecutable { .. } => ErrorCode::ScriptNotExecutable,
            _ => ErrorCode::UnknownError,
        }
    }
}

/// Runs one script to its end: exit, or timeout and the death of its process group.
pub async fn run_script(run: ScriptRun<'_>) -> Result<ScriptOutcome, HookError> {
    let location = run.script.location.as_str();
    let record = Recorder {
        log: run.log,
        event: run.event,
        location,
        error: Mutex::new(None),
    };
    let not_started = |error: &HookError| {
        let cause = std::error::Error::source(error)
            .map(|source| format!(" ({source})"))
            .unwrap_or_default();
        record.shoal(&format!("script not started: {error}{cause}"));
    };
    let (path, launch) = prepare(&run, &record).await.inspect_err(not_started)?;
    let build =
        |through_shell| build_command(&path, &launch, run.env, run.runas_env, through_shell);
    run.log.script_started(run.event, location);
    record.shoal(&format!("script started: {}{}", path.display(), launch));
    record.check()?;

    let started = Instant::now();
    let (mut child, through_shell) = spawn(build, &path, &launch)
        .await
        .inspect_err(not_started)?;
    if through_shell {
        record.shoal(&format!(
            "the script has no #! line: it runs with {}, as execvp(3) runs such scripts",
            launch::SHELL
        ));
    }
    let (Some(pgid), Some(stdout), Some(stderr)) = (
        child.id().and_then(|id| i32::try_from(id).ok()),
        child.stdout.take(),
        child.stderr.take(),
    ) else {
        let source = io::Error::other("the spawned script has no pid or pipes");
        return Err(HookError::Wait { path, source });
    };
    let pgid = Pid::from_raw(pgid);
    let mut group = GroupGuard(Some(pgid));
    info!(hook.event = %run.event, script = %location, pid = pgid.as_raw(), "script started");

    let mut output = Output {
        lines_rx: scripts_log::capture(stdout, stderr),
        open: true,
    };
    let deadline = started + run.script.timeout;
    let waited = output
        .log_while(&record, wait(&mut child, deadline, run.stop))
        .await;
    let (status, ended) = match waited {
        Waited::Exited(status) => (status, None),
        Waited::TimedOut => {
            let after = run.script.timeout;
            warn!(hook.event = %run.event, script = %location, ?after, "script timed out");
            record.shoal(&format!(
                "script timed out after {after:?}; sending SIGTERM to its process group"
            ));
            let stopping = stop_group(&mut child, pgid, run.kill_grace, &record);
            let status = output.log_while(&record, stopping).await;
            (status, Some(ScriptResult::TimedOut { after }))
        }
        Waited::Stopped(grace) => {
            warn!(hook.event = %run.event, script = %location, ?grace, "script outlived the shutdown grace");
            record.shoal(&format!(
                "the agent is shutting down and the script was still running {grace:?} later; sending SIGTERM to its process group"
            ));
            let stopping = stop_group(
                &mut child,
                pgid,
                run.kill_grace.min(STOP_KILL_GRACE),
                &record,
            );
            let status = output.log_while(&record, stopping).await;
            (status, Some(ScriptResult::Stopped { grace }))
        }
    };
    let status = status.map_err(|source| HookError::Wait {
        path: path.clone(),
        source,
    })?;
    group.disarm();

    let output_grace = match ended {
        Some(_) => run.output_grace.min(KILLED_OUTPUT_GRACE),
        None => run.output_grace,
    };
    let output_left_open = !output.drain(&record, output_grace).await;
    record.shoal(&format!("script {}", describe(status)));
    let mut warnings = Vec::new();
    if output_left_open {
        let warning = format!(
            "a background process still held the script's stdout or stderr {output_grace:?} \
             after it exited; its later output is not logged. Start daemons with \
             `cmd > /dev/null 2>&1 &`"
        );
        warn!(hook.event = %run.event, script = %location, "script output left open");
        record.shoal(&warning);
        warnings.push(warning);
    }
    let result = match (ended, status.code()) {
        (Some(ended), _) => ended,
        (None, Some(0)) => ScriptResult::Succeeded,
        (None, exit_code) => ScriptResult::Failed {
            exit_code,
            signal: status.signal(),
        },
    };
    info!(
        hook.event = %run.event,
        script = %location,
        hook.exit_code = ?status.code(),
        result = result.code().as_str(),
        "script finished"
    );
    record.check()?;
    Ok(ScriptOutcome {
        result,
        duration: started.elapsed(),
        warnings,
        output_left_open,
    })
}

/// Finds the script, makes it executable and decides who runs it.
async fn prepare(
    run: &ScriptRun<'_>,
    record: &Recorder<'_>,
) -> Result<(PathBuf, Launch), HookError> {
    let location = run.script.location.as_str();
    let path = script_path(run.archive_dir, location)?;
    let mode = match fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => metadata.permissions().mode(),
        _ => {
            let location = location.to_string();
            return Err(HookError::ScriptMissing { location, path });
        }
    };
    if mode & 0o111 == 0 {
        if let Err(source) = fs::set_permissions(&path, Permissions::from_mode(mode | 0o111)) {
            return Err(HookError::ScriptNotExecutable { path, source });
        }
        info!(script = %location, "script made executable");
        record.shoal("script was not executable: added its execute bits (chmod +x)");
    }
    let mut launch = Launch::plan(run.script, &path).await?;
    if let Launch::User(user) = &mut launch {
        let archive = user
            .reach(run.archive_dir)
            .map_err(|source| HookError::RunAs {
                user: user.name.clone(),
                path: path.clone(),
                reason: "its view of the bundle could not be prepared",
                source: Some(source),
            })?;
        return Ok((script_path(&archive, location)?, launch));
    }
    Ok((path, launch))
}

/// The script's path inside the archive; a leading `/` still means the bundle root. Links of
/// the bundle are followed only while they stay inside it.
pub fn script_path(archive_dir: &Path, location: &str) -> Result<PathBuf, HookError> {
    bundle::inside(archive_dir, Path::new(location), true).map_err(|why| match why {
        Outside::Climbs => HookError::LocationEscapes {
            location: location.to_owned(),
        },
        why => HookError::LinkOutside {
            location: location.to_owned(),
            why,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::process::ExitStatus;

    use super::*;

    #[test]
    fn locations_resolve_inside_the_archive() {
        let archive = Path::new("/d/deployment-archive");
        let resolve = |location| script_path(archive, location).expect("inside");
        assert_eq!(resolve("scripts/a.sh"), archive.join("scripts/a.sh"));
        assert_eq!(resolve("/scripts/a.sh"), archive.join("scripts/a.sh"));
        assert_eq!(resolve("./scripts/../b.sh"), archive.join("b.sh"));
    }

    #[test]
    fn locations_that_climb_out_are_refused() {
        let archive = Path::new("/d/deployment-archive");
        for location in ["../x.sh", "/../x.sh", "a/../../x.sh", ".."] {
            let error = script_path(archive, location).expect_err(location);
            assert_eq!(error.kind(), "location_escapes");
            assert!(error.to_string().contains(location), "{error}");
        }
    }

    #[test]
    fn codes_match_codedeploy() {
        let codes = [
            ErrorCode::Succeeded,
            ErrorCode::ScriptMissing,
            ErrorCode::ScriptNotExecutable,
            ErrorCode::ScriptTimedOut,
            ErrorCode::ScriptFailed,
            ErrorCode::UnknownError,
            ErrorCode::OutputsLeftOpen,
        ];
        for (number, code) in codes.into_iter().enumerate() {
            assert_eq!(usize::from(code.code()), number, "{}", code.as_str());
        }
        assert_eq!(ScriptResult::Succeeded.code(), ErrorCode::Succeeded);
        let failed = ScriptResult::Failed {
            exit_code: Some(1),
            signal: None,
        };
        assert_eq!(failed.code(), ErrorCode::ScriptFailed);
        let timed_out = ScriptResult::TimedOut {
            after: Duration::from_secs(1),
        };
        assert_eq!(timed_out.code(), ErrorCode::ScriptTimedOut);
    }

    #[test]
    fn errors_map_to_codes_and_kinds() {
        let missing = HookError::ScriptMissing {
            location: "a.sh".into(),
            path: "/d/a.sh".into(),
        };
        assert_eq!(missing.code(), ErrorCode::ScriptMissing);
        assert_eq!(missing.kind(), "script_missing");
        let not_executable = HookError::ScriptNotExecutable {
            path: "/d/a.sh".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(not_executable.code(), ErrorCode::ScriptNotExecutable);
        let run_as = HookError::RunAs {
            user: "deploy".into(),
            path: "/d/a.sh".into(),
            reason: "no such user on this host",
            source: None,
        };
        assert_eq!(run_as.code(), ErrorCode::UnknownError);
        assert_eq!(
            run_as.to_string(),
            "cannot run script /d/a.sh as user deploy: no such user on this host"
        );
    }

    #[test]
    fn exit_statuses_read_as_sentences() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with code 3");
        assert_eq!(
            describe(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn the_run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ScriptsLog::open(dir.path().join("scripts.log")).expect("log");
        let script = Script {
            location: "a.sh".into(),
            timeout: Duration::from_secs(1),
            runas: None,
            sudo: false,
        };
        assert_send(&run_script(ScriptRun::new(
            "E",
            &script,
            dir.path(),
            &[],
            &log,
        )));
    }
}
