//! Health checks: a probe (a command's exit code, or an HTTP answer's status) and the window
//! after ValidateService in which it must pass continuously for `min_healthy_time`.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt as _;

use crate::config::{HealthCheck, Probe};
use crate::net::GetError;

/// Why one probe did not pass, in the sentence the health window and the logs show. The cause
/// is part of the sentence.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The command could not be started.
    #[error("cannot run `{command}`: {error}")]
    Spawn {
        /// The command as configured.
        command: String,
        /// Why it could not start.
        error: io::Error,
    },
    /// The command ran past the check's timeout and was killed.
    #[error("`{command}` did not finish within {} s", timeout.as_secs_f64())]
    CommandTimeout {
        /// The command as configured.
        command: String,
        /// The check's timeout.
        timeout: Duration,
    },
    /// The command's end could not be waited for.
    #[error("lost track of `{command}`: {error}")]
    Wait {
        /// The command as configured.
        command: String,
        /// Why.
        error: io::Error,
    },
    /// The command ended unsuccessfully.
    #[error("`{command}` {}", crate::execute::procs::failed_command(*status, stderr))]
    Failed {
        /// The command as configured.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of what it wrote to stderr (its last 200 characters), trimmed.
        stderr: String,
    },
    /// The URL did not answer within the check's timeout.
    #[error("{url} did not answer within {} s", timeout.as_secs_f64())]
    HttpTimeout {
        /// The URL as configured.
        url: String,
        /// The check's timeout.
        timeout: Duration,
    },
    /// The URL could not be asked.
    #[error("{url}: {error}")]
    Request {
        /// The URL as configured.
        url: String,
        /// Why.
        error: RequestError,
    },
    /// The answer's status is not 2xx.
    #[error("{url} answered {status}")]
    Status {
        /// The URL as configured.
        url: String,
        /// The status it answered.
        status: u16,
    },
}

/// Why an `http:` probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The URL does not parse (config checks it; kept for safety).
    #[error("{0}")]
    Url(url::ParseError),
    /// The URL names no host.
    #[error("no host")]
    NoHost,
    /// The request failed.
    #[error("{0}")]
    Get(GetError),
}

/// What the window says after one more probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep probing.
    Continue,
    /// Healthy for `min_healthy_time`: the host counts as done.
    Healthy,
    /// The deployment fails, for this reason.
    Failed(String),
}

/// The health window of one deployment: every probe must pass, and the passes must span
/// `min_healthy_time` before `healthy_deadline`.
#[derive(Debug, Clone)]
pub struct Window {
    min_healthy: Duration,
    deadline: Duration,
    passing_since: Option<Duration>,
}

impl Window {
    /// A window needing `min_healthy` of passes within `deadline`.
    pub fn new(min_healthy: Duration, deadline: Duration) -> Self {
        Self {
            min_healthy,
            deadline,
            passing_since: None,
        }
    }

    /// Takes the probe result seen `elapsed` after the window opened.
    pub fn observe(&mut self, elapsed: Duration, result: &Result<(), ProbeError>) -> Verdict {
        if let Err(why) = result {
            return Verdict::Failed(format!(
                "health check failed {} s into the {} s min_healthy_time: {why}",
                elapsed.as_secs(),
                self.min_healthy.as_secs()
            ));
        }
        let since = *self.passing_since.get_or_insert(elapsed);
        if elapsed.saturating_sub(since) >= self.min_healthy {
            Verdict::Healthy
        } else if elapsed >= self.deadline {
            Verdict::Failed(format!(
                "not healthy for min_healthy_time ({} s) within healthy_deadline ({} s)",
                self.min_healthy.as_secs(),
                self.deadline.as_secs()
            ))
        } else {
            Verdict::Continue
        }
    }
}

/// Runs the probe once, within its timeout.
pub async fn probe(check: &HealthCheck, env: &[(String, String)]) -> Result<(), ProbeError> {
    match &check.probe {
        Probe::Command(command) => run_command(command, env, check.timeout).await,
        Probe::Http(url) => http_status(url, check.timeout).await,
    }
}

async fn run_command(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(), ProbeError> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| ProbeError::Spawn {
            command: command.to_owned(),
            error,
        })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut stderr = child.stderr.take();
    let waited = tokio::time::timeout(timeout, async {
        let mut text = Vec::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = stderr.take(64 * 1024).read_to_end(&mut text).await;
        }
        (child.wait().await, text)
    })
    .await;
    let Ok((status, text)) = waited else {
        if let Some(pgid) = pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        return Err(ProbeError::CommandTimeout {
            command: command.to_owned(),
            timeout,
        });
    };
    let status = status.map_err(|error| ProbeError::Wait {
        command: command.to_owned(),
        error,
    })?;
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&text);
    let said = said.trim();
    let tail: String = said
        .chars()
        .rev()
        .take(200)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(ProbeError::Failed {
        command: command.to_owned(),
        status,
        stderr: tail,
    })
}

async fn http_status(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let answer = tokio::time::timeout(timeout, get_status(url)).await;
    match answer {
        Err(_) => Err(ProbeError::HttpTimeout {
            url: url.to_owned(),
            timeout,
        }),
        Ok(Err(error)) => Err(ProbeError::Request {
            url: url.to_owned(),
            error,
        }),
        Ok(Ok(status)) if (200..300).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(ProbeError::Status {
            url: url.to_owned(),
            status,
        }),
    }
}

async fn get_status(url: &str) -> Result<u16, RequestError> {
    let parsed = url::Url::parse(url).map_err(RequestError::Url)?;
    let host = parsed.host_str().ok_or(RequestError::NoHost)?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let path = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let response = crate::net::get((host, port), host, &path)
        .await
        .map_err(RequestError::Get)?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn passes_spanning_min_healthy_time_make_the_host_healthy() {
        let mut window = Window::new(secs(10), secs(300));
        assert_eq!(window.observe(secs(0), &Ok(())), Verdict::Continue);
        assert_eq!(window.observe(secs(5), &Ok(())), Verdict::Continue);
        assert_eq!(window.observe(secs(10), &Ok(())), Verdict::Healthy);
    }

    #[test]
    fn one_failure_in_the_window_fails_the_deployment() {
        let mut window = Window::new(secs(10), secs(300));
        assert_eq!(window.observe(secs(0), &Ok(())), Verdict::Continue);
        let failed = ProbeError::Failed {
            command: "check".into(),
            status: ExitStatus::from_raw(1 << 8),
            stderr: String::new(),
        };
        let verdict = window.observe(secs(5), &Err(failed));
        assert!(
            matches!(&verdict, Verdict::Failed(why) if why.ends_with(": `check` exited with code 1")),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_deadline_shorter_than_the_window_fails() {
        let mut window = Window::new(secs(10), secs(6));
        assert_eq!(window.observe(secs(0), &Ok(())), Verdict::Continue);
        let verdict = window.observe(secs(6), &Ok(()));
        assert!(matches!(verdict, Verdict::Failed(why) if why.contains("healthy_deadline")));
    }

    #[test]
    fn zero_min_healthy_time_needs_one_pass() {
        let mut window = Window::new(Duration::ZERO, secs(6));
        assert_eq!(window.observe(secs(0), &Ok(())), Verdict::Healthy);
    }

    fn command(text: &str, timeout: Duration) -> HealthCheck {
        HealthCheck {
            probe: Probe::Command(text.into()),
            interval: secs(1),
            timeout,
        }
    }

    #[tokio::test]
    async fn a_command_probe_reports_exit_codes_output_and_hangs() {
        let passed = probe(&command("exit 0", secs(5)), &[]).await;
        assert!(passed.is_ok(), "{passed:?}");
        let failed = probe(&command("echo db down >&2; exit 3", secs(5)), &[])
            .await
            .expect_err("exit 3")
            .to_string();
        assert!(failed.contains("exited with code 3: db down"), "{failed}");
        let env = [("SHOAL_REVISION".to_owned(), "v2".to_owned())];
        let seen = probe(&command("test \"$SHOAL_REVISION\" = v2", secs(5)), &env).await;
        assert!(seen.is_ok(), "{seen:?}");
        let hung = probe(&command("sleep 30", Duration::from_millis(200)), &[])
            .await
            .expect_err("hangs")
            .to_string();
        assert!(hung.contains("did not finish within 0.2 s"), "{hung}");
    }

    /// A one-connection-at-a-time server answering every request with `status`.
    fn answering(status: &'static str) -> std::net::SocketAddr {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        addr
    }

    fn http(url: String) -> HealthCheck {
        HealthCheck {
            probe: Probe::Http(url),
            interval: secs(1),
            timeout: secs(5),
        }
    }

    #[tokio::test]
    async fn an_http_probe_needs_a_2xx() {
        let ok = answering("204 No Content");
        let passed = probe(&http(format!("http://{ok}/health?deep=1")), &[]).await;
        assert!(passed.is_ok(), "{passed:?}");
        let failing = answering("503 Service Unavailable");
        let said = probe(&http(format!("http://{failing}/health")), &[])
            .await
            .expect_err("503")
            .to_string();
        assert!(said.ends_with("answered 503"), "{said}");
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let refused = probe(&http(format!("http://{closed}/health")), &[])
            .await
            .expect_err("closed port")
            .to_string();
        assert!(refused.contains("cannot connect"), "{refused}");
    }
}
