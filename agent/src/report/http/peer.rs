//! Who sent a request to the status endpoint: a TCP peer by its address, or root on this host
//! over the control socket, as the kernel vouches for it (`SO_PEERCRED`).

use std::fmt;
use std::net::SocketAddr;

use tokio::net::{UnixListener, UnixStream};

/// Who sent a request.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// A client at this TCP address.
    Tcp(SocketAddr),
    /// A process of root (the agent's own user) on this host, over the control socket, as
    /// the kernel vouches (`SO_PEERCRED`).
    Root {
        /// Its process id.
        pid: Option<i32>,
    },
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Root { pid: Some(pid) } => write!(f, "control socket (pid {pid})"),
            Self::Root { pid: None } => f.write_str("control socket"),
        }
    }
}

/// The next connection on the control socket; never, without one.
pub(super) async fn accept_control(control: Option<&UnixListener>) -> std::io::Result<UnixStream> {
    match control {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// The peer of a control connection when the kernel says it runs as this agent's user
/// (root); `None` (and the connection dropped) otherwise. The socket is 0600 in the 0700
/// data directory, so only root reaches it; this checks that no one loosened either.
pub(super) fn root_peer(stream: &UnixStream) -> Option<Peer> {
    let me = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => Some(Peer::Root { pid: cred.pid() }),
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), pid = ?cred.pid(), "control socket connection from another user refused");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "control socket connection without credentials refused");
            None
        }
    }
}
