//! `git daemon` serving a directory over `git://` on a free port of 127.0.0.1, for channels
//! that must be remote (polled, not watched); killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::command::clean;
use crate::poll_until;

/// A running `git daemon --export-all`.
#[derive(Debug)]
pub struct GitDaemon {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl GitDaemon {
    /// Serves every repository under `base` (`git://ADDR/<path under base>`), running from
    /// `cwd` with a clean environment.
    pub fn serve(cwd: &Path, base: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
            .port();
        let child = clean("git", cwd)
            .args([
                "daemon",
                "--export-all",
                "--reuseaddr",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start git daemon: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        poll_until(Duration::from_secs(10), || TcpStream::connect(addr).ok())
            .unwrap_or_else(|| panic!("git daemon does not listen on {addr} within 10 s"));
        GitDaemon { child, addr }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
