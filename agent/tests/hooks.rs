//! Hook scripts run for real: shell scripts, process groups, signals, users and scripts.log.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Group, Pid, Uid, User};
use shoal_agent::execute::hooks::{
    self, ErrorCode, HookError, RUNAS_PATH, ScriptOutcome, ScriptResult, ScriptRun,
};
use shoal_agent::execute::scripts_log::{self, ScriptsLog};
use shoal_shared::appspec::Script;
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

const EVENT: &str = "AfterInstall";

/// A deployment directory with an archive to put scripts in and its scripts.log.
struct Deployment {
    dir: TempDir,
    archive: PathBuf,
    log: ScriptsLog,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("deployment-archive");
        fs::create_dir_all(archive.join("scripts")).expect("archive dir");
        let log = ScriptsLog::open(dir.path().join("logs/scripts.log")).expect("scripts.log");
        Self { dir, archive, log }
    }

    /// A file for the scripts to leave pids and marks in.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an executable script at `location` and returns its AppSpec entry.
    fn script(&self, location: &str, body: &str) -> Script {
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

    fn run<'a>(&'a self, script: &'a Script, env: &'a [(String, String)]) -> ScriptRun<'a> {
        let mut run = ScriptRun::new(EVENT, script, &self.archive, env, &self.log);
        run.kill_grace = Duration::from_secs(5);
        run.output_grace = Duration::from_millis(500);
        run
    }

    /// Every log line with its timestamp cut off.
    fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(self.log.path())
            .expect("read scripts.log")
            .lines()
            .map(|line| line.split_once(' ').expect("timestamp").1.to_string())
            .collect()
    }

    /// The texts logged for `location` on `stream`, in order.
    fn texts(&self, location: &str, stream: &str) -> Vec<String> {
        let tags = format!("[{EVENT}] [{location}] [{stream}] ");
        self.log_lines()
            .iter()
            .filter_map(|line| line.strip_prefix(&tags).map(str::to_string))
            .collect()
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn read_pid(path: &Path) -> Pid {
    let text = fs::read_to_string(path).expect("pid file written by the script");
    Pid::from_raw(text.trim().parse().expect("a pid"))
}

/// Alive means present and not a zombie (an orphan's new parent may not reap it at once).
fn is_alive(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')))
}

/// Polls until `pid` is gone; false if it is still alive after `within`.
async fn gone_within(pid: Pid, within: Duration) -> bool {
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
async fn run_to_end(run: ScriptRun<'_>) -> Result<ScriptOutcome, HookError> {
    tokio::time::timeout(Duration::from_secs(60), hooks::run_script(run))
        .await
        .expect("run_script returned within 60 s")
}

fn assert_succeeded(outcome: &ScriptOutcome) {
    assert_eq!(outcome.result, ScriptResult::Succeeded, "{outcome:?}");
}

#[tokio::test]
async fn stdout_and_stderr_lines_land_in_scripts_log_tagged_by_stream() {
    let deployment = Deployment::new();
    let script = deployment.script(
        "scripts/output.sh",
        "#!/bin/sh\n\
         echo 'first out'\n\
         echo 'first err' >&2\n\
         echo 'second out'\n\
         printf 'bad \\377 byte\\n'\n\
         head -c 70000 /dev/zero | tr '\\0' a\n\
         echo\n\
         printf 'no newline' >&2\n",
    );

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let stdout = deployment.texts("scripts/output.sh", "stdout");
    assert_eq!(
        stdout[..3],
        ["first out", "second out", "bad \u{fffd} byte"]
    );
    let pieces: Vec<usize> = stdout[3..].iter().map(String::len).collect();
    assert_eq!(
        pieces,
        [65_536, 70_000 - 65_536],
        "a long line is split, not cut"
    );
    assert!(
        stdout[3..]
            .iter()
            .all(|piece| piece.bytes().all(|b| b == b'a'))
    );
    assert_eq!(
        deployment.texts("scripts/output.sh", "stderr"),
        ["first err", "no newline"]
    );
    let shoal = deployment.texts("scripts/output.sh", "shoal");
    assert!(shoal[0].starts_with("script started: "), "{shoal:?}");
    assert!(
        shoal[0].ends_with("deployment-archive/scripts/output.sh"),
        "{shoal:?}"
    );
    assert_eq!(
        shoal.last().map(String::as_str),
        Some("script exited with code 0")
    );

    let tail = scripts_log::read_tail(deployment.log.path(), 1).expect("tail");
    assert!(
        tail[0].ends_with("[shoal] script exited with code 0"),
        "{tail:?}"
    );
}

#[tokio::test]
async fn a_script_sees_the_extra_env_the_agents_env_and_cwd_and_an_empty_stdin() {
    let deployment = Deployment::new();
    let script = deployment.script(
        "scripts/env.sh",
        "#!/bin/sh\n\
         echo \"event=$LIFECYCLE_EVENT\"\n\
         echo \"value=$SHOAL_TEST_VALUE\"\n\
         echo \"path=$PATH\"\n\
         echo \"cwd=$(pwd)\"\n\
         if read line; then echo \"stdin=$line\"; else echo 'stdin=eof'; fi\n",
    );
    let extra = env(&[
        ("LIFECYCLE_EVENT", EVENT),
        ("SHOAL_TEST_VALUE", "two words"),
    ]);

    let outcome = run_to_end(deployment.run(&script, &extra))
        .await
        .expect("ran");

    assert_succeeded(&outcome);
    let agent_path = std::env::var("PATH").expect("the test runs with a PATH");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        deployment.texts("scripts/env.sh", "stdout"),
        [
            format!("event={EVENT}"),
            "value=two words".to_string(),
            format!("path={agent_path}"),
            format!("cwd={}", cwd.display()),
            "stdin=eof".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_nonzero_exit_fails_with_that_code() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/fail.sh", "#!/bin/sh\necho bye\nexit 3\n");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let failed = ScriptResult::Failed {
        exit_code: Some(3),
        signal: None,
    };
    assert_eq!(outcome.result, failed);
    assert_eq!(outcome.result.code(), ErrorCode::ScriptFailed);
    let shoal = deployment.texts("scripts/fail.sh", "shoal");
    assert!(
        shoal.contains(&"script exited with code 3".to_string()),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn death_by_a_signal_fails_with_the_signal() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/killed.sh", "#!/bin/sh\nkill -KILL $$\n");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let failed = ScriptResult::Failed {
        exit_code: None,
        signal: Some(Signal::SIGKILL as i32),
    };
    assert_eq!(outcome.result, failed);
    let shoal = deployment.texts("scripts/killed.sh", "shoal");
    assert!(
        shoal.contains(&"script was killed by signal 9 (SIGKILL)".to_string()),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_missing_script_is_script_missing() {
    let deployment = Deployment::new();
    let script = Script {
        location: "/scripts/absent.sh".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("nothing to run");

    assert!(
        matches!(error, HookError::ScriptMissing { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), ErrorCode::ScriptMissing);
    assert!(error.to_string().contains("/scripts/absent.sh"), "{error}");
    let shoal = deployment.texts("/scripts/absent.sh", "shoal");
    assert_eq!(shoal, [format!("script not started: {error}")]);
}

#[tokio::test]
async fn a_scripts_log_that_cannot_be_written_stops_the_script_from_starting() {
    let deployment = Deployment::new();
    let mark = deployment.file("ran");
    let script = deployment.script(
        "scripts/quiet.sh",
        &format!("#!/bin/sh\ntouch {}\n", mark.display()),
    );
    let full = ScriptsLog::open("/dev/full").expect("/dev/full opens, but every write fails");
    let run = ScriptRun::new(EVENT, &script, &deployment.archive, &[], &full);

    let error = run_to_end(run).await.expect_err("nowhere to log");

    assert!(matches!(error, HookError::Log { .. }), "{error:?}");
    assert!(error.to_string().contains("/dev/full"), "{error}");
    assert!(!mark.exists(), "the script ran without a log");
}

#[tokio::test]
async fn a_non_executable_script_gets_its_execute_bits_and_runs() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/plain.sh", "#!/bin/sh\necho ran\n");
    let path = deployment.archive.join("scripts/plain.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert_eq!(deployment.texts("scripts/plain.sh", "stdout"), ["ran"]);
    let mode = fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn a_script_whose_execute_bits_cannot_be_set_is_not_executable() {
    // procfs refuses every chmod, even root's: a file that can never become executable.
    let proc_self = Path::new("/proc/self");
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = ScriptsLog::open(log_dir.path().join("scripts.log")).expect("log");
    let script = Script {
        location: "status".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(ScriptRun::new(EVENT, &script, proc_self, &[], &log))
        .await
        .expect_err("cannot run");

    assert!(
        matches!(error, HookError::ScriptNotExecutable { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), ErrorCode::ScriptNotExecutable);
}

#[tokio::test]
async fn a_location_escaping_the_archive_is_refused_and_nothing_runs() {
    let deployment = Deployment::new();
    let mark = deployment.file("escaped");
    let outside = deployment.dir.path().join("outside.sh");
    fs::write(&outside, format!("#!/bin/sh\ntouch {}\n", mark.display())).expect("write");
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = Script {
        location: "scripts/../../outside.sh".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("refused");

    assert!(
        matches!(error, HookError::LocationEscapes { .. }),
        "{error:?}"
    );
    assert!(!mark.exists(), "the script outside the archive ran");
}

#[tokio::test]
async fn a_timeout_kills_the_script_and_its_grandchildren() {
    let deployment = Deployment::new();
    let (script_pid, grandchild_pid) = (deployment.file("script.pid"), deployment.file("gc.pid"));
    let mut script = deployment.script(
        "scripts/hang.sh",
        &format!(
            "#!/bin/sh\n\
             echo $$ > {}\n\
             sleep 1000 &\n\
             echo $! > {}\n\
             echo waiting\n\
             sleep 1000\n",
            script_pid.display(),
            grandchild_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(1);

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let timed_out = ScriptResult::TimedOut {
        after: Duration::from_secs(1),
    };
    assert_eq!(outcome.result, timed_out);
    assert_eq!(outcome.result.code(), ErrorCode::ScriptTimedOut);
    assert!(outcome.duration >= Duration::from_secs(1), "{outcome:?}");
    assert!(
        outcome.duration < Duration::from_secs(5),
        "SIGTERM was enough: {outcome:?}"
    );
    for pid in [read_pid(&script_pid), read_pid(&grandchild_pid)] {
        assert!(
            gone_within(pid, Duration::from_secs(5)).await,
            "{pid} survived"
        );
    }
    assert_eq!(deployment.texts("scripts/hang.sh", "stdout"), ["waiting"]);
    let shoal = deployment.texts("scripts/hang.sh", "shoal");
    assert!(
        shoal
            .iter()
            .any(|line| line.starts_with("script timed out after 1s")),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_script_ignoring_sigterm_is_killed_after_the_grace() {
    let deployment = Deployment::new();
    let (script_pid, grandchild_pid) = (deployment.file("script.pid"), deployment.file("gc.pid"));
    let mut script = deployment.script(
        "scripts/stubborn.sh",
        &format!(
            "#!/bin/sh\n\
             trap '' TERM\n\
             echo $$ > {}\n\
             sh -c \"trap '' TERM; sleep 1000\" &\n\
             echo $! > {}\n\
             while :; do sleep 1; done\n",
            script_pid.display(),
            grandchild_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(1);
    let mut run = deployment.run(&script, &[]);
    run.kill_grace = Duration::from_millis(500);

    let outcome = run_to_end(run).await.expect("ran");

    assert!(
        matches!(outcome.result, ScriptResult::TimedOut { .. }),
        "{outcome:?}"
    );
    assert!(
        outcome.duration >= Duration::from_millis(1500),
        "{outcome:?}"
    );
    assert!(outcome.duration < Duration::from_secs(6), "{outcome:?}");
    for pid in [read_pid(&script_pid), read_pid(&grandchild_pid)] {
        assert!(
            gone_within(pid, Duration::from_secs(5)).await,
            "{pid} survived"
        );
    }
    let shoal = deployment.texts("scripts/stubborn.sh", "shoal");
    assert!(
        shoal.iter().any(|line| line.contains("sending SIGKILL")),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_background_child_holding_stdout_does_not_hang_the_deployment() {
    let deployment = Deployment::new();
    let daemon_pid = deployment.file("daemon.pid");
    let mut script = deployment.script(
        "scripts/start.sh",
        &format!(
            "#!/bin/sh\nsleep 30 &\necho $! > {}\necho started\nexit 0\n",
            daemon_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(60);
    let started = Instant::now();

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert!(started.elapsed() < Duration::from_secs(10), "{outcome:?}");
    assert_succeeded(&outcome);
    assert!(outcome.output_left_open);
    assert_eq!(outcome.warnings.len(), 1);
    assert!(
        outcome.warnings[0].contains("> /dev/null 2>&1 &"),
        "{outcome:?}"
    );
    let shoal = deployment.texts("scripts/start.sh", "shoal");
    assert!(shoal.contains(&outcome.warnings[0]), "{shoal:?}");
    assert_eq!(deployment.texts("scripts/start.sh", "stdout"), ["started"]);
    let daemon = read_pid(&daemon_pid);
    assert!(is_alive(daemon), "the daemon the script started was killed");
    kill(daemon, Signal::SIGKILL).expect("kill the leftover sleep");
}

#[tokio::test]
async fn a_daemon_writing_after_the_grace_is_not_killed_by_sigpipe() {
    let deployment = Deployment::new();
    let (daemon_pid, wrote) = (deployment.file("daemon.pid"), deployment.file("wrote"));
    let script = deployment.script(
        "scripts/chatty.sh",
        &format!(
            "#!/bin/sh\n\
             sh -c 'sleep 1; for n in 1 2 3 4 5; do echo late $n; sleep 0.1; done; \
                    touch {}; exec sleep 30' &\n\
             echo $! > {}\n",
            wrote.display(),
            daemon_pid.display()
        ),
    );
    let mut run = deployment.run(&script, &[]);
    run.output_grace = Duration::from_millis(100);

    let outcome = run_to_end(run).await.expect("ran");

    assert_succeeded(&outcome);
    assert!(outcome.output_left_open);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wrote.exists() {
        assert!(
            Instant::now() < deadline,
            "the daemon never got past its write"
        );
        sleep(Duration::from_millis(20)).await;
    }
    let daemon = read_pid(&daemon_pid);
    assert!(
        is_alive(daemon),
        "writing to the abandoned stdout killed the daemon"
    );
    kill(daemon, Signal::SIGKILL).expect("kill the leftover sleep");
}

#[tokio::test]
async fn abandoning_a_run_kills_its_process_group() {
    let deployment = Deployment::new();
    let script_pid = deployment.file("script.pid");
    let script = deployment.script(
        "scripts/long.sh",
        &format!(
            "#!/bin/sh\necho $$ > {}\nsleep 1000\n",
            script_pid.display()
        ),
    );

    let run = hooks::run_script(deployment.run(&script, &[]));
    let abandoned = tokio::time::timeout(Duration::from_secs(1), run).await;

    assert!(
        abandoned.is_err(),
        "the script should still have been running"
    );
    assert!(gone_within(read_pid(&script_pid), Duration::from_secs(5)).await);
}

#[tokio::test]
async fn runas_an_unknown_user_is_refused_naming_the_user() {
    let deployment = Deployment::new();
    let mut script = deployment.script("scripts/who.sh", "#!/bin/sh\nid\n");
    script.runas = Some("shoal-no-such-user".to_string());

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("refused");

    assert!(matches!(error, HookError::RunAs { .. }), "{error:?}");
    assert!(error.to_string().contains("shoal-no-such-user"), "{error}");
    assert!(deployment.texts("scripts/who.sh", "stdout").is_empty());
}

/// A throwaway user with a supplementary group, deleted on drop.
struct ThrowawayUser {
    name: String,
    group: String,
}

impl ThrowawayUser {
    fn create() -> Self {
        let suffix = std::process::id();
        let user = Self {
            name: format!("shoalu{suffix}"),
            group: format!("shoalg{suffix}"),
        };
        run_tool("groupadd", &[&user.group]);
        let home = format!("/home/{}", user.name);
        run_tool(
            "useradd",
            &[
                "-M",
                "-d",
                &home,
                "-s",
                "/bin/sh",
                "-G",
                &user.group,
                &user.name,
            ],
        );
        user
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

fn run_tool(tool: &str, args: &[&str]) {
    let status = Command::new(tool).args(args).status().expect(tool);
    assert!(status.success(), "{tool} {args:?}: {status}");
}

#[tokio::test]
async fn runas_runs_as_the_user_with_its_groups_and_login_environment() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: runas needs the tests to run as root");
        return;
    }
    let user = ThrowawayUser::create();
    let entry = User::from_name(&user.name).expect("passwd").expect("user");
    let extra_gid = Group::from_name(&user.group)
        .expect("group")
        .expect("group")
        .gid;
    let deployment = Deployment::new();
    let mut script = deployment.script(
        "scripts/whoami.sh",
        "#!/bin/sh\n\
         echo \"uid=$(id -u)\"\n\
         echo \"groups=$(id -G)\"\n\
         echo \"home=$HOME\"\n\
         echo \"user=$USER\"\n\
         echo \"logname=$LOGNAME\"\n\
         echo \"path=$PATH\"\n\
         echo \"event=$LIFECYCLE_EVENT\"\n",
    );
    script.runas = Some(user.name.clone());
    // The user must be able to reach the script (tempdirs are 0700).
    for dir in [deployment.dir.path(), &deployment.archive] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let extra = env(&[("LIFECYCLE_EVENT", EVENT)]);

    let outcome = run_to_end(deployment.run(&script, &extra))
        .await
        .expect("ran");

    assert_succeeded(&outcome);
    let stdout = deployment.texts("scripts/whoami.sh", "stdout");
    assert_eq!(stdout[0], format!("uid={}", entry.uid));
    let groups: Vec<&str> = stdout[1]
        .strip_prefix("groups=")
        .expect("groups line")
        .split(' ')
        .collect();
    assert!(
        groups.contains(&entry.gid.to_string().as_str()),
        "{groups:?}"
    );
    assert!(
        groups.contains(&extra_gid.to_string().as_str()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"0"), "root's group leaked: {groups:?}");
    assert_eq!(
        stdout[2..],
        [
            format!("home=/home/{}", user.name),
            format!("user={}", user.name),
            format!("logname={}", user.name),
            format!("path={RUNAS_PATH}"),
            format!("event={EVENT}"),
        ]
    );
    let shoal = deployment.texts("scripts/whoami.sh", "shoal");
    assert!(
        shoal[0].ends_with(&format!("(as user {})", user.name)),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn sudo_when_the_agent_is_root_just_runs_the_script() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs the tests to run as root (sudo is not exercised)");
        return;
    }
    let deployment = Deployment::new();
    let mut script = deployment.script("scripts/root.sh", "#!/bin/sh\nid -u\n");
    script.sudo = true;

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert_eq!(deployment.texts("scripts/root.sh", "stdout"), ["0"]);
}
