//! What a git channel is configured with ([`GitSource`]), and what its url means: a local
//! repository (a path or `file://`, watched) or a remote one (https, ssh, polled), the name of
//! its mirror, and the url as it may be shown (without a password).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// A git channel's configuration: `git: {url, tags, poll}` plus credentials. Its `Debug`
/// shows the url without a password.
#[derive(Clone, PartialEq, Eq)]
pub struct GitSource {
    /// `https://…`, `ssh://…`, scp-like `git@host:path`, `file://…`, or a local path.
    pub url: String,
    /// Which tags are releases: a glob (`*`, `?`) over the tag name.
    pub tags: String,
    /// How often a remote repository is polled; the caller adds ±10% jitter.
    pub poll: Duration,
    /// https: a file holding the token (read at every fetch, so it may be rotated).
    pub token_file: Option<PathBuf>,
    /// https: the user the token is sent as (`x-access-token` if unset); ssh: the user when the
    /// url names none (`git` if unset).
    pub username: Option<String>,
    /// ssh: a private key file (without a passphrase); else the ssh-agent at `SSH_AUTH_SOCK`.
    pub ssh_key: Option<PathBuf>,
    /// A fetch from a remote repository that connects no faster, or goes this long without
    /// progress, is ended; so is one still running after [`GitSource::OVERALL`] times this.
    pub timeout: Duration,
}

/// The server a url names: scheme, host (lowercase) and port (the scheme's default when none is
/// written). Credentials are given only to the server the channel is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https`, `ssh`, `http`, `git`, …
    pub scheme: String,
    /// The host name or address, lowercase.
    pub host: String,
    /// The port.
    pub port: Option<u16>,
}

impl Endpoint {
    /// The server of `url` (`scheme://[user@]host[:port]/…` or scp-like `[user@]host:path`,
    /// which is ssh); `None` for a local path or a url without a host.
    pub fn of(url: &str) -> Option<Self> {
        if !url.contains("://") && is_scp_like(url) {
            let host = url.split(':').next()?;
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            return Some(Self {
                scheme: "ssh".to_owned(),
                host: host.to_ascii_lowercase(),
                port: Some(22),
            });
        }
        let parsed = url::Url::parse(url).ok()?;
        let host = parsed.host_str().filter(|h| !h.is_empty())?;
        let port = parsed.port_or_known_default().or(match parsed.scheme() {
            "ssh" => Some(22),
            "git" => Some(9418),
            _ => None,
        });
        Some(Self {
            scheme: parsed.scheme().to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a secret (a token, a password) may be sent here: over https only, never over
    /// plain http or git:// (not even to this host, where a local user may hold the port while
    /// the server is down, as with any port).
    pub fn carries_secrets(&self) -> bool {
        self.scheme == "https"
    }
}

/// Where a repository is, as far as the channel cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// On this host: watched for new tags.
    Local(PathBuf),
    /// Elsewhere: polled.
    Remote,
}

impl GitSource {
    /// The default tag glob.
    pub const DEFAULT_TAGS: &'static str = "v*";
    /// The default poll interval.
    pub const DEFAULT_POLL: Duration = Duration::from_secs(30);
    /// The default connect and stall timeout of a fetch.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// A fetch is ended once it has run this many times its `timeout`, progress or not.
    pub const OVERALL: u32 = 20;

    /// A source for `url` with the defaults: tags `v*`, polled every 30 s, fetches cut off
    /// after 30 s without progress, no credentials.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tags: Self::DEFAULT_TAGS.to_owned(),
            poll: Self::DEFAULT_POLL,
            token_file: None,
            username: None,
            ssh_key: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The longest a fetch may run, progress or not: [`Self::OVERALL`] times `timeout`.
    pub fn deadline(&self) -> Duration {
        self.timeout.saturating_mul(Self::OVERALL)
    }

    /// Whether the repository is on this host (a path or `file://`) or remote.
    pub fn location(&self) -> Location {
        let url = self.url.as_str();
        if let Some(rest) = url.strip_prefix("file://") {
            let path = url::Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .unwrap_or_else(|| PathBuf::from(rest));
            return Location::Local(path);
        }
        if url.contains("://") || is_scp_like(url) {
            return Location::Remote;
        }
        Location::Local(PathBuf::from(url))
    }

    /// The url as it may be shown in logs and errors: a password in it is replaced by `***`.
    pub fn display_url(&self) -> String {
        match self.url_password() {
            Some(password) => self.url.replacen(&format!(":{password}@"), ":***@", 1),
            None => self.url.clone(),
        }
    }

    /// The directory name of this source's mirror: 16 hex digits of sha256(url), then `.git`.
    pub fn mirror_name(&self) -> String {
        let hash = Sha256::digest(self.url.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{hex}.git")
    }

    /// The password written into the url (`https://user:password@host/…`), if any.
    pub(super) fn url_password(&self) -> Option<&str> {
        let (_, rest) = self.url.split_once("://")?;
        let authority = rest.split('/').next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        let (_, password) = userinfo.split_once(':')?;
        Some(password).filter(|p| !p.is_empty())
    }

    /// The user written into the url (`ssh://user@host/…`, `user@host:path`,
    /// `https://user:password@host/…`), if any.
    pub(super) fn url_user(&self) -> Option<&str> {
        let url = self.url.as_str();
        let authority = match url.split_once("://") {
            Some((_, rest)) => rest.split('/').next()?,
            None if is_scp_like(url) => url.split(':').next()?,
            None => return None,
        };
        let (userinfo, _) = authority.rsplit_once('@')?;
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        Some(user).filter(|u| !u.is_empty())
    }

    /// The url as `git` is given it on its command line: without a password, which travels
    /// through the environment instead (a command line is readable by every local user).
    pub(super) fn url_without_password(&self) -> String {
        match self.url_password() {
            Some(password) => self.url.replacen(&format!(":{password}@"), "@", 1),
            None => self.url.clone(),
        }
    }

    /// The server the url names (see [`Endpoint::of`]).
    pub fn endpoint(&self) -> Option<Endpoint> {
        Endpoint::of(&self.url)
    }

    /// Refuses a token or a url password that would travel in clear text: over plain http, or
    /// git://. The error names the key at fault (`url` or `token_file`) and
    /// says what to write instead.
    pub fn check_secrets(&self) -> Result<(), (&'static str, String)> {
        let Some(endpoint) = self.endpoint() else {
            return Ok(());
        };
        if endpoint.carries_secrets() || endpoint.scheme == "ssh" {
            return Ok(());
        }
        let scheme = &endpoint.scheme;
        if self.url_password().is_some() {
            return Err((
                "url",
                format!(
                    "the url carries a password over {scheme}://, which sends it in clear text; use an https:// url (with token_file) or ssh"
                ),
            ));
        }
        if self.token_file.is_some() {
            return Err((
                "token_file",
                format!(
                    "token_file is set but the url is {scheme}://, which would send the token in clear text; use an https:// url, or remove token_file for a public repository"
                ),
            ));
        }
        Ok(())
    }

    /// The git directory of a local repository: `<path>/.git` for a working tree, else the
    /// path itself (a bare repository).
    pub fn local_git_dir(path: &Path) -> PathBuf {
        let dot_git = path.join(".git");
        if dot_git.is_dir() {
            dot_git
        } else {
            path.to_path_buf()
        }
    }
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.display_url())
            .field("tags", &self.tags)
            .field("poll", &self.poll)
            .field("token_file", &self.token_file)
            .field("username", &self.username)
            .field("ssh_key", &self.ssh_key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `user@host:path` or `host:path`, as git reads it: a colon before any slash, and the part
/// before it not a single drive-like letter.
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) => colon > 1 && slash.is_none_or(|s| colon < s),
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_local_or_remote() {
        let local = |u: &str| GitSource::new(u).location();
        assert_eq!(
            local("/srv/app.git"),
            Location::Local(PathBuf::from("/srv/app.git"))
        );
        assert_eq!(
            local("file:///srv/my%20app"),
            Location::Local(PathBuf::from("/srv/my app"))
        );
        assert_eq!(local("./repo"), Location::Local(PathBuf::from("./repo")));
        assert_eq!(
            local("dir/with:colon"),
            Location::Local(PathBuf::from("dir/with:colon"))
        );
        for remote in [
            "https://github.com/acme/app.git",
            "ssh://git@github.com/acme/app.git",
            "git@github.com:acme/app.git",
            "github.com:acme/app.git",
            "git://host/app.git",
        ] {
            assert_eq!(local(remote), Location::Remote, "{remote}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let source = GitSource::new("https://bot:t0ken@example.com/acme/app.git");
        assert_eq!(source.url_password(), Some("t0ken"));
        assert_eq!(
            source.display_url(),
            "https://bot:***@example.com/acme/app.git"
        );
        assert!(!format!("{source:?}").contains("t0ken"));
        let plain = GitSource::new("git@github.com:acme/app.git");
        assert_eq!(plain.url_password(), None);
        assert_eq!(plain.display_url(), "git@github.com:acme/app.git");
    }

    #[test]
    fn users_come_from_the_url_and_passwords_stay_off_the_command_line() {
        let of = |u: &str| GitSource::new(u);
        assert_eq!(of("git@github.com:acme/app.git").url_user(), Some("git"));
        assert_eq!(
            of("ssh://deploy@host:2222/app.git").url_user(),
            Some("deploy")
        );
        assert_eq!(of("ssh://host/app.git").url_user(), None);
        assert_eq!(of("host:app.git").url_user(), None);
        assert_eq!(of("https://bot:t0ken@host/a.git").url_user(), Some("bot"));
        assert_eq!(of("/srv/app.git").url_user(), None);
        let with_password = of("https://bot:t0ken@host/a.git");
        assert_eq!(
            with_password.url_without_password(),
            "https://bot@host/a.git"
        );
        assert_eq!(
            of("https://host/a.git").url_without_password(),
            "https://host/a.git"
        );
    }

    #[test]
    fn endpoints_compare_scheme_host_and_port() {
        let at = |u: &str| Endpoint::of(u).expect(u);
        assert_eq!(
            at("https://Git.Example.com/a.git"),
            at("https://git.example.com:443/b")
        );
        assert_ne!(
            at("https://git.example.com/a"),
            at("https://git.example.com:8443/a")
        );
        assert_ne!(
            at("https://git.example.com/a"),
            at("http://git.example.com/a")
        );
        assert_ne!(
            at("https://git.example.com/a"),
            at("https://evil.example/a")
        );
        assert_eq!(
            at("git@github.com:acme/app.git"),
            at("ssh://git@github.com/acme/app")
        );
        assert_eq!(Endpoint::of("/srv/app.git"), None);
        assert!(!at("http://127.0.0.1:8080/a").carries_secrets());
        assert!(!at("http://[::1]/a").carries_secrets());
        assert!(!at("http://git.example.com/a").carries_secrets());
        assert!(!at("git://git.example.com/a").carries_secrets());
    }

    #[test]
    fn secrets_in_clear_text_are_refused() {
        let with_token = |u: &str| {
            let mut source = GitSource::new(u);
            source.token_file = Some(PathBuf::from("/etc/shoal/token"));
            source.check_secrets()
        };
        assert!(with_token("https://git.example.com/a.git").is_ok());
        assert!(with_token("http://127.0.0.1:3000/a.git").is_err());
        let (key, err) = with_token("http://git.example.com/a.git").expect_err("http");
        assert_eq!(key, "token_file");
        assert!(
            err.starts_with("token_file is set but the url is http://"),
            "{err}"
        );
        assert!(with_token("git://git.example.com/a.git").is_err());
        let (key, err) = GitSource::new("http://ci:t0ken@git.example.com/a.git")
            .check_secrets()
            .expect_err("password over http");
        assert_eq!(key, "url");
        assert!(err.contains("password over http://"), "{err}");
        assert!(
            GitSource::new("http://git.example.com/public.git")
                .check_secrets()
                .is_ok()
        );
    }

    #[test]
    fn mirror_names_are_stable_hashes_of_the_url() {
        let a = GitSource::new("https://example.com/a.git").mirror_name();
        assert_eq!(a.len(), 16 + 4);
        assert!(a.ends_with(".git"));
        assert_eq!(a, GitSource::new("https://example.com/a.git").mirror_name());
        assert_ne!(a, GitSource::new("https://example.com/b.git").mirror_name());
    }
}
