//! One run of the notify command: the executable, as the agent (root) and with no shell, gets the
//! event's JSON on stdin and `SHOAL_EVENT`, `SHOAL_GROUP` and `SHOAL_DEPLOYMENT` in the agent's
//! environment; exit status 0 delivers it. Past its timeout its process group is killed.

use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::queue::Job;
use super::{CommandTarget, DeliveryError};

/// How much of the command's stderr is read; the warning shows its end.
const STDERR_LIMIT: u64 = 64 * 1024;
/// How many characters of stderr the warning shows.
const STDERR_SHOWN: usize = 200;

/// Runs the command once for `job`.
pub(super) async fn run(target: &CommandTarget, job: &Job) -> Result<(), DeliveryError> {
    let mut child = tokio::process::Command::new(&target.path)
        .args(&target.args)
        .env("SHOAL_EVENT", job.event.kind.as_str())
        .env("SHOAL_GROUP", &job.event.group)
        .env("SHOAL_DEPLOYMENT", &job.event.deployment)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(DeliveryError::Spawn)?;
    let mut group = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
    let (stdin, stderr) = (child.stdin.take(), child.stderr.take());
    let body = job.event.body.clone();
    let ran = tokio::time::timeout(target.timeout, async {
        let feed = async move {
            if let Some(mut stdin) = stdin {
                // A command that does not read its stdin may close it early: not a failure.
                let _ = stdin.write_all(&body).await;
            }
        };
        let drain = async move {
            let mut text = Vec::new();
            if let Some(stderr) = stderr {
                let _ = stderr.take(STDERR_LIMIT).read_to_end(&mut text).await;
            }
            text
        };
        let ((), text) = tokio::join!(feed, drain);
        (child.wait().await, text)
    })
    .await;
    let Ok((status, text)) = ran else {
        drop(group);
        return Err(DeliveryError::CommandTimeout(target.timeout));
    };
    group.disarm();
    let status = status.map_err(DeliveryError::Wait)?;
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&text);
    let said = said.trim();
    let skip = said.chars().count().saturating_sub(STDERR_SHOWN);
    Err(DeliveryError::Exit {
        status,
        stderr: said.chars().skip(skip).collect(),
    })
}

/// Kills the command's process group when dropped before the command ended: past its timeout,
/// or when the close deadline cuts a run short.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    /// The command ended: its group is left alone.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use shoal_shared::history::{EventKind, FleetEvent};

    use super::super::queue::Event;
    use super::super::testing::{event, quick, stats_until};
    use super::super::{Counts, Events, Notifications, NotifySettings, TargetKind};
    use super::*;

    fn script(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("notify.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{text}")).expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        path
    }

    fn shell(text: &str, timeout: Duration) -> CommandTarget {
        CommandTarget {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), text.into()],
            events: Events::all(),
            timeout,
        }
    }

    fn job() -> Job {
        Job {
            target: 0,
            kind: TargetKind::Command,
            event: Arc::new(Event {
                kind: EventKind::Halted,
                group: "web".into(),
                deployment: "d-1".into(),
                body: "{}".into(),
            }),
            id: "0".repeat(32),
        }
    }

    #[tokio::test]
    async fn the_command_gets_the_event_on_stdin_and_its_names_in_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = script(
            dir.path(),
            "printf '%s\\n' \"$SHOAL_EVENT\" \"$SHOAL_GROUP\" \"$SHOAL_DEPLOYMENT\" \"$1\" > \"$2/env\"\n\
             cat > \"$2/stdin\"\n",
        );
        let settings = NotifySettings {
            command: Some(CommandTarget {
                path,
                args: vec!["first arg".into(), dir.path().display().to_string()],
                events: Events::all(),
                timeout: Duration::from_secs(10),
            }),
            ..NotifySettings::default()
        };
        let notifications = Notifications::start_with(&settings, quick(1)).expect("start");
        let sent = event(EventKind::HostFailed, 4);
        notifications.send(&sent);
        let stats = stats_until(
            || notifications.stats(),
            |s| s.command.delivered + s.command.failed > 0,
        )
        .await;
        assert_eq!(
            stats.command,
            Counts {
                delivered: 1,
                ..Counts::default()
            }
        );
        let env = std::fs::read_to_string(dir.path().join("env")).expect("env written");
        assert_eq!(env, "host_failed\nweb\nd-4\nfirst arg\n");
        let stdin = std::fs::read(dir.path().join("stdin")).expect("stdin written");
        let got: FleetEvent = serde_json::from_slice(&stdin).expect("the event's JSON");
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn a_command_fails_on_a_nonzero_exit_and_is_killed_at_its_timeout() {
        let exit = run(
            &shell("echo pager down >&2; exit 3", Duration::from_secs(10)),
            &job(),
        )
        .await
        .expect_err("exit 3")
        .to_string();
        assert_eq!(exit, "the command exited with code 3: pager down");
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let hang = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let timeout = Duration::from_millis(300);
        let hung = run(&shell(&hang, timeout), &job())
            .await
            .expect_err("hangs")
            .to_string();
        assert_eq!(
            hung,
            "the command did not finish within 0.3 s and was killed"
        );
        let pid = std::fs::read_to_string(&pid_file).expect("pid written");
        let stat = format!("/proc/{}/stat", pid.trim());
        // Gone, or a zombie left for its new parent to reap.
        let gone = shoal_tests::poll_until(Duration::from_secs(5), || {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            let state = state.rsplit(") ").next().unwrap_or_default();
            (state.is_empty() || state.starts_with('Z')).then_some(())
        });
        assert!(gone.is_some(), "the command's whole group was killed");
        let missing = CommandTarget {
            path: dir.path().join("missing"),
            ..shell("", timeout)
        };
        let err = run(&missing, &job()).await.expect_err("no such file");
        assert!(
            err.to_string().starts_with("cannot start the command: "),
            "{err}"
        );
    }
}
