//! SIGTERM and SIGINT as one future, the start of the agent's single shutdown path; SIGHUP,
//! the reload of its config.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The installed handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// What a signal asks of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Stop (SIGTERM or SIGINT, named).
    Stop(&'static str),
    /// Read the config again (SIGHUP).
    Reload,
}

impl Signals {
    /// Installs the handlers; from here on SIGTERM, SIGINT and SIGHUP no longer kill the
    /// process.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Asked {
        tokio::select! {
            _ = self.term.recv() => Asked::Stop("SIGTERM"),
            _ = self.int.recv() => Asked::Stop("SIGINT"),
            _ = self.hup.recv() => Asked::Reload,
        }
    }
}
