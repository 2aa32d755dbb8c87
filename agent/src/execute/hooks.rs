//! Running one hook script: find it in the deployment archive, start it in its own process
//! group (as its `runas` user), log its output, and hold the whole group to the timeout.

use std::ffi::CString;
use std::fs::{self, Permissions};
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User};
use shoal_shared::appspec::Script;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tracing::{info, warn};

use super::scripts_log::{self, ScriptsLog, Stream};

/// How long a timed-out script's process group gets between `SIGTERM` and `SIGKILL`.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
/// How long output is still read after the script exits.
pub const DEFAULT_OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// `PATH` of a script run as another user, like a login shell's.
pub const RUNAS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often a dying process group is checked.
const GROUP_POLL: Duration = Duration::from_millis(20);
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
    /// Extra environment on top of the agent's (`LIFECYCLE_EVENT` etc., set by the caller).
    pub env: &'a [(String, String)],
    /// The deployment's `scripts.log`.
    pub log: &'a ScriptsLog,
    /// Grace between `SIGTERM` and `SIGKILL` of a timed-out script's process group.
    pub kill_grace: Duration,
    /// How long to keep reading output after the script exits.
    pub output_grace: Duration,
}

impl<'a> ScriptRun<'a> {
    /// A run with the default graces.
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
            log,
            kill_grace: DEFAULT_KILL_GRACE,
            output_grace: DEFAULT_OUTPUT_GRACE,
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
}

impl ScriptResult {
    /// The CodeDeploy error code of this result.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Succeeded => ErrorCode::Succeeded,
            Self::Failed { .. } => ErrorCode::ScriptFailed,
            Self::TimedOut { .. } => ErrorCode::ScriptTimedOut,
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
            Self::LocationEscapes { .. } => "location_escapes",
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
    let not_started = |error: &HookError| record.shoal(&format!("script not started: {error}"));
    let (path, launch) = prepare(&run, &record).await.inspect_err(not_started)?;
    let mut command = build_command(&path, &launch, run.env);
    record.shoal(&format!("script started: {}{}", path.display(), launch));
    record.check()?;

    let started = Instant::now();
    let mut child = spawn(&mut command, &path, &launch)
        .await
        .inspect_err(not_started)?;
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
    let waited = output
        .log_while(
            &record,
            timeout_at(started + run.script.timeout, child.wait()),
        )
        .await;
    let (status, timed_out) = match waited {
        Ok(status) => (status, false),
        Err(_elapsed) => {
            let after = run.script.timeout;
            warn!(hook.event = %run.event, script = %location, ?after, "script timed out");
            record.shoal(&format!(
                "script timed out after {after:?}; sending SIGTERM to its process group"
            ));
            let stopping = stop_group(&mut child, pgid, run.kill_grace, &record);
            (output.log_while(&record, stopping).await, true)
        }
    };
    let status = status.map_err(|source| HookError::Wait {
        path: path.clone(),
        source,
    })?;
    group.disarm();

    let output_left_open = !output.drain(&record, run.output_grace).await;
    record.shoal(&format!("script {}", describe(status)));
    let mut warnings = Vec::new();
    if output_left_open {
        let warning = format!(
            "a background process still held the script's stdout or stderr {:?} after it \
             exited; its later output is not logged. Start daemons with `cmd > /dev/null 2>&1 &`",
            run.output_grace
        );
        warn!(hook.event = %run.event, script = %location, "script output left open");
        record.shoal(&warning);
        warnings.push(warning);
    }
    let result = match (timed_out, status.code()) {
        (true, _) => ScriptResult::TimedOut {
            after: run.script.timeout,
        },
        (false, Some(0)) => ScriptResult::Succeeded,
        (false, exit_code) => ScriptResult::Failed {
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
    let launch = Launch::plan(run.script, &path).await?;
    Ok((path, launch))
}

/// The script's path inside the archive; a leading `/` still means the bundle root.
pub fn script_path(archive_dir: &Path, location: &str) -> Result<PathBuf, HookError> {
    let mut path = archive_dir.to_path_buf();
    let mut depth = 0_usize;
    for component in Path::new(location.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => {
                path.push(part);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                path.pop();
                depth -= 1;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                let location = location.to_string();
                return Err(HookError::LocationEscapes { location });
            }
        }
    }
    Ok(path)
}

/// Who runs the script, decided before anything starts.
#[derive(Debug)]
enum Launch {
    /// The agent's own user.
    Agent,
    /// `sudo -n <path>`: `sudo: true` while the agent is not root.
    Sudo,
    /// A `runas` user, with its login identity.
    User(RunAsUser),
}

#[derive(Debug)]
struct RunAsUser {
    name: String,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: PathBuf,
    shell: PathBuf,
    /// False when the agent already is this user (and cannot switch anyway).
    switch: bool,
}

impl Launch {
    async fn plan(script: &Script, path: &Path) -> Result<Self, HookError> {
        let agent_is_root = Uid::effective().is_root();
        let Some(name) = script.runas.clone() else {
            return Ok(if script.sudo && !agent_is_root {
                Self::Sudo
            } else {
                Self::Agent
            });
        };
        let refuse = |reason, source| HookError::RunAs {
            user: name.clone(),
            path: path.to_path_buf(),
            reason,
            source,
        };
        // The user database may be remote (LDAP, SSSD): keep its lookups off the async workers.
        let lookup = tokio::task::spawn_blocking({
            let name = name.clone();
            move || RunAsUser::look_up(name)
        });
        let user = match lookup.await {
            Ok(Ok(user)) => user,
            Ok(Err((reason, errno))) => return Err(refuse(reason, errno.map(io::Error::from))),
            Err(join_error) => {
                let source = io::Error::other(join_error);
                return Err(refuse("the user lookup did not finish", Some(source)));
            }
        };
        if user.switch && !agent_is_root {
            return Err(refuse("runas needs the agent to run as root", None));
        }
        Ok(Self::User(user))
    }
}

impl RunAsUser {
    fn look_up(name: String) -> Result<Self, (&'static str, Option<Errno>)> {
        let user = User::from_name(&name)
            .map_err(|errno| ("the user database could not be read", Some(errno)))?
            .ok_or(("no such user on this host", None))?;
        let c_name =
            CString::new(name.as_str()).map_err(|_| ("the user name contains a NUL byte", None))?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .map_err(|errno| ("its groups could not be listed", Some(errno)))?;
        let shell = if user.shell.as_os_str().is_empty() {
            PathBuf::from("/bin/sh")
        } else {
            user.shell
        };
        Ok(Self {
            switch: user.uid != Uid::effective(),
            name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
            shell,
        })
    }
}

impl std::fmt::Display for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Agent => Ok(()),
            Self::Sudo => f.write_str(" (through sudo)"),
            Self::User(user) => write!(f, " (as user {})", user.name),
        }
    }
}

fn build_command(path: &Path, launch: &Launch, env: &[(String, String)]) -> Command {
    let mut command = match launch {
        Launch::Sudo => {
            let mut sudo = Command::new("sudo");
            sudo.arg("-n").arg("--").arg(path);
            sudo
        }
        Launch::Agent | Launch::User(_) => Command::new(path),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Launch::User(user) = launch {
        command
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("SHELL", &user.shell)
            .env("PATH", RUNAS_PATH);
        if user.switch {
            switch_user(&mut command, user);
        }
    }
    command.envs(env.iter().map(|(key, value)| (key, value)));
    command
}

/// Makes the child take the user's groups, gid and uid between fork and exec.
fn switch_user(command: &mut Command, user: &RunAsUser) {
    let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are sound. It only calls setgroups, setgid and setuid (thin syscall wrappers) on
    // values computed before the fork, and builds errors with `from_raw_os_error`, which does
    // not allocate. Nothing is locked, allocated or freed.
    unsafe {
        command.pre_exec(move || {
            let os_error = |errno: Errno| io::Error::from_raw_os_error(errno as i32);
            nix::unistd::setgroups(&groups).map_err(os_error)?;
            nix::unistd::setgid(gid).map_err(os_error)?;
            nix::unistd::setuid(uid).map_err(os_error)
        });
    }
}

/// Spawns, retrying while the freshly written script is busy: another thread's fork can hold
/// a write descriptor to it for a moment (`ETXTBSY`).
async fn spawn(command: &mut Command, path: &Path, launch: &Launch) -> Result<Child, HookError> {
    let mut retries = 0;
    loop {
        match command.spawn() {
            Ok(child) => return Ok(child),
            Err(error) if error.raw_os_error() == Some(Errno::ETXTBSY as i32) => {
                if retries == BUSY_RETRIES {
                    return Err(spawn_error(path, launch, error));
                }
                retries += 1;
                sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(spawn_error(path, launch, error)),
        }
    }
}

fn spawn_error(path: &Path, launch: &Launch, source: io::Error) -> HookError {
    let path = path.to_path_buf();
    let reason = match (launch, source.kind()) {
        (Launch::User(user), io::ErrorKind::PermissionDenied) => {
            return HookError::RunAs {
                user: user.name.clone(),
                path,
                reason: "the user may not execute it: make the script and every directory above \
                         it readable and searchable by that user",
                source: Some(source),
            };
        }
        (Launch::Sudo, io::ErrorKind::NotFound) => {
            "sudo is not installed, and `sudo: true` needs it when the agent is not root"
        }
        (_, io::ErrorKind::NotFound) => "the interpreter named on its #! line does not exist",
        _ if source.raw_os_error() == Some(Errno::ENOEXEC as i32) => {
            "it is not a program: start it with a #! line such as #!/bin/sh"
        }
        _ => "exec failed",
    };
    HookError::Spawn {
        path,
        reason,
        source,
    }
}

/// `SIGTERM` to the group, up to `grace` for it to go, then `SIGKILL`; reaps the script.
async fn stop_group(
    child: &mut Child,
    pgid: Pid,
    grace: Duration,
    record: &Recorder<'_>,
) -> io::Result<ExitStatus> {
    signal_group(pgid, Signal::SIGTERM);
    let give_up = Instant::now() + grace;
    let mut status = None;
    loop {
        if status.is_none() {
            status = child.try_wait()?;
        }
        // The unreaped script would keep the group alive, so check it only once reaped.
        if (status.is_some() && !group_alive(pgid)) || Instant::now() >= give_up {
            break;
        }
        sleep(GROUP_POLL).await;
    }
    if status.is_none() || group_alive(pgid) {
        warn!(
            pid = pgid.as_raw(),
            ?grace,
            "process group outlived sigterm"
        );
        record.shoal(&format!(
            "process group still running {grace:?} after SIGTERM; sending SIGKILL"
        ));
        signal_group(pgid, Signal::SIGKILL);
        if status.is_none() {
            // By pid too, in case the script moved itself out of its group.
            let _ = child.start_kill();
        }
    }
    match status {
        Some(status) => Ok(status),
        None => child.wait().await,
    }
}

fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None) != Err(Errno::ESRCH)
}

fn signal_group(pgid: Pid, signal: Signal) {
    if let Err(errno) = killpg(pgid, signal)
        && errno != Errno::ESRCH
    {
        warn!(pid = pgid.as_raw(), %signal, %errno, "could not signal process group");
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(number)) => match Signal::try_from(number) {
            Ok(signal) => format!("was killed by signal {number} ({signal})"),
            Err(_) => format!("was killed by signal {number}"),
        },
        (None, None) => format!("ended with {status}"),
    }
}

/// Kills the script's process group if the run is abandoned before the script was reaped.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Writes one script's lines to the log, remembering the first write error.
struct Recorder<'a> {
    log: &'a ScriptsLog,
    event: &'a str,
    location: &'a str,
    error: Mutex<Option<io::Error>>,
}

impl Recorder<'_> {
    fn line(&self, stream: Stream, text: &str) {
        if let Err(error) = self.log.line(self.event, self.location, stream, text) {
            let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert(error);
        }
    }

    fn shoal(&self, text: &str) {
        self.line(Stream::Shoal, text);
    }

    fn check(&self) -> Result<(), HookError> {
        let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        match first.take() {
            None => Ok(()),
            Some(source) => Err(HookError::Log {
                path: self.log.path().to_path_buf(),
                source,
            }),
        }
    }
}

/// The script's output lines, logged while other work goes on.
struct Output {
    lines_rx: mpsc::Receiver<(Stream, String)>,
    open: bool,
}

impl Output {
    /// Runs `work` to completion while logging whatever output arrives meanwhile.
    async fn log_while<F: Future>(&mut self, record: &Recorder<'_>, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                line = self.lines_rx.recv(), if self.open => match line {
                    Some((stream, text)) => record.line(stream, &text),
                    None => self.open = false,
                },
            }
        }
    }

    /// Logs the rest of the output; false if it was still open after `grace`.
    async fn drain(&mut self, record: &Recorder<'_>, grace: Duration) -> bool {
        let lines_rx = &mut self.lines_rx;
        let rest = async {
            while let Some((stream, text)) = lines_rx.recv().await {
                record.line(stream, &text);
            }
        };
        self.open = timeout(grace, rest).await.is_err();
        !self.open
    }
}

#[cfg(test)]
mod tests {
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
