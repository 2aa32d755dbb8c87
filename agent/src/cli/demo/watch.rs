//! Watching the demo's hosts: every 100 ms each agent's `GET /v1/status`, shown as a table that
//! redraws on a terminal or as one line per change otherwise, and checked by the story.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt as _;
use shoal_shared::status::{GroupStatus, NodeStatus, Phase};
use tokio::time::Instant;

use super::DemoError;
use super::hosts::{GROUP, Host};

/// How often the hosts are asked.
const EVERY: Duration = Duration::from_millis(100);

/// One host's group as last seen.
#[derive(Debug, Clone)]
pub struct View {
    /// The host.
    pub host: String,
    /// Its group, when it answered.
    pub group: Option<GroupStatus>,
}

impl View {
    /// The revision the host runs.
    pub fn current(&self) -> Option<&str> {
        self.group.as_ref()?.current_revision.as_deref()
    }
}

/// What the watcher draws on.
pub struct Watch {
    started: Instant,
    tty: bool,
    drawn: usize,
    seen: HashMap<String, String>,
}

impl Watch {
    /// A watcher drawing on stdout (a table on a terminal, lines otherwise).
    pub fn new(started: Instant) -> Watch {
        Watch {
            started,
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            seen: HashMap::new(),
        }
    }

    /// Seconds since the demo began.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Starts a chapter of the story.
    pub fn chapter(&mut self, title: &str) {
        if self.tty {
            self.drawn = 0;
            outln!();
        }
        outln!("{:5.1}s  {title}", self.elapsed());
    }

    /// Prints a note under the current chapter.
    pub fn note(&mut self, text: &str) {
        if self.tty && self.drawn > 0 {
            // Below the table, which is then drawn afresh.
            self.drawn = 0;
        }
        outln!("        {text}");
    }

    /// Asks every host until `check` says done (`Ok(true)`) or broken (`Err`), at most
    /// `timeout`; the last views when done.
    pub async fn until(
        &mut self,
        hosts: &[Host],
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[View]) -> Result<bool, DemoError>,
    ) -> Result<Vec<View>, DemoError> {
        let deadline = Instant::now() + timeout;
        loop {
            let views = snapshot(hosts).await;
            self.show(&views);
            if check(&views)? {
                return Ok(views);
            }
            if Instant::now() >= deadline {
                return Err(DemoError::Unmet(format!(
                    "{what} did not happen within {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(EVERY).await;
        }
    }

    fn show(&mut self, views: &[View]) {
        let rows: Vec<(String, String)> = views
            .iter()
            .map(|v| {
                let shown = |text: &str| crate::cli::output::shown(text).into_owned();
                (shown(&v.host), shown(&describe(v)))
            })
            .collect();
        let mut out = std::io::stdout().lock();
        if self.tty {
            if self.drawn > 0 {
                // Up to the top of the table drawn before, and clear to the end of the screen.
                let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
            }
            let _ = writeln!(
                out,
                "        {:<8} {:<9} {:<26} ROLLOUT",
                "HOST", "REVISION", "PHASE"
            );
            for (host, text) in &rows {
                let _ = writeln!(out, "        {host:<8} {text}");
            }
            self.drawn = rows.len() + 1;
        } else {
            for (host, text) in rows {
                if self.seen.get(&host) != Some(&text) {
                    let _ = writeln!(out, "{:5.1}s    {host:<8} {text}", self.elapsed());
                    self.seen.insert(host, text);
                }
            }
        }
        let _ = out.flush();
    }
}

/// One line about a host: its revision, phase and part in the rollout.
fn describe(view: &View) -> String {
    let Some(group) = &view.group else {
        return "(not answering)".to_owned();
    };
    let revision = group.current_revision.as_deref().unwrap_or("-");
    let mut phase = group.phase.as_str().to_owned();
    if let Some(event) = &group.current_event
        && group.phase != Phase::CheckingHealth
    {
        phase = format!("{phase} {event}");
    }
    let rollout = match &group.rollout {
        Some(r) if r.halted.is_some() => {
            let halt = r.halted.as_ref().map(|h| h.host.as_str()).unwrap_or("");
            format!("{} {}; halted by {halt}", r.revision, r.step)
        }
        Some(r) if r.step == "waiting" => match (&r.waiting_for, r.position) {
            (Some(why), _) => format!("{} {why}", r.revision),
            (None, Some(at)) => format!("{} waiting, #{} of {}", r.revision, at + 1, r.members),
            (None, None) => format!("{} waiting", r.revision),
        },
        Some(r) => format!("{} {}", r.revision, r.step),
        None => String::new(),
    };
    format!("{revision:<9} {phase:<26} {rollout}")
}

/// Every host's group now (hosts that do not answer within 2 s show as such).
pub async fn snapshot(hosts: &[Host]) -> Vec<View> {
    let asks = hosts.iter().map(|host| async move {
        let group = fetch_status(host.status)
            .await
            .and_then(|s| s.groups.into_iter().find(|g| g.name == GROUP));
        View {
            host: host.id.clone(),
            group,
        }
    });
    futures::future::join_all(asks).await
}

async fn fetch_status(addr: SocketAddr) -> Option<NodeStatus> {
    fetch(addr, "/v1/status").await
}

/// `GET path` from an agent, decoded, within 2 s.
pub async fn fetch<T: serde::de::DeserializeOwned>(addr: SocketAddr, path: &str) -> Option<T> {
    serde_json::from_slice(&fetch_bytes(addr, path).await?).ok()
}

/// `GET path` from `addr` as text, within 2 s.
pub async fn fetch_text(addr: SocketAddr, path: &str) -> Option<String> {
    String::from_utf8(fetch_bytes(addr, path).await?.to_vec()).ok()
}

async fn fetch_bytes(addr: SocketAddr, path: &str) -> Option<bytes::Bytes> {
    let ask = async {
        let response = crate::net::get(addr, &addr.to_string(), path).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        Some(response.into_body().collect().await.ok()?.to_bytes())
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}
