//! Why a fetch failed, as one case for each cause an operator can fix (a timeout, the
//! network, a proxy, a host key, a key, a token, a certificate), each said in one sentence that
//! names the server and the fix; the kind of each is the stable name status and metrics use.

use std::path::PathBuf;
use std::time::Duration;

use super::cause::Cause;

/// Why a fetch from a remote repository failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The `git` program is not installed.
    #[error(
        "the `git` program was not found; shoal fetches remote repositories with it: install the packages git and openssh-client"
    )]
    NoGit,
    /// `git` is older than what the fetch needs.
    #[error(
        "{found} is too old: fetching a remote repository needs git 2.31 or later; upgrade the git package"
    )]
    OldGit {
        /// What `git --version` said.
        found: String,
    },
    /// `git` could not be started.
    #[error("cannot start `git`")]
    Spawn {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The ssh settings file beside the mirror could not be written.
    #[error("cannot write the ssh settings of the fetch to {}; check that the data directory is writable", path.display())]
    SshConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file could not be read, or holds nothing.
    #[error("cannot read the token file {}: {reason}; write the token into it", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why (never its content).
        reason: String,
    },
    /// Nothing came from the server for the channel's timeout.
    #[error(
        "{server} sent nothing for {}s (the channel's timeout), so the fetch was ended; check that the server is up and reachable from this host (and the proxy, if one is set), or raise the channel's `timeout`",
        after.as_secs()
    )]
    Quiet {
        /// `host:port`.
        server: String,
        /// How long it was quiet.
        after: Duration,
    },
    /// The fetch ran past its deadline, progress or not.
    #[error(
        "the fetch from {server} was still running after {}s (20 times the channel's timeout), so it was ended; raise the channel's `timeout` for a repository this large or a link this slow",
        after.as_secs()
    )]
    Overall {
        /// `host:port`.
        server: String,
        /// How long it ran.
        after: Duration,
    },
    /// ssh or curl gave up waiting for the server.
    #[error(
        "{server} did not answer in time ({detail}); check that the server is up and reachable from this host, or raise the channel's `timeout`"
    )]
    TimedOut {
        /// `host:port`.
        server: String,
        /// What the tool said.
        detail: String,
    },
    /// The agent is stopping.
    #[error("the fetch was ended because the agent is stopping")]
    Stopped,
    /// The host name does not resolve.
    #[error("the host name {host} does not resolve; check the url and this host's DNS")]
    Unresolved {
        /// The host.
        host: String,
    },
    /// Nothing listens at the server's port, or the network has no route to it.
    #[error(
        "cannot connect to {server} ({detail}); check the host and port in the url and that the server is running"
    )]
    Unreachable {
        /// `host:port`.
        server: String,
        /// What the tool said.
        detail: String,
    },
    /// The proxy could not be reached, or refused to connect to the server.
    #[error(
        "the proxy {proxy} did not connect this host to {server} ({detail}); check the proxy (HTTPS_PROXY and NO_PROXY in the agent's environment)"
    )]
    Proxy {
        /// The proxy's url.
        proxy: String,
        /// `host:port`.
        server: String,
        /// What curl said.
        detail: String,
    },
    /// ssh does not know the server's host key.
    #[error(
        "the ssh host key of {host} is not known here ({}); if it is the server's key, add it to {} (for example `{keyscan} >> {}`, then compare the fingerprint with one the server's administrators give you)",
        key.as_deref().map_or_else(|| "the server's key was not shown".to_owned(), |k| format!("the server offers {k}")),
        files.join(" or "),
        files.first().map_or("~/.ssh/known_hosts", String::as_str)
    )]
    HostKeyUnknown {
        /// The host as known_hosts names it.
        host: String,
        /// The key the server offered: type and fingerprint.
        key: Option<String>,
        /// The known_hosts files ssh read.
        files: Vec<String>,
        /// The `ssh-keyscan` command for this server.
        keyscan: String,
    },
    /// The server's host key is not the one known_hosts holds.
    #[error(
        "the ssh host key of {host} has CHANGED: the server now offers {}, but {} holds another key for it; this is what a man-in-the-middle attack looks like, so nothing was fetched: confirm the new key with the server's administrators, then replace that line (`ssh-keygen -R '{host}' -f FILE`)",
        key.as_deref().unwrap_or("a different key"),
        offending.as_deref().unwrap_or("known_hosts")
    )]
    HostKeyChanged {
        /// The host as known_hosts names it.
        host: String,
        /// The key the server offered: type and fingerprint.
        key: Option<String>,
        /// The known_hosts line holding the old key (`file:line`).
        offending: Option<String>,
    },
    /// ssh had no key to offer.
    #[error(
        "no ssh key was offered to {server} as user `{user}`: {}",
        configured.as_ref().map_or_else(
            || "set the channel's `ssh_key` to a private key file, or give the agent an ssh-agent (SSH_AUTH_SOCK) or a key in ~/.ssh of its user".to_owned(),
            |key| format!("the key file {} could not be used (missing, unreadable, not a private key, or protected by a passphrase); point `ssh_key` at a private key without a passphrase", key.display()),
        )
    )]
    SshNoKey {
        /// `host:port`.
        server: String,
        /// The user ssh logged in as.
        user: String,
        /// The configured key file, which ssh could not use.
        configured: Option<PathBuf>,
    },
    /// The server refused every key offered for the user.
    #[error(
        "{server} refused user `{user}` with ssh key {}: either that user is wrong (git hosts expect `git`: set it in the url or the channel's `username`) or the key is not authorized for the repository (add its public half as a deploy key)",
        keys.join(", ")
    )]
    SshKeyRefused {
        /// `host:port`.
        server: String,
        /// The user ssh logged in as.
        user: String,
        /// The keys offered: fingerprint and where from.
        keys: Vec<String>,
    },
    /// The server asks for credentials and none are configured.
    #[error(
        "{url} asks for credentials and none are configured: set the channel's `token_file` to a file holding a token that may read the repository"
    )]
    NoCredentials {
        /// The url.
        url: String,
    },
    /// The server refused the token.
    #[error(
        "{server} refused the token from {} sent as user `{user}`: the token is wrong, expired or revoked, or the server expects another user; write a valid token into the file (it is read at every fetch) or set the channel's `username`",
        file.display()
    )]
    TokenRefused {
        /// `host:port`.
        server: String,
        /// The token file.
        file: PathBuf,
        /// The user it was sent as.
        user: String,
    },
    /// The server refused the password in the url.
    #[error(
        "{server} refused the user `{user}` and the password written in the url; put a valid token in a `token_file` instead"
    )]
    PasswordRefused {
        /// `host:port`.
        server: String,
        /// The user in the url.
        user: String,
    },
    /// The server knows the credentials but does not let them read the repository.
    #[error(
        "{server} denied access to {url} (HTTP 403): give the credentials read access to the repository"
    )]
    Forbidden {
        /// `host:port`.
        server: String,
        /// The url.
        url: String,
    },
    /// No repository at the url (or none these credentials may see).
    #[error(
        "there is no repository at {url} (or none that these credentials may read); check the url"
    )]
    NotFound {
        /// The url.
        url: String,
    },
    /// The server redirects elsewhere; redirects are not followed.
    #[error(
        "{url} answers with a redirect (HTTP {code}), which is not followed so that credentials reach only the configured server; set the url to the repository's new address"
    )]
    Redirect {
        /// The url.
        url: String,
        /// The status code.
        code: String,
    },
    /// The server's certificate is not signed by a CA trusted here.
    #[error(
        "the TLS certificate of {server} is not signed by a CA this host trusts{}: add the CA to the system's store (update-ca-certificates) or point GIT_SSL_CAINFO at it in the agent's environment",
        cafile.as_deref().map(|f| format!(" (trusted CAs: {f})")).unwrap_or_default()
    )]
    TlsUntrusted {
        /// `host:port`.
        server: String,
        /// The CA file curl read.
        cafile: Option<String>,
    },
    /// The server's certificate is for another name.
    #[error(
        "the TLS certificate of {server} is {}, not for {host}: write the host name the certificate names in the url, or give the server a certificate for this name",
        presented.as_deref().map_or_else(|| "for another name".to_owned(), |p| format!("for {p}"))
    )]
    TlsNameMismatch {
        /// `host:port`.
        server: String,
        /// The host of the url.
        host: String,
        /// The name the certificate carries, when known.
        presented: Option<String>,
    },
    /// The server's certificate has expired, or is not valid yet.
    #[error(
        "the TLS certificate of {server} has expired or is not valid yet: renew it on the server, and check this host's clock"
    )]
    TlsExpired {
        /// `host:port`.
        server: String,
    },
    /// The server's certificate did not verify, for a reason not known more precisely.
    #[error(
        "the TLS certificate of {server} did not verify ({detail}): its CA is not trusted here (a proxy that inspects TLS signs with its own CA) or it has expired; trust the CA (system store or GIT_SSL_CAINFO) or renew the certificate"
    )]
    Tls {
        /// `host:port`.
        server: String,
        /// What curl said.
        detail: String,
    },
    /// A secret would travel in clear text (see [`GitSource::check_secrets`]).
    ///
    /// [`GitSource::check_secrets`]: super::GitSource::check_secrets
    #[error("{reason}")]
    ClearText {
        /// Which key, and what to write instead.
        reason: String,
    },
    /// Writing the mirror ran out of disk space (or quota) on this host.
    #[error("this host's disk is full ({detail}): free space where the agent's data directory is")]
    DiskFull {
        /// git's line that says so.
        detail: String,
    },
    /// Anything else: git's own words.
    #[error("git fetch failed: {detail}")]
    Other {
        /// git's last error line.
        detail: String,
    },
    /// Fetching from a repository on this host failed (libgit2).
    #[error(transparent)]
    Local(Cause),
}

impl FetchError {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoGit | Self::OldGit { .. } | Self::Spawn { .. } => "git_program",
            Self::SshConfig { .. } => "git_mirror",
            Self::TokenFile { .. } => "git_token_file",
            Self::ClearText { .. } => "git_clear_text",
            Self::Quiet { .. } | Self::Overall { .. } | Self::TimedOut { .. } => "git_timeout",
            Self::Stopped => "git_stopped",
            Self::Unresolved { .. } | Self::Unreachable { .. } => "git_unreachable",
            Self::Proxy { .. } => "git_proxy",
            Self::HostKeyUnknown { .. } => "git_host_key_unknown",
            Self::HostKeyChanged { .. } => "git_host_key_changed",
            Self::SshNoKey { .. } => "git_ssh_no_key",
            Self::SshKeyRefused { .. } => "git_ssh_key_refused",
            Self::NoCredentials { .. } => "git_no_credentials",
            Self::DiskFull { .. } => "git_disk_full",
            Self::TokenRefused { .. } | Self::PasswordRefused { .. } => "git_token_refused",
            Self::Forbidden { .. } => "git_forbidden",
            Self::NotFound { .. } => "git_not_found",
            Self::Redirect { .. } => "git_redirect",
            Self::TlsUntrusted { .. } => "git_tls_untrusted",
            Self::TlsNameMismatch { .. } => "git_tls_name_mismatch",
            Self::TlsExpired { .. } => "git_tls_expired",
            Self::Tls { .. } => "git_tls",
            Self::Other { .. } | Self::Local(_) => "git_fetch",
        }
    }
}
