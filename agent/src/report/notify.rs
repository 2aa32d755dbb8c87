//! Lifecycle notes to systemd (`Type=notify`): READY once serving, STATUS lines as the agent
//! works, STOPPING at shutdown. A datagram to `$NOTIFY_SOCKET` (a path, or `@name` for an
//! abstract socket); nothing at all when the variable is unset.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

/// The environment variable systemd sets for services of `Type=notify`.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where notifications go; `None` sends nothing.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET` as it is now (read once; later changes are not seen).
    pub fn from_env() -> Self {
        Self::new(std::env::var(NOTIFY_SOCKET).ok())
    }

    /// A notifier for `socket`: a path, or `@name` for an abstract socket; `None` or an empty
    /// string sends nothing.
    pub fn new(socket: Option<String>) -> Self {
        Self {
            socket: socket.filter(|s| !s.is_empty()),
        }
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends `state` (newline-separated `KEY=value` assignments) as one datagram. Does not block:
    /// a full socket buffer is an error.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let addr = address(socket)?;
        let sender = UnixDatagram::unbound()?;
        sender.set_nonblocking(true)?;
        let sent = sender.send_to_addr(state.as_bytes(), &addr)?;
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {sent} of {} bytes reached {socket}", state.len()),
            ));
        }
        Ok(())
    }

    /// `READY=1`: startup is done.
    pub fn ready(&self) {
        self.send_or_warn("READY=1");
    }

    /// `STATUS=text`, shown by `systemctl status` (line breaks become spaces).
    pub fn status(&self, text: &str) {
        let line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.send_or_warn(&format!("STATUS={line}"));
    }

    /// `RELOADING=1`: the config is being read again; [`Self::ready`] follows.
    pub fn reloading(&self) {
        self.send_or_warn("RELOADING=1");
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send_or_warn("STOPPING=1");
    }

    fn send_or_warn(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(
                socket = self.socket.as_deref().unwrap_or_default(),
                error = %e,
                "cannot notify systemd"
            );
        }
    }
}

/// The socket address `$NOTIFY_SOCKET` names.
fn address(socket: &str) -> io::Result<SocketAddr> {
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if socket.starts_with('/') {
        SocketAddr::from_pathname(PathBuf::from(socket))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{NOTIFY_SOCKET}={socket} is neither an absolute path nor an @abstract name"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0; 512];
        let n = socket.recv(&mut buf).expect("recv");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_status_and_stopping_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier::new(Some(path.display().to_string()));
        assert!(notifier.is_enabled());
        notifier.ready();
        notifier.status("deploying v1.2.0\nto web");
        notifier.stopping();
        assert_eq!(receive(&systemd), "READY=1");
        assert_eq!(receive(&systemd), "STATUS=deploying v1.2.0 to web");
        assert_eq!(receive(&systemd), "STOPPING=1");
    }

    #[test]
    fn an_abstract_socket_is_named_with_an_at() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("shoal-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("from_abstract_name");
        let systemd = UnixDatagram::bind_addr(&addr).expect("bind_addr");
        Notifier::new(Some(format!("@{name}")))
            .notify("READY=1")
            .expect("notify");
        assert_eq!(receive(&systemd), "READY=1");
    }

    #[test]
    fn nothing_is_sent_without_a_socket() {
        for socket in [None, Some(String::new())] {
            let notifier = Notifier::new(socket);
            assert!(!notifier.is_enabled());
            notifier.notify("READY=1").expect("notify");
        }
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("gone.sock");
        let error = Notifier::new(Some(gone.display().to_string()))
            .notify("READY=1")
            .expect_err("an error");
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
        let relative = Notifier::new(Some("relative.sock".into()))
            .notify("READY=1")
            .expect_err("an error");
        assert!(
            relative.to_string().contains("NOTIFY_SOCKET=relative.sock"),
            "{relative}"
        );
    }
}
