//! moto_server, an in-memory S3, as a test fixture: started from the `.venv` that
//! `scripts/test.sh` installs, on a free port, ready once it answers HTTP, killed on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::{http, poll_until, workspace_root};

/// How long moto may take to answer its first request (it is usually ready in half a second).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts tried before giving up: a start fails early when another process takes the free port
/// between its release here and moto's bind.
const ATTEMPTS: usize = 3;

/// A running moto_server on 127.0.0.1. It accepts any credentials and unsigned requests.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

enum Start {
    Ready,
    Exited(ExitStatus),
}

impl MotoServer {
    /// Starts `<workspace>/.venv/bin/moto_server -H 127.0.0.1 -p PORT` on a free port and waits
    /// until it answers `GET /`. Panics, with moto's output, if it does not.
    pub fn start() -> MotoServer {
        let bin = workspace_root().join(".venv/bin/moto_server");
        if !bin.is_file() {
            panic!(
                "moto_server is not installed at {}: run scripts/test.sh once, which installs it",
                bin.display()
            );
        }
        let mut failures = String::new();
        for _ in 0..ATTEMPTS {
            let mut server = spawn(&bin, free_local_addr());
            match server.wait_until_ready() {
                Some(Start::Ready) => return server,
                Some(Start::Exited(status)) => {
                    failures.push_str(&format!(
                        "on {} it exited with {status}:\n{}\n",
                        server.addr,
                        server.log()
                    ));
                }
                None => panic!(
                    "moto_server on {} did not answer within {READY_TIMEOUT:?}; its output:\n{}",
                    server.addr,
                    server.log()
                ),
            }
        }
        panic!("moto_server did not start in {ATTEMPTS} attempts:\n{failures}")
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL, `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL` or an S3 client's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment an S3 client in a child process needs to reach this server: test
    /// credentials, region `us-east-1`, the endpoint, and plain HTTP allowed. Pass it to the
    /// child (`Command::envs`) rather than setting it on the test process.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// Creates bucket `name` with an unsigned `PUT /name`; panics unless moto answers 200.
    pub fn create_bucket(&self, name: &str) {
        self.expect_ok("PUT", &format!("/{name}"), b"");
    }

    /// Turns versioning on for bucket `name` (an unsigned `PUT /name?versioning`).
    pub fn enable_versioning(&self, name: &str) {
        self.expect_ok(
            "PUT",
            &format!("/{name}?versioning"),
            b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
              <Status>Enabled</Status></VersioningConfiguration>",
        );
    }

    /// Stores `content` at `bucket/key` with an unsigned `PUT`, as another publisher would.
    pub fn put_object(&self, bucket: &str, key: &str, content: &[u8]) {
        self.expect_ok("PUT", &format!("/{bucket}/{key}"), content);
    }

    /// What moto printed so far (its request log); useful in a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn expect_ok(&self, method: &str, path: &str, body: &[u8]) {
        match http::request(self.addr, method, path, body) {
            Ok(reply) if reply.status == 200 => {}
            Ok(reply) => panic!("{method} {path} got {}: {}", reply.status, reply.body),
            Err(e) => panic!("{method} {path} to moto at {} failed: {e}", self.addr),
        }
    }

    fn wait_until_ready(&mut self) -> Option<Start> {
        let addr = self.addr;
        poll_until(READY_TIMEOUT, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Start::Exited(status));
            }
            match http::request(addr, "GET", "/", b"") {
                Ok(reply) if reply.status == 200 => Some(Start::Ready),
                _ => None,
            }
        })
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("moto_server's output is kept in {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Spawns moto on `addr`, its stdout and stderr going to a log file in the temporary folder.
fn spawn(bin: &Path, addr: SocketAddr) -> MotoServer {
    let log = std::env::temp_dir().join(format!(
        "shoal-moto-{}-{}.log",
        std::process::id(),
        addr.port()
    ));
    let out = File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    MotoServer { child, addr, log }
}

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0, then released.
fn free_local_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"))
}
