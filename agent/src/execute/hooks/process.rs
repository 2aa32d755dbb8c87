//! A running script's process group and output: stopping the group (SIGTERM, grace, SIGKILL),
//! the guard that kills an abandoned run, and the tasks that log its lines.

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};
use tracing::warn;

use super::*;
use crate::execute::scripts_log::{ScriptsLog, Stream};
use crate::stop::Stop;

/// How waiting for a script ended.
pub(super) enum Waited {
    /// It exited (or waiting failed).
    Exited(io::Result<ExitStatus>),
    /// Its timeout passed first.
    TimedOut,
    /// A stop was asked for and the script outlived the grace (which is given).
    Stopped(Duration),
}

/// Waits for the script until `deadline`, or until a stop's grace runs out.
pub(super) async fn wait(child: &mut Child, deadline: Instant, stop: Option<&Stop>) -> Waited {
    let mut stop = stop.cloned();
    let stop_requested = async {
        match stop.as_mut() {
            Some(stop) => {
                stop.requested().await;
                stop.grace()
            }
            None => std::future::pending().await,
        }
    };
    let grace = tokio::select! {
        status = child.wait() => return Waited::Exited(status),
        () = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
        grace = stop_requested => grace,
    };
    let until = (Instant::now() + grace).min(deadline);
    match tokio::time::timeout_at(until, child.wait()).await {
        Ok(status) => Waited::Exited(status),
        Err(_) if until == deadline => Waited::TimedOut,
        Err(_) => Waited::Stopped(grace),
    }
}

/// `SIGTERM` to the group, up to `grace` for it to go, then `SIGKILL`; reaps the script.
pub(super) async fn stop_group(
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

pub(super) fn group_alive(pgid: Pid) -> bool {
    crate::execute::procs::group_running(pgid.as_raw())
}

pub(super) fn signal_group(pgid: Pid, signal: Signal) {
    if let Err(errno) = killpg(pgid, signal)
        && errno != Errno::ESRCH
    {
        warn!(pid = pgid.as_raw(), %signal, %errno, "could not signal process group");
    }
}

pub(super) fn describe(status: ExitStatus) -> String {
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
pub(super) struct GroupGuard(pub(super) Option<Pid>);

impl GroupGuard {
    pub(super) fn disarm(&mut self) {
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
pub(super) struct Recorder<'a> {
    pub(super) log: &'a ScriptsLog,
    pub(super) event: &'a str,
    pub(super) location: &'a str,
    pub(super) error: Mutex<Option<io::Error>>,
}

impl Recorder<'_> {
    pub(super) fn line(&self, stream: Stream, text: &str) {
        if let Err(error) = self.log.line(self.event, self.location, stream, text) {
            let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert(error);
        }
    }

    pub(super) fn shoal(&self, text: &str) {
        self.line(Stream::Shoal, text);
    }

    pub(super) fn check(&self) -> Result<(), HookError> {
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
pub(super) struct Output {
    pub(super) lines_rx: mpsc::Receiver<(Stream, String)>,
    pub(super) open: bool,
}

impl Output {
    /// Runs `work` to completion while logging whatever output arrives meanwhile.
    pub(super) async fn log_while<F: Future>(
        &mut self,
        record: &Recorder<'_>,
        work: F,
    ) -> F::Output {
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
    pub(super) async fn drain(&mut self, record: &Recorder<'_>, grace: Duration) -> bool {
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
