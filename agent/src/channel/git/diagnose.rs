//! What a failed fetch means, read from what git, ssh and curl wrote to stderr: which
//! [`FetchError`] it is, with the server, the key, the file or the line it concerns.

use std::path::PathBuf;

use super::failure::FetchError;

/// What a fetch tried: the facts a message needs that stderr does not carry.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    /// The host of the url.
    pub(super) host: String,
    /// The port of the url (the scheme's default when it names none).
    pub(super) port: Option<u16>,
    /// The url as it may be shown (no password).
    pub(super) url: String,
    /// The token file, when a token was sent.
    pub(super) token_file: Option<PathBuf>,
    /// The user the token or the url's password is sent as.
    pub(super) http_user: Option<String>,
    /// Whether the url carries a password.
    pub(super) url_password: bool,
    /// The configured ssh key file.
    pub(super) ssh_key: Option<PathBuf>,
    /// The proxy curl goes through for this url, from the environment.
    pub(super) proxy: Option<String>,
}

impl Attempt {
    /// `host:port`, as a reader names a server.
    pub(super) fn server(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The host as ssh names it in known_hosts: `host`, or `[host]:port` off port 22.
    fn ssh_host(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.host),
            _ => self.host.clone(),
        }
    }

    fn keyscan(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("ssh-keyscan -p {port} {}", self.host),
            _ => format!("ssh-keyscan {}", self.host),
        }
    }
}

/// Reads a failed fetch's stderr (secrets already removed). A certificate that curl refused
/// without saying why comes back as [`FetchError::Tls`], for the caller to look at closer.
pub(super) fn classify(stderr: &str, attempt: &Attempt) -> FetchError {
    let server = attempt.server();
    // ssh's own debug lines (`ssh -v`) say what was offered and seen; the rest say what failed.
    let all: Vec<&str> = stderr
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let lines: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| !l.starts_with("debug1:"))
        .collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    let after = |prefix: &str| text_after(&lines, prefix);
    let debug = |prefix: &str| text_after(&all, prefix);

    // ssh: host keys first (nothing else happens before them), then authentication.
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("has changed and you have requested") {
        let key = lines
            .iter()
            .position(|l| l.contains("key sent by the remote host is"))
            .and_then(|i| {
                let kind = lines[i]
                    .split("The fingerprint for the ")
                    .nth(1)?
                    .split(" key sent")
                    .next()?;
                let fingerprint = lines.get(i + 1)?.trim_end_matches('.');
                Some(format!("{kind} key {fingerprint}"))
            });
        let offending = lines.iter().find_map(|l| {
            let rest = l.strip_prefix("Offending ")?;
            Some(rest.split(" in ").nth(1)?.to_owned())
        });
        return FetchError::HostKeyChanged {
            host: attempt.ssh_host(),
            key,
            offending,
        };
    }
    if has("Host key verification failed") {
        return FetchError::HostKeyUnknown {
            host: attempt.ssh_host(),
            key: debug("Server host key:").map(str::to_owned),
            files: Vec::new(),
            keyscan: attempt.keyscan(),
        };
    }
    if has("Permission denied (") {
        let user = debug("Authenticating to ")
            .and_then(|rest| rest.split(" as '").nth(1))
            .map(|u| u.trim_end_matches('\'').to_owned())
            .unwrap_or_else(|| "?".to_owned());
        let keys: Vec<String> = all
            .iter()
            .filter_map(|l| l.split("Offering public key: ").nth(1))
            .map(offered_key)
            .collect();
        if keys.is_empty() {
            return FetchError::SshNoKey {
                server,
                user,
                configured: attempt.ssh_key.clone(),
            };
        }
        return FetchError::SshKeyRefused { server, user, keys };
    }
    if let Some(rest) = after("ssh: Could not resolve hostname ") {
        let host = rest.split(':').next().unwrap_or(rest).to_owned();
        return FetchError::Unresolved { host };
    }
    if let Some(rest) = after("ssh: connect to host ") {
        let detail = rest.rsplit(": ").next().unwrap_or(rest).to_owned();
        if detail.contains("timed out") {
            return FetchError::TimedOut { server, detail };
        }
        return FetchError::Unreachable { server, detail };
    }
    for timeout in [
        "Connection timed out during banner exchange",
        "not responding",
    ] {
        if let Some(line) = lines.iter().find(|l| l.contains(timeout)) {
            return FetchError::TimedOut {
                server,
                detail: (*line).to_owned(),
            };
        }
    }

    // curl, through git's "unable to access 'URL': WHAT".
    if let Some(what) = lines
        .iter()
        .find_map(|l| l.split("unable to access '").nth(1)?.split("': ").nth(1))
    {
        if let Some(failure) = curl_failure(what, attempt) {
            return failure;
        }
        return FetchError::Other {
            detail: what.to_owned(),
        };
    }
    if has("could not read Username")
        || has("could not read Password")
        || has("Authentication failed")
    {
        return match (&attempt.token_file, &attempt.http_user) {
            (Some(file), user) => FetchError::TokenRefused {
                server,
                file: file.clone(),
                user: user.clone().unwrap_or_default(),
            },
            (None, Some(user)) if attempt.url_password => FetchError::PasswordRefused {
                server,
                user: user.clone(),
            },
            _ => FetchError::NoCredentials {
                url: attempt.url.clone(),
            },
        };
    }
    if (has("fatal: repository '") && has("' not found"))
        || has("Repository not found")
        || has("does not appear to be a git repository")
        || has("repository not exported")
    {
        return FetchError::NotFound {
            url: attempt.url.clone(),
        };
    }
    // This host's disk, while git writes the mirror (the server's own says `remote:`). A full
    // disk stops index-pack, which fetch-pack then reports only as "invalid index-pack output".
    if let Some(line) = lines.iter().find(|l| {
        !l.starts_with("remote:")
            && (l.contains("No space left on device") || l.contains("Disk quota exceeded"))
    }) {
        return FetchError::DiskFull {
            detail: line.trim_start_matches("fatal:").trim().to_owned(),
        };
    }
    if let Some(rest) = after("unable to connect to ") {
        // git:// — "unable to connect to HOST:\nHOST[0: ADDR]: errno=Connection refused".
        let detail = after("errno=").unwrap_or(rest).to_owned();
        return FetchError::Unreachable { server, detail };
    }
    let detail = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or_else(|| lines.last())
        .map_or_else(
            || "git said nothing".to_owned(),
            |l| {
                l.trim_start_matches("fatal:")
                    .trim_start_matches("error:")
                    .trim()
                    .to_owned()
            },
        );
    FetchError::Other { detail }
}

/// The text after `prefix` on the first of `lines` that holds it.
fn text_after<'a>(lines: &[&'a str], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.find(prefix).map(|i| l[i + prefix.len()..].trim()))
}

/// A curl error (git's "unable to access" message) as a case, if it is one.
fn curl_failure(what: &str, attempt: &Attempt) -> Option<FetchError> {
    let server = attempt.server();
    let proxy = || {
        attempt
            .proxy
            .clone()
            .unwrap_or_else(|| "(http.proxy)".to_owned())
    };
    if let Some(host) = what.strip_prefix("Could not resolve host: ") {
        return Some(FetchError::Unresolved {
            host: host.trim().to_owned(),
        });
    }
    if what.starts_with("Could not resolve proxy") || what.contains("from proxy after CONNECT") {
        return Some(FetchError::Proxy {
            proxy: proxy(),
            server,
            detail: what.to_owned(),
        });
    }
    if what.contains("timed out") || what.contains("Operation too slow") {
        return Some(FetchError::TimedOut {
            server,
            detail: what.to_owned(),
        });
    }
    if let Some(rest) = what.strip_prefix("Failed to connect to ") {
        let mut words = rest.split_whitespace();
        let (host, port) = (words.next()?, words.nth(1)?);
        let reached = format!("{host}:{port}");
        let detail = rest.rsplit(": ").next().unwrap_or(rest).to_owned();
        if reached != server && attempt.proxy.is_some() {
            return Some(FetchError::Proxy {
                proxy: proxy(),
                server,
                detail: what.to_owned(),
            });
        }
        return Some(FetchError::Unreachable { server, detail });
    }
    if let Some(rest) = what.strip_prefix("SSL: certificate subject name (") {
        let presented = rest.split(')').next().map(str::to_owned);
        return Some(FetchError::TlsNameMismatch {
            server,
            host: attempt.host.clone(),
            presented,
        });
    }
    if what.contains("no alternative certificate subject name matches") {
        return Some(FetchError::TlsNameMismatch {
            server,
            host: attempt.host.clone(),
            presented: None,
        });
    }
    let lower = what.to_ascii_lowercase();
    if lower.contains("expired")
        || lower.contains("not yet valid")
        || lower.contains("not yet activated")
    {
        return Some(FetchError::TlsExpired { server });
    }
    if [
        "unable to get local issuer certificate",
        "self-signed certificate",
        "self signed certificate",
        "unable to get issuer certificate",
        "unable to verify the first certificate",
        "signer not trusted",
    ]
    .iter()
    .any(|s| lower.contains(s))
    {
        let cafile = what
            .split("CAfile: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned);
        return Some(FetchError::TlsUntrusted { server, cafile });
    }
    if lower.contains("certificate") || lower.contains("ssl") || lower.contains("tls") {
        return Some(FetchError::Tls {
            server,
            detail: what.to_owned(),
        });
    }
    if let Some(code) = what.split("returned error: ").nth(1).map(str::trim) {
        let url = attempt.url.clone();
        return Some(match code {
            "401" => match &attempt.token_file {
                Some(file) => FetchError::TokenRefused {
                    server,
                    file: file.clone(),
                    user: attempt.http_user.clone().unwrap_or_default(),
                },
                None => FetchError::NoCredentials { url },
            },
            "403" => FetchError::Forbidden { server, url },
            "404" | "410" => FetchError::NotFound { url },
            c if c.starts_with('3') => FetchError::Redirect {
                url,
                code: c.to_owned(),
            },
            _ => return None,
        });
    }
    None
}

/// `SHA256:… (file)` from the rest of ssh's "Offering public key: PATH TYPE FP [explicit|agent]".
fn offered_key(rest: &str) -> String {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.iter().position(|w| w.starts_with("SHA256:")) {
        Some(i) if i >= 2 => format!("{} ({})", words[i], words[..i - 1].join(" ")),
        Some(i) => words[i].to_owned(),
        None => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh() -> Attempt {
        Attempt {
            host: "127.0.0.1".to_owned(),
            port: Some(2222),
            url: "ssh://git@127.0.0.1:2222/app.git".to_owned(),
            token_file: None,
            http_user: None,
            url_password: false,
            ssh_key: None,
            proxy: None,
        }
    }

    fn https() -> Attempt {
        Attempt {
            port: Some(443),
            url: "https://127.0.0.1/app.git".to_owned(),
            ..ssh()
        }
    }

    // What OpenSSH 9.2 and git 2.39 print, as captured from real failures.
    const CHANGED: &str = "debug1: Server host key: ssh-ed25519 SHA256:gOdyna\n\
        @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
        @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
        @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
        The fingerprint for the ED25519 key sent by the remote host is\n\
        SHA256:gOdyna.\n\
        Offending ED25519 key in /root/.ssh/known_hosts:2\n\
        Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\n\
        Host key verification failed.\n\
        fatal: Could not read from remote repository.\n";

    #[test]
    fn host_keys_unknown_and_changed_read_apart() {
        let changed = classify(CHANGED, &ssh());
        assert_eq!(changed.kind(), "git_host_key_changed");
        let text = changed.to_string();
        assert!(text.contains("ED25519 key SHA256:gOdyna,"), "{text}");
        assert!(text.contains("/root/.ssh/known_hosts:2"), "{text}");
        assert!(text.contains("[127.0.0.1]:2222"), "{text}");
        let unknown = classify(
            "debug1: Server host key: ssh-ed25519 SHA256:gOdyna\nHost key verification failed.\n",
            &ssh(),
        );
        assert_eq!(unknown.kind(), "git_host_key_unknown");
        let text = unknown.to_string();
        assert!(text.contains("ssh-ed25519 SHA256:gOdyna"), "{text}");
        assert!(text.contains("ssh-keyscan -p 2222 127.0.0.1"), "{text}");
    }

    #[test]
    fn ssh_authentication_says_whether_a_key_was_offered() {
        let refused = "debug1: Authenticating to 127.0.0.1:2222 as 'nobody'\n\
            debug1: Offering public key: /etc/shoal/deploy ED25519 SHA256:jSdU explicit\n\
            debug1: No more authentication methods to try.\n\
            nobody@127.0.0.1: Permission denied (publickey).\n";
        let error = classify(refused, &ssh());
        assert_eq!(error.kind(), "git_ssh_key_refused");
        let text = error.to_string();
        assert!(text.contains("user `nobody`"), "{text}");
        assert!(text.contains("SHA256:jSdU (/etc/shoal/deploy)"), "{text}");
        let none = "debug1: Authenticating to 127.0.0.1:2222 as 'git'\n\
            debug1: Trying private key: /root/.ssh/id_rsa\n\
            git@127.0.0.1: Permission denied (publickey).\n";
        assert_eq!(classify(none, &ssh()).kind(), "git_ssh_no_key");
    }

    #[test]
    fn https_credentials_read_as_missing_or_refused() {
        let asked =
            "fatal: could not read Username for 'https://127.0.0.1': terminal prompts disabled\n";
        assert_eq!(classify(asked, &https()).kind(), "git_no_credentials");
        let with_token = Attempt {
            token_file: Some(PathBuf::from("/etc/shoal/token")),
            http_user: Some("x-access-token".to_owned()),
            ..https()
        };
        let error = classify(asked, &with_token);
        assert_eq!(error.kind(), "git_token_refused");
        assert!(error.to_string().contains("/etc/shoal/token"));
    }

    #[test]
    fn certificates_say_which_check_failed() {
        let fail = |what: &str| {
            classify(
                &format!("fatal: unable to access 'https://127.0.0.1/app.git/': {what}\n"),
                &https(),
            )
        };
        let mismatch = fail(
            "SSL: certificate subject name (localhost) does not match target host name '127.0.0.1'",
        );
        assert_eq!(mismatch.kind(), "git_tls_name_mismatch");
        assert!(
            mismatch
                .to_string()
                .contains("is for localhost, not for 127.0.0.1")
        );
        assert_eq!(
            fail("SSL: no alternative certificate subject name matches target host name 'x'")
                .kind(),
            "git_tls_name_mismatch"
        );
        assert_eq!(
            fail("SSL certificate problem: unable to get local issuer certificate").kind(),
            "git_tls_untrusted"
        );
        assert_eq!(
            fail("SSL certificate problem: certificate has expired").kind(),
            "git_tls_expired"
        );
        // GnuTLS does not say why: the caller looks closer.
        assert_eq!(
            fail("server certificate verification failed. CAfile: /etc/ssl/certs/ca-certificates.crt CRLfile: none").kind(),
            "git_tls"
        );
        assert_eq!(
            fail("The requested URL returned error: 403").kind(),
            "git_forbidden"
        );
        assert_eq!(
            fail("The requested URL returned error: 301").kind(),
            "git_redirect"
        );
        assert_eq!(
            fail("Could not resolve host: nowhere.invalid").kind(),
            "git_unreachable"
        );
        assert_eq!(
            fail("Failed to connect to 127.0.0.1 port 443 after 0 ms: Couldn't connect to server")
                .kind(),
            "git_unreachable"
        );
    }

    #[test]
    fn a_proxy_that_fails_is_named() {
        let through = Attempt {
            proxy: Some("http://127.0.0.1:3128".to_owned()),
            ..https()
        };
        let error = classify(
            "fatal: unable to access 'https://127.0.0.1/app.git/': Failed to connect to 127.0.0.1 port 3128 after 0 ms: Couldn't connect to server\n",
            &through,
        );
        assert_eq!(error.kind(), "git_proxy");
        assert!(error.to_string().contains("http://127.0.0.1:3128"));
    }

    #[test]
    fn anything_else_keeps_gits_last_word() {
        let error = classify("remote: odd\nfatal: something new\n", &https());
        assert_eq!(error.to_string(), "git fetch failed: something new");
        // ssh's debug lines are read for what was offered, not for what failed.
        let ssh_said = "debug1: load_hostkeys: fopen /root/.ssh/known_hosts2: No such file or directory\n\
            debug1: identity file /root/.ssh/id_rsa not found\n\
            fatal: the remote end hung up unexpectedly\n";
        let error = classify(ssh_said, &ssh());
        assert_eq!(
            error.to_string(),
            "git fetch failed: the remote end hung up unexpectedly"
        );
        let missing = "fatal: '/srv/x.git' does not appear to be a git repository\n";
        assert_eq!(classify(missing, &ssh()).kind(), "git_not_found");
    }

    #[test]
    fn a_full_disk_here_is_told_from_one_at_the_server() {
        // What git 2.39 prints when index-pack runs out of disk in the mirror.
        let here = "fatal: write error: No space left on device\n\
            fatal: fetch-pack: invalid index-pack output\n";
        let error = classify(here, &https());
        assert_eq!(error.kind(), "git_disk_full");
        assert_eq!(
            error.to_string(),
            "this host's disk is full (write error: No space left on device): free space where \
             the agent's data directory is"
        );
        let there = "remote: fatal: write error: No space left on device\n\
            fatal: the remote end hung up unexpectedly\n";
        assert_eq!(classify(there, &https()).kind(), "git_fetch");
    }
}
