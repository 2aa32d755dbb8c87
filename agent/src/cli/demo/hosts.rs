//! The demo's hosts: one `shoal agent` process each, on 127.0.0.1, with its own config, data
//! directory, files root and log, gossiping as one mesh. Addresses are read from the agents'
//! own JSON log lines (the kernel picks the agents' ports; `free_ports` picks the hello-apps').

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::workspace::{APPLICATION, Workspace};
use super::{DemoError, failed};
use crate::execute::deployment::DeploymentRecord;

/// The group every host belongs to.
pub const GROUP: &str = "web";
/// The mesh's name.
pub const MESH: &str = "demo";

/// One agent.
#[derive(Debug)]
pub struct Host {
    /// Its node id.
    pub id: String,
    /// Its status endpoint.
    pub status: SocketAddr,
    /// Where it gossips.
    pub gossip: SocketAddr,
    /// Its config file.
    pub config: PathBuf,
    /// Where it installs the example's files (`node.files_root`).
    pub files_root: PathBuf,
    /// Its data directory (`node.data_dir`).
    pub data_dir: PathBuf,
    child: Child,
}

impl Host {
    /// Starts host `id` under `<workspace>/hosts/<id>`, joining through `seed`; its
    /// hello-app will listen on `hello_port`, where the agent's health check asks it.
    pub async fn start(
        workspace: &Workspace,
        id: &str,
        seed: Option<SocketAddr>,
        bin_dir: &Path,
        hello_port: u16,
    ) -> Result<Host, DemoError> {
        let home = workspace.root.join("hosts").join(id);
        let files_root = home.join("root");
        fs::create_dir_all(&files_root)
            .map_err(failed(format!("cannot create {}", files_root.display())))?;
        let quoted =
            |path: &Path| serde_json::to_string(&path.display().to_string()).unwrap_or_default();
        let seeds = seed.map(|s| format!("\"{s}\"")).unwrap_or_default();
        let config = home.join("agent.yaml");
        let text = format!(
            "# {id} of `shoal demo`: one of five agents on this machine.\n\
             node: {{ id: {id}, data_dir: {data}, files_root: {root}, shutdown_grace: 5s }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: info }}\n\
             mesh: {{ name: {MESH}, listen: 127.0.0.1:0, seeds: [{seeds}], interval: 200ms, key_file: {key} }}\n\
             groups:\n\
             \x20 - name: {GROUP}\n\
             \x20   application: {APPLICATION}\n\
             \x20   channel: {{ git: {{ url: {repo}, tags: \"v*\", poll: 1s }} }}\n\
             \x20   allowed_signers: {signers}\n\
             \x20   health: {{ http: \"http://127.0.0.1:{hello_port}/health\", interval: 250ms, timeout: 2s }}\n\
             \x20   kill_grace: 2s\n",
            data = quoted(&home.join("data")),
            root = quoted(&files_root),
            key = quoted(&workspace.gossip_key),
            repo = quoted(&workspace.repo),
            signers = quoted(&workspace.allowed_signers),
        );
        fs::write(&config, text).map_err(failed(format!("cannot write {}", config.display())))?;
        let log = home.join("agent.log");
        let output =
            File::create(&log).map_err(failed(format!("cannot create {}", log.display())))?;
        let errors = output
            .try_clone()
            .map_err(failed(format!("cannot open {}", log.display())))?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin_dir.to_owned()).chain(std::env::split_paths(&path)),
        )
        .map_err(failed(format!("cannot put {} on PATH", bin_dir.display())))?;
        let mut child = Command::new(bin_dir.join("shoal"))
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .env("PATH", path)
            // Each host's hello-app listens on a port of its own.
            .env("HELLO_PORT", hello_port.to_string())
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            // Its own process group: a Ctrl-C at the terminal reaches the demo, which stops
            // the agents itself (or leaves them running with --keep).
            .process_group(0)
            .spawn()
            .map_err(failed(format!("cannot start the agent {id}")))?;
        let started = wait_for_log(&mut child, &log, id).await;
        let (status, gossip) = match started {
            Ok(addrs) => addrs,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Host {
            id: id.to_owned(),
            status,
            gossip,
            config,
            files_root,
            data_dir: home.join("data"),
            child,
        })
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The hello-app server's pid and port on this host, when it runs.
    pub fn hello(&self) -> Option<(u32, u16)> {
        let run = self.files_root.join("run/hello-app");
        let read = |name: &str| fs::read_to_string(run.join(name)).ok();
        Some((
            read("pid")?.trim().parse().ok()?,
            read("port")?.trim().parse().ok()?,
        ))
    }

    /// This host's deployment records of the group, oldest first.
    pub fn records(&self) -> Vec<DeploymentRecord> {
        let dir = self.data_dir.join("deployment-root").join(GROUP);
        let mut records: Vec<DeploymentRecord> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| DeploymentRecord::load(&entry.path()).ok().flatten())
            .collect();
        records.sort_by_key(|r| r.started_at_ms);
        records
    }

    /// The last line a script of deployment `id` wrote to stderr.
    pub fn last_stderr(&self, id: &str) -> Option<String> {
        let dir = self.data_dir.join("deployment-root").join(GROUP).join(id);
        let log = fs::read_to_string(crate::execute::layout::Layout::scripts_log(&dir)).ok()?;
        log.lines()
            .rev()
            .find_map(|line| Some(line.split_once("[stderr] ")?.1.to_owned()))
    }

    /// Whether the agent process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the agent to stop (SIGTERM).
    pub fn terminate(&self) {
        let agent = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(agent, nix::sys::signal::Signal::SIGTERM);
    }

    /// Stops the agent (SIGTERM, SIGKILL after 15 s) and then this host's hello-app server.
    pub async fn stop(mut self) {
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.exited() && Instant::now() < deadline {
            sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((pid, _)) = self.hello() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// `n` ports on 127.0.0.1 for the hello-apps, each free when picked and outside the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`). A port merely "free a moment ago" inside
/// that range can be taken before the hello-app binds it: by an agent's own port-0 listener, or
/// as the source port of one of the many short connections the demo makes (its status polls, the
/// health checks), which then keep it in TIME_WAIT. The kernel never hands out ports below the
/// range, so only a program binding that very port could take one. The search starts at a
/// random port so that demos side by side pick different ones.
pub fn free_ports(n: usize) -> Result<Vec<u16>, DemoError> {
    let low = ephemeral_range_start().unwrap_or(32_768);
    let span = low.saturating_sub(PRIVILEGED_END);
    if span < 1_000 {
        return ephemeral_ports(n);
    }
    let mut seed = [0u8; 2];
    getrandom::fill(&mut seed).map_err(failed("cannot pick a port at random"))?;
    let offset = u16::from_le_bytes(seed) % span;
    // Each port stays bound until all are found, so none is picked twice.
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for port in (offset..span).chain(0..offset).map(|i| PRIVILEGED_END + i) {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
            ports.push(port);
            if ports.len() == n {
                return Ok(ports);
            }
        }
    }
    Err(DemoError::Unmet(format!(
        "cannot find {n} free ports on 127.0.0.1 between {PRIVILEGED_END} and {low}"
    )))
}

/// The first port the kernel may pick for a port-0 bind or an outgoing connection.
fn ephemeral_range_start() -> Option<u16> {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Ports below 1024 need privileges.
const PRIVILEGED_END: u16 = 1024;

/// `n` ports picked by the kernel (when its ephemeral range leaves no room below it).
fn ephemeral_ports(n: usize) -> Result<Vec<u16>, DemoError> {
    let doing = "cannot find a free port on 127.0.0.1";
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed(doing))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(failed(doing))
}

/// The status and gossip addresses from the agent's first log lines, within 30 s.
async fn wait_for_log(
    child: &mut Child,
    log: &Path,
    id: &str,
) -> Result<(SocketAddr, SocketAddr), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let status = logged(&text, "status endpoint listening", "addr");
        let gossip = logged(&text, "gossip listening", "gossip.addr");
        if let (Some(status), Some(gossip)) = (status, gossip) {
            return Ok((status, gossip));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let last = text.lines().last().unwrap_or("(nothing logged)");
            return Err(DemoError::Unmet(format!(
                "the agent {id} exited ({status}) before listening: {last} (log: {})",
                log.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(DemoError::Unmet(format!(
                "the agent {id} did not start listening within 30 s (log: {})",
                log.display()
            )));
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// `field` of the first JSON log line whose message is `message`, as an address.
fn logged(text: &str, message: &str, field: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = entry.get("fields")?;
        if fields.get("message")?.as_str()? != message {
            return None;
        }
        fields.get(field)?.as_str()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    /// The hello-apps' ports are distinct, free, and where no port-0 bind or outgoing
    /// connection of this machine can take them.
    #[test]
    fn hello_ports_are_free_and_below_the_ephemeral_range() {
        let low = ephemeral_range_start().unwrap();
        let ports = free_ports(5).unwrap();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "{ports:?}");
        for port in ports {
            assert!(
                (PRIVILEGED_END..low).contains(&port),
                "{port} (range from {low})"
            );
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
