//! A `git` child process run to its end under a fetch's limits: in a process group of its own
//! (with the ssh or https helpers it starts), killed if the agent dies, cut off when it says
//! nothing for too long, runs too long, or the agent stops. What it wrote to stderr is kept
//! (its start and its end) for the diagnosis.

use std::io::{self, Read as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::stop::Stop;

tokio::task_local! {
    /// The stop that ends a fetch started in this task: see [`with_stop`].
    static STOP: Stop;
}

/// Runs `work` with `stop` as what ends a fetch started inside it: once `stop` is requested,
/// a running `git` is killed with its process group and the fetch fails as stopped, and a new
/// one does not start. The channel's blocking work runs inside `block_in_place`, on this
/// task's own thread, where the stop is in reach.
pub async fn with_stop<F: Future>(stop: Stop, work: F) -> F::Output {
    STOP.scope(stop, work).await
}

/// How often a quiet child is looked at.
const TICK: Duration = Duration::from_millis(50);
/// SIGTERM, then SIGKILL this much later, for a child cut off: on SIGTERM git removes the lock
/// files it holds in the mirror.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read once the child has exited.
const DRAIN: Duration = Duration::from_millis(500);
/// The first bytes of stderr kept: ssh and TLS say what went wrong early.
const HEAD: usize = 16 * 1024;
/// The last bytes of stderr kept: git's own verdict comes last.
const TAIL: usize = 48 * 1024;

/// When a run is cut off.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Nothing on stderr (no connection progress, no transfer progress) for this long.
    pub(super) quiet: Duration,
    /// Running this long, whatever it says.
    pub(super) overall: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// It exited by itself.
    Exited(ExitStatus),
    /// Cut off: it said nothing for `Limits::quiet`.
    Quiet,
    /// Cut off: it ran for `Limits::overall`.
    Overall,
    /// Cut off: the agent is stopping.
    Stopped,
}

/// A finished run.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) ended: Ended,
    /// Its stderr, the middle left out when long.
    pub(super) stderr: String,
}

/// Runs `command` (stdin and stdout closed, stderr kept) to its end under `limits`. When this
/// returns, the child is reaped and the rest of its process group has been sent SIGKILL.
pub(super) fn run(command: &mut Command, limits: Limits) -> io::Result<Run> {
    let stop = STOP.try_with(Stop::clone).ok();
    if stop.as_ref().is_some_and(Stop::is_requested) {
        return Ok(Run {
            ended: Ended::Stopped,
            stderr: String::new(),
        });
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(command);
    let mut child = command.spawn()?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // The reader sends `None` at the end of stderr. The sender kept here means the channel
    // never disconnects, so every wait below is a wait of at most one tick.
    let (chunk_tx, chunk_rx) = mpsc::channel::<Option<Vec<u8>>>();
    if let Some(mut stderr) = child.stderr.take() {
        let chunk_tx = chunk_tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                if chunk_tx.send(Some(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            let _ = chunk_tx.send(None);
        });
    }
    let mut kept = Kept::default();
    let started = Instant::now();
    let mut heard = started;
    let mut open = true;
    let cut = loop {
        match chunk_rx.recv_timeout(TICK) {
            Ok(Some(chunk)) => {
                kept.push(&chunk);
                heard = Instant::now();
            }
            Ok(None) => open = false,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        if exited(pid) {
            break None;
        }
        let now = Instant::now();
        if stop.as_ref().is_some_and(Stop::is_requested) {
            break Some(Ended::Stopped);
        }
        if now.duration_since(started) >= limits.overall {
            break Some(Ended::Overall);
        }
        if now.duration_since(heard) >= limits.quiet {
            break Some(Ended::Quiet);
        }
    };
    if cut.is_some() {
        signal_group(pid, Signal::SIGTERM);
        let grace_ends = Instant::now() + KILL_GRACE;
        while !exited(pid) && Instant::now() < grace_ends {
            if let Ok(Some(chunk)) = chunk_rx.recv_timeout(TICK) {
                kept.push(&chunk);
            }
        }
    }
    // The leader is a zombie now (not reaped yet), so its group id still names this group:
    // whatever is left of it (an ssh that outlived git) goes.
    signal_group(pid, Signal::SIGKILL);
    let drain_ends = Instant::now() + DRAIN;
    while open && Instant::now() < drain_ends {
        match chunk_rx.recv_timeout(TICK) {
            Ok(Some(chunk)) => kept.push(&chunk),
            Ok(None) => open = false,
            Err(_) => {}
        }
    }
    let status = child.wait()?;
    Ok(Run {
        ended: cut.unwrap_or(Ended::Exited(status)),
        stderr: kept.text(),
    })
}

/// Whether `pid` has exited, without reaping it.
fn exited(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(nix::sys::wait::WaitStatus::StillAlive) => false,
        Ok(_) => true,
        Err(Errno::EINTR) => false,
        Err(_) => true,
    }
}

/// Sends `signal` to the process group led by `pid`; a group already gone is fine.
fn signal_group(pid: Pid, signal: Signal) {
    if let Err(e) = killpg(pid, signal)
        && e != Errno::ESRCH
    {
        tracing::warn!(pid = pid.as_raw(), error = %e, "cannot signal the git process group");
    }
}

/// Makes the kernel kill the child (SIGKILL) when the thread that started it ends, so a git
/// never outlives an agent that died without cleaning up; its own helpers then see their
/// pipes close, and end by their own timeouts.
fn die_with_parent(command: &mut Command) {
    let parent = nix::unistd::getpid();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are sound. It calls prctl and getppid (thin syscall wrappers) and builds errors
    // with `from_raw_os_error`, which does not allocate. Nothing is locked, allocated or freed.
    unsafe {
        command.pre_exec(move || {
            let os_error = |errno: Errno| io::Error::from_raw_os_error(errno as i32);
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(os_error)?;
            if nix::unistd::getppid() != parent {
                // The agent died between fork and prctl.
                return Err(os_error(Errno::ESRCH));
            }
            Ok(())
        });
    }
}

/// The start and the end of a stream.
#[derive(Debug, Default)]
struct Kept {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: bool,
}

impl Kept {
    fn push(&mut self, mut bytes: &[u8]) {
        let room = HEAD.saturating_sub(self.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        bytes = rest;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * TAIL {
            let cut = self.tail.len() - TAIL;
            self.tail.drain(..cut);
            self.dropped = true;
        }
    }

    fn text(&self) -> String {
        let tail = if self.tail.len() > TAIL {
            &self.tail[self.tail.len() - TAIL..]
        } else {
            &self.tail[..]
        };
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped || tail.len() < self.tail.len() {
            text.push_str("\n[…]\n");
        }
        text.push_str(&String::from_utf8_lossy(tail));
        text
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    fn limits(quiet_ms: u64, overall_ms: u64) -> Limits {
        Limits {
            quiet: Duration::from_millis(quiet_ms),
            overall: Duration::from_millis(overall_ms),
        }
    }

    #[test]
    fn a_child_that_exits_is_waited_for_and_its_stderr_kept() {
        let run = run(
            Command::new("sh").args(["-c", "echo said >&2; exit 3"]),
            limits(10_000, 10_000),
        )
        .unwrap();
        assert!(matches!(run.ended, Ended::Exited(s) if s.code() == Some(3)));
        assert_eq!(run.stderr, "said\n");
    }

    #[test]
    fn a_quiet_child_is_cut_off_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The grandchild stands for ssh or curl: it must go too.
        let script = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let run = run(
            Command::new("sh").args(["-c", &script]),
            limits(300, 60_000),
        )
        .unwrap();
        assert_eq!(run.ended, Ended::Quiet);
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Gone, or dead and waiting for init to reap it, once the kernel has delivered SIGKILL.
        let dead = || {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            let stat = stat.unwrap_or_default();
            let state = stat.rsplit(") ").next().unwrap_or_default();
            state.is_empty() || state.starts_with('Z')
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dead() {
            assert!(Instant::now() < deadline, "the grandchild outlived the cut");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_chatty_child_is_cut_off_at_the_overall_limit() {
        let run = run(
            Command::new("sh").args(["-c", "while :; do echo tick >&2; sleep 0.05; done"]),
            limits(5_000, 400),
        )
        .unwrap();
        assert_eq!(run.ended, Ended::Overall);
        assert!(run.stderr.starts_with("tick\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_ends_a_running_child() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let script = format!("touch {}; exec sleep 600", marker.display());
        let (stop, handle) = Stop::new(Duration::ZERO);
        let task = tokio::spawn(with_stop(stop, async move {
            tokio::task::block_in_place(|| {
                run(
                    Command::new("sh").args(["-c", &script]),
                    limits(60_000, 60_000),
                )
            })
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "the child did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let asked = Instant::now();
        handle.request();
        let run = task.await.unwrap().unwrap();
        assert_eq!(run.ended, Ended::Stopped);
        assert!(asked.elapsed() < KILL_GRACE, "{:?}", asked.elapsed());
    }

    #[test]
    fn long_output_keeps_its_start_and_its_end() {
        let mut kept = Kept::default();
        kept.push(b"first line\n");
        for _ in 0..20_000 {
            kept.push(b"progress 50%\r");
        }
        kept.push(b"fatal: the end\n");
        let text = kept.text();
        assert!(text.starts_with("first line\n"));
        assert!(text.contains("[…]"));
        assert!(text.ends_with("fatal: the end\n"));
        assert!(text.len() <= HEAD + TAIL + 8);
    }
}
