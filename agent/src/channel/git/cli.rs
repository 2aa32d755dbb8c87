//! Fetching from a remote repository with the `git` program into the bare mirror that libgit2
//! then reads. git brings what operators already set up for it: OpenSSH's config, known_hosts
//! files and agent; proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`); git's own http
//! settings; protocol v2, so an idle poll asks for tags only. The fetch has timeouts and dies
//! with the agent ([`child`](super::child)); no credential appears on a command line; and a
//! failure is read into a [`FetchError`] ([`diagnose`](super::diagnose)).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64ct::{Base64, Encoding as _};

use super::cause::redact;
use super::child::{self, Ended, Limits};
use super::diagnose::{self, Attempt};
use super::failure::FetchError;
use super::source::{Endpoint, GitSource};
use super::ssh;
use super::tls::{self, Verdict};

/// The oldest git that takes configuration from `GIT_CONFIG_COUNT` (how the token reaches it).
const OLDEST_GIT: (u32, u32) = (2, 31);
/// curl ends a transfer slower than this many bytes a second for the channel's timeout.
const LOW_SPEED_LIMIT: u32 = 10;
/// Variables of the agent's environment that git still gets among its own (`GIT_*`): where
/// its CAs and client certificates are, and which config files it reads. Every other `GIT_*`
/// variable (`GIT_SSH_COMMAND`, `GIT_ASKPASS`, `GIT_CONFIG_PARAMETERS`, traces, …) is removed
/// so that nothing undoes the settings below.
const KEPT_GIT_VARIABLES: [&str; 7] = [
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_SSL_CERT",
    "GIT_SSL_KEY",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
];
/// The system's CA bundle, which curl reads unless told otherwise.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Fetches `refspecs` from `source` (a remote url) into the bare repository at `mirror`; with
/// `prune`, refs that the remote no longer has are deleted. Returns the size of the pack
/// received, as git reports it (0 when nothing was new).
pub(super) fn fetch(
    mirror: &Path,
    source: &GitSource,
    refspecs: &[&str],
    prune: bool,
) -> Result<usize, FetchError> {
    check_git()?;
    let endpoint = source.endpoint().ok_or_else(|| FetchError::Other {
        detail: format!("{} names no server", source.display_url()),
    })?;
    let credentials = Credentials::of(source, &endpoint)?;
    let attempt = Attempt {
        host: endpoint.host.clone(),
        port: endpoint.port,
        url: source.display_url(),
        token_file: credentials.as_ref().and(source.token_file.clone()),
        http_user: credentials.as_ref().map(|c| c.user.clone()),
        url_password: source.url_password().is_some(),
        ssh_key: source.ssh_key.clone(),
        proxy: proxy_for(&endpoint),
    };
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(mirror)
        // What a fetch brings stays one pack, not loose objects: peers are served packs made
        // from it, which reuse its compressed objects instead of compressing them again.
        .args(["-c", "fetch.unpackLimit=1"])
        .args(["fetch", "--progress", "--no-tags"])
        .args(prune.then_some("--prune"))
        .arg("--end-of-options")
        .arg(source.url_without_password())
        .args(refspecs);
    let ssh_config = match endpoint.scheme.as_str() {
        "ssh" => Some(ssh::config_file(mirror)?),
        _ => None,
    };
    environment(
        &mut command,
        source,
        &endpoint,
        credentials.as_ref(),
        ssh_config.as_deref(),
    );
    let limits = Limits {
        quiet: source.timeout,
        overall: source.deadline(),
    };
    tracing::debug!(url = %attempt.url, "fetching with git");
    let run = child::run(&mut command, limits).map_err(|source| FetchError::Spawn { source })?;
    let mut secrets = credentials
        .as_ref()
        .map(Credentials::secrets)
        .unwrap_or_default();
    secrets.extend(source.url_password().map(str::to_owned));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let stderr = redact(&run.stderr, &secrets);
    match run.ended {
        Ended::Exited(status) if status.success() => Ok(received_bytes(&stderr)),
        // A single tag asked for by name (`shoal verify git`) that the remote does not have:
        // nothing to fetch, as libgit2 had it; the caller finds the tag missing.
        Ended::Exited(_) if stderr.contains("couldn't find remote ref refs/tags/") => Ok(0),
        Ended::Exited(status) => {
            tracing::debug!(url = %attempt.url, %status, stderr = %stderr, "git fetch failed");
            let error = diagnose::classify(&stderr, &attempt);
            Err(refine(error, &attempt, source, ssh_config.as_deref()))
        }
        Ended::Quiet => Err(FetchError::Quiet {
            server: attempt.server(),
            after: limits.quiet,
        }),
        Ended::Overall => Err(FetchError::Overall {
            server: attempt.server(),
            after: limits.overall,
        }),
        Ended::Stopped => Err(FetchError::Stopped),
    }
}

/// What is sent over https: a token (or the url's password) as basic auth.
struct Credentials {
    user: String,
    secret: String,
}

impl Credentials {
    /// The token from `token_file` (sent as `username`, else `x-access-token`), else the
    /// url's password (sent as the url's user); only to an https server.
    fn of(source: &GitSource, endpoint: &Endpoint) -> Result<Option<Self>, FetchError> {
        if !endpoint.carries_secrets() {
            return Ok(None);
        }
        if let Some(file) = &source.token_file {
            return Ok(Some(Self {
                user: source
                    .username
                    .clone()
                    .unwrap_or_else(|| "x-access-token".to_owned()),
                secret: read_token(file)?,
            }));
        }
        Ok(source.url_password().map(|password| Self {
            user: source.url_user().unwrap_or_default().to_owned(),
            secret: password.to_owned(),
        }))
    }

    /// The `Authorization` header's value.
    fn header(&self) -> String {
        let pair = format!("{}:{}", self.user, self.secret);
        format!("Basic {}", Base64::encode_string(pair.as_bytes()))
    }

    /// What must never show: the secret, and the header that carries it.
    fn secrets(&self) -> Vec<String> {
        vec![self.secret.clone(), self.header()]
    }
}

/// The token in `path`, without surrounding whitespace; errors name the file, never its text.
fn read_token(path: &Path) -> Result<String, FetchError> {
    let failed = |reason: String| FetchError::TokenFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failed("it is empty".to_owned()));
    }
    Ok(token.to_owned())
}

/// git's environment: the agent's, less the `GIT_*` variables that would change what these
/// settings mean, plus settings passed as `GIT_CONFIG_COUNT` entries (never on the command
/// line, where every local user could read a token).
fn environment(
    command: &mut Command,
    source: &GitSource,
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    ssh_config: Option<&Path>,
) {
    for (name, _) in std::env::vars_os() {
        let removed = name.to_str().is_none_or(|n| {
            (n.starts_with("GIT_") && !KEPT_GIT_VARIABLES.contains(&n))
                || n == "SSH_ASKPASS"
                || n == "LANGUAGE"
        });
        if removed {
            command.env_remove(&name);
        }
    }
    let seconds = source.timeout.as_secs().max(1);
    let mut settings: Vec<(String, String)> = [
        ("protocol.version", "2".to_owned()),
        // Credentials reach the configured server only.
        ("http.followRedirects", "false".to_owned()),
        ("http.lowSpeedLimit", LOW_SPEED_LIMIT.to_string()),
        ("http.lowSpeedTime", seconds.to_string()),
        // No helper is asked for (or told) credentials, and nothing prompts.
        ("credential.helper", String::new()),
        ("core.askPass", String::new()),
        // The mirror runs no hooks and nothing in the background after the fetch.
        ("core.hooksPath", "/dev/null".to_owned()),
        ("gc.auto", "0".to_owned()),
        ("maintenance.auto", "false".to_owned()),
        ("fetch.writeFetchHEAD", "false".to_owned()),
        ("fetch.recurseSubmodules", "false".to_owned()),
        ("transfer.bundleURI", "false".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    if let Some(credentials) = credentials {
        // Scoped to the configured server, though redirects are not followed anyway.
        let server = format!(
            "{}://{}{}/",
            endpoint.scheme,
            endpoint.host,
            endpoint.port.map(|p| format!(":{p}")).unwrap_or_default()
        );
        settings.push((
            format!("http.{server}.extraHeader"),
            format!("Authorization: {}", credentials.header()),
        ));
    }
    command.env("GIT_CONFIG_COUNT", settings.len().to_string());
    for (i, (key, value)) in settings.iter().enumerate() {
        command.env(format!("GIT_CONFIG_KEY_{i}"), key);
        command.env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", &endpoint.scheme)
        .env("LC_ALL", "C");
    if let Some(config) = ssh_config {
        command
            .env("GIT_SSH_COMMAND", ssh::command(source, config))
            .env("GIT_SSH_VARIANT", "ssh");
    }
}

/// Adds what stderr could not say: the known_hosts files ssh read, or why a certificate was
/// refused when curl did not say.
fn refine(
    error: FetchError,
    attempt: &Attempt,
    source: &GitSource,
    ssh_config: Option<&Path>,
) -> FetchError {
    match error {
        FetchError::HostKeyUnknown {
            host, key, keyscan, ..
        } => {
            let files = match (source.endpoint(), ssh_config) {
                (Some(endpoint), Some(config)) => ssh::known_hosts_files(&endpoint, config),
                _ => Vec::new(),
            };
            FetchError::HostKeyUnknown {
                host,
                key,
                files,
                keyscan,
            }
        }
        FetchError::Tls { server, detail } => {
            let port = attempt.port.unwrap_or(443);
            let looked = if attempt.proxy.is_none() {
                let cafile = detail
                    .split("CAfile: ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .filter(|file| *file != "none")
                    .map(str::to_owned)
                    .or_else(|| std::env::var("GIT_SSL_CAINFO").ok())
                    .unwrap_or_else(|| SYSTEM_CAS.to_owned());
                tls::look(&attempt.host, port, Path::new(&cafile), source.timeout)
                    .map(|verdict| (verdict, cafile))
            } else {
                None
            };
            match looked {
                Some((Verdict::Untrusted, cafile)) => FetchError::TlsUntrusted {
                    server,
                    cafile: Some(cafile),
                },
                Some((Verdict::Expired, _)) => FetchError::TlsExpired { server },
                Some((Verdict::OtherName(presented), _)) => FetchError::TlsNameMismatch {
                    server,
                    host: attempt.host.clone(),
                    presented,
                },
                None => FetchError::Tls { server, detail },
            }
        }
        other => other,
    }
}

/// The proxy curl uses for `endpoint`, as it reads the environment (credentials in the
/// proxy's url removed); `None` when none is set or `NO_PROXY` names the host.
fn proxy_for(endpoint: &Endpoint) -> Option<String> {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let proxy = match endpoint.scheme.as_str() {
        "https" => first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
        "http" => first(&["http_proxy", "all_proxy", "ALL_PROXY"]),
        _ => None,
    }?;
    let no_proxy = first(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
    let bypassed = no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('.');
        entry == "*"
            || (!entry.is_empty()
                && (endpoint.host == entry || endpoint.host.ends_with(&format!(".{entry}"))))
    });
    if bypassed {
        return None;
    }
    Some(match proxy.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => proxy.clone(),
        },
        None => proxy.rsplit('@').next().unwrap_or(&proxy).to_owned(),
    })
}

/// Checks once that `git` is there and new enough; a failure is checked again next time.
fn check_git() -> Result<(), FetchError> {
    static CHECKED: OnceLock<()> = OnceLock::new();
    if CHECKED.get().is_some() {
        return Ok(());
    }
    let output = match Command::new("git").arg("--version").output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FetchError::NoGit),
        Err(source) => return Err(FetchError::Spawn { source }),
    };
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let version = said
        .strip_prefix("git version ")
        .map(|v| v.split(['.', ' ']).map_while(|n| n.parse::<u32>().ok()));
    let (major, minor) = version
        .map(|mut numbers| (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)))
        .unwrap_or_default();
    if (major, minor) < OLDEST_GIT {
        return Err(FetchError::OldGit { found: said });
    }
    let _ = CHECKED.set(());
    Ok(())
}

/// The size of the pack received, from git's last "Receiving objects: …, 1.20 KiB" line.
fn received_bytes(stderr: &str) -> usize {
    let Some(line) = stderr
        .rsplit(['\n', '\r'])
        .find(|l| l.starts_with("Receiving objects:"))
    else {
        return 0;
    };
    let Some(size) = line.split(", ").nth(1) else {
        return 0;
    };
    let mut words = size.split_whitespace();
    let number: f64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
    let unit = match words.next() {
        Some("KiB") => 1024.0,
        Some("MiB") => 1024.0 * 1024.0,
        Some("GiB") => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    // Within usize for any pack a disk holds; the cast saturates anyway.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (number * unit) as usize;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_come_from_the_last_progress_line() {
        let stderr = "Receiving objects:  50% (1/2)\rReceiving objects: 100% (2/2), 1.50 KiB | 1.00 MiB/s, done.\n";
        assert_eq!(received_bytes(stderr), 1536);
        assert_eq!(received_bytes("From https://x\n"), 0);
    }

    #[test]
    fn the_token_travels_as_a_header_and_never_shows() {
        let credentials = Credentials {
            user: "x-access-token".to_owned(),
            secret: "s3cret".to_owned(),
        };
        assert_eq!(credentials.header(), "Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0");
        assert!(credentials.secrets().contains(&"s3cret".to_owned()));
    }
}
