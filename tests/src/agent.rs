//! A real `shoal agent` process for end-to-end tests: started on a config whose status
//! endpoint listens on port 0 and logs JSON, so the bound address is read from its own log;
//! queried over HTTP; stopped with a signal or `kill -9`.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::http::{self, Reply};
use crate::poll_until;

/// How long an agent may take to bind its status endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running agent; killed with SIGKILL when dropped.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// Where this run's lines start in the log.
    log_offset: u64,
}

impl AgentProcess {
    /// Starts `bin agent --config config` with stderr appended to `log` and `env` added to a
    /// clean environment, and waits until it says where its status endpoint listens. The config
    /// must set `log: { format: json }`.
    pub fn start(bin: &Path, config: &Path, log: &Path, env: &[(String, String)]) -> AgentProcess {
        let offset = std::fs::metadata(log).map_or(0, |m| m.len());
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(bin)
            .arg("agent")
            .arg("--config")
            .arg(config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", config.parent().unwrap_or(Path::new("/")))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut agent = AgentProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: log.to_owned(),
            log_offset: offset,
        };
        let found = poll_until(START_TIMEOUT, || {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!(
                    "the agent exited with {status} before listening:\n{}",
                    agent.log_text()
                );
            }
            listening_addr(&agent.log, offset)
        });
        agent.addr = found.unwrap_or_else(|| {
            panic!(
                "the agent did not listen within {START_TIMEOUT:?}:\n{}",
                agent.log_text()
            )
        });
        agent
    }

    /// Where the status endpoint listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where this run of the agent gossips, from its "gossip listening" log line.
    pub fn gossip_addr(&self) -> SocketAddr {
        let found = poll_until(START_TIMEOUT, || {
            logged_field(
                &self.log,
                self.log_offset,
                "gossip listening",
                "gossip.addr",
            )?
            .parse()
            .ok()
        });
        found.unwrap_or_else(|| {
            panic!(
                "the agent did not log its gossip address:\n{}",
                self.log_text()
            )
        })
    }

    /// Where this run of the agent serves releases to its peers, from its log.
    pub fn share_addr(&self) -> SocketAddr {
        let found = poll_until(START_TIMEOUT, || {
            logged_field(
                &self.log,
                self.log_offset,
                "serving verified releases to the mesh's members",
                "share.addr",
            )?
            .parse()
            .ok()
        });
        found.unwrap_or_else(|| {
            panic!(
                "the agent did not log where it serves releases:
{}",
                self.log_text()
            )
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` on the status endpoint.
    pub fn get(&self, path: &str) -> std::io::Result<Reply> {
        http::request(self.addr, "GET", path, b"")
    }

    /// `GET /v1/status` as JSON.
    pub fn status(&self) -> Value {
        let reply = self
            .get("/v1/status")
            .unwrap_or_else(|e| panic!("GET /v1/status: {e}\n{}", self.log_text()));
        serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("/v1/status is not JSON ({e}): {}", reply.body))
    }

    /// Polls `/v1/status` until `done` holds, or panics after `timeout` with `what`, the last
    /// status and the agent's log.
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let found = poll_until(timeout, || {
            let reply = self.get("/v1/status").ok()?;
            last = serde_json::from_str(&reply.body).ok()?;
            done(&last).then(|| last.clone())
        });
        found.unwrap_or_else(|| {
            panic!(
                "{what}: not within {timeout:?}\nlast status: {}\nagent log:\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default(),
                self.log_text()
            )
        })
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) with the real `kill`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {} failed", self.child.id());
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, || self.child.try_wait().ok().flatten())
    }

    /// Everything the agent has logged (to this log file).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the first "status endpoint listening" JSON log line after `offset`.
fn listening_addr(log: &Path, offset: u64) -> Option<SocketAddr> {
    logged_field(log, offset, "status endpoint listening", "addr")?
        .parse()
        .ok()
}

/// `field` of the first JSON log line after `offset` whose message is `message`.
fn logged_field(log: &Path, offset: u64, message: &str, field: &str) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.lines().find_map(|line| {
        let entry: Value = serde_json::from_str(line).ok()?;
        let fields = entry.get("fields")?;
        if fields.get("message")?.as_str()? != message {
            return None;
        }
        fields.get(field)?.as_str().map(str::to_owned)
    })
}
