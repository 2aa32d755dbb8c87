//! The agent's configuration: `/etc/shoal/agent.yaml` read ([`file`]) and checked into
//! [`Settings`]. Every error names the file, the line when known, the key, and what would be
//! accepted. Relative paths in the file are taken from the file's own directory.

mod credentials;
mod file;
mod notify;
mod sections;
mod share;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;
use shoal_shared::rollout::Policy;

use crate::channel::git::GitSource;
use crate::channel::store::StoreSource;
use crate::coordinate::MeshSettings;
use crate::execute::hooks::DEFAULT_RUNAS_ENV;
use crate::execute::layout::is_safe_component;
use crate::report::notifications::NotifySettings;
pub use credentials::check_credential_files;
use file::ConfigFile;
pub use file::LogFormat;
use sections::{group, mesh, share};
pub use share::{ShareSettings, parse_rate};

/// Where the agent looks for its config unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/shoal/agent.yaml";
/// `node.data_dir` unless configured.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/shoal";
/// `mesh.key_file` unless configured.
pub const DEFAULT_KEY_FILE: &str = "/etc/shoal/gossip.key";
/// `status.listen` unless configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7701";
/// How long a running hook may go on after SIGTERM, unless configured.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// `mesh.interval` unless configured.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_secs(1);
/// `mesh.dead_grace` unless configured: shorter than the default `progress_deadline` (10m),
/// so a member that died before its turn is forgotten (and passed) before a rollout waiting
/// behind it reaches its deadline.
pub const DEFAULT_DEAD_GRACE: Duration = Duration::from_secs(5 * 60);
/// `mesh.dead_grace` must be at least this many gossip intervals, or dead members would be
/// forgotten about as soon as they are noticed.
pub const MIN_DEAD_GRACE_INTERVALS: u32 = 20;

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file it came from.
    pub path: PathBuf,
    /// This host.
    pub node: Node,
    /// The status endpoint.
    pub status: Status,
    /// Logging.
    pub log: Log,
    /// How hook scripts are run.
    pub hooks: Hooks,
    /// The gossip mesh, if any (a group with no mesh is a group of one).
    pub mesh: Option<MeshSettings>,
    /// How this host serves releases to its peers (`mesh.share`; used with a sealed mesh).
    pub share: ShareSettings,
    /// The groups this host belongs to, in file order.
    pub groups: Vec<Group>,
    /// Where rollout events are sent.
    pub notify: NotifySettings,
}

/// `node:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// This host's name in the fleet.
    pub id: String,
    /// Journal, release cache, deployment root.
    pub data_dir: PathBuf,
    /// Free-form labels shown in status.
    pub labels: BTreeMap<String, String>,
    /// How long a running hook may go on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Where the AppSpec's `files` and `permissions` paths are resolved; `None` is `/`.
    pub files_root: Option<PathBuf>,
}

/// `status:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Where the status endpoint listens.
    pub listen: SocketAddr,
    /// The admin token (created 0600 if missing).
    pub token_file: PathBuf,
    /// Whether hook output is served without the admin token.
    pub public_logs: bool,
}

/// `hooks:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hooks {
    /// The names of the agent's variables a runas script gets; nothing else of the agent's
    /// environment reaches it.
    pub runas_env: Vec<String>,
}

/// `log:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// pretty or json.
    pub format: LogFormat,
    /// A level or `tracing` filter directive, e.g. `info` or `shoal_agent=debug`.
    pub level: String,
}

/// One entry of `groups:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Group name (its directory under the deployment root).
    pub name: String,
    /// Application name (`APPLICATION_NAME`).
    pub application: String,
    /// Where releases come from.
    pub channel: Channel,
    /// Who may sign releases.
    pub allowed_signers: PathBuf,
    /// The policy for releases that carry none.
    pub rollout: Policy,
    /// The continuous health check, if any.
    pub health: Option<HealthCheck>,
    /// Deployment directories kept on disk.
    pub max_revisions: usize,
    /// How many of the releases it fetched last stay in the release cache, besides those in
    /// use (what runs, the last known good, the one deploying, the one queued).
    pub keep_releases: usize,
    /// SIGTERM → SIGKILL grace for a timed-out script.
    pub kill_grace: Duration,
    /// The group's size across the mesh (`expected_members`), if configured: the quorum is a
    /// majority of it rather than of every member ever seen.
    pub expected_members: Option<usize>,
    /// How many members poll a remote channel's origin (`pollers`); the others look at the
    /// channel when gossip announces a release.
    pub pollers: usize,
}

/// A group's release channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    /// Signed tags of a git repository.
    Git(GitSource),
    /// Signed releases in an object store.
    Store(StoreSource),
}

impl Channel {
    /// The channel as shown in status (no credentials).
    pub fn display(&self) -> String {
        match self {
            Self::Git(source) => format!("git {} ({})", source.display_url(), source.tags),
            Self::Store(source) => format!("store {}", source.url),
        }
    }
}

/// `health:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is checked.
    pub probe: Probe,
    /// Time between checks.
    pub interval: Duration,
    /// How long one check may take before it counts as failed.
    pub timeout: Duration,
}

/// How health is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A command run through `/bin/sh -c`: exit code 0 is healthy.
    Command(String),
    /// An `http://` URL: a 2xx answer is healthy.
    Http(String),
}

/// Checks a `health:` block (of a release's `shoal.yaml`); the error names the key under
/// `health` and what would be accepted.
pub fn check_health(raw: &shoal_shared::rollout::RawHealth) -> Result<HealthCheck, String> {
    sections::health(raw).map_err(|e| e.to_string())
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file says something that cannot be used.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line, when known.
        line: Option<u64>,
        /// The key and what is wrong with it.
        message: String,
    },
}

/// A key whose value cannot be used: the key as the file spells it (`mesh.interval`) and what
/// is wrong with the value and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
struct BadValue {
    key: String,
    message: String,
}

impl BadValue {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A name that cannot be a node id or a group name: it becomes a directory name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid name; use letters, digits, `-`, `_` and `.`")]
struct BadName(String);

/// Why the hostname cannot stand in for an unset `node.id`.
#[derive(Debug, thiserror::Error)]
enum HostnameError {
    /// The hostname cannot be read.
    #[error("not set, and the hostname cannot be read ({0}); set node.id")]
    Unreadable(nix::errno::Errno),
    /// The hostname is not a valid name.
    #[error("not set, and the hostname {0}; set node.id")]
    Invalid(BadName),
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    parse(path, &read_text(path)?)
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// What a client (`shoal status`, `fleet`, `logs`) needs of the agent's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// `status.listen`.
    pub listen: SocketAddr,
    /// `node.data_dir`.
    pub data_dir: PathBuf,
}

/// Reads the config at `path` for a client: its shape is checked, but nothing it names is
/// read, so a user who may read the config and not the root-only files it names (the mesh's
/// key, the admin token) can still ask the agent.
pub fn load_client(path: &Path) -> Result<ClientSettings, ConfigError> {
    let text = read_text(path)?;
    Ok(client_settings(path, &read_raw(path, &text)?))
}

/// `status.listen` and `node.data_dir` of `raw`, the file `path`, with their defaults.
fn client_settings(path: &Path, raw: &ConfigFile) -> ClientSettings {
    let data_dir = raw
        .node
        .data_dir
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_DATA_DIR));
    ClientSettings {
        listen: raw.status.listen.as_ref().map_or_else(
            || DEFAULT_LISTEN.parse().expect("the default address parses"),
            |a| a.0,
        ),
        data_dir: resolve_from(path, data_dir),
    }
}

/// `text` as the file `path` holds it, before any check of the values.
fn read_raw(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, message) = split_location(&e.to_string(), text);
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            message,
        }
    })
}

/// `p` as the config file `path` means it: relative paths are taken from its directory.
fn resolve_from(path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Checks `text` as the config file `path` (which relative paths are taken from).
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    let invalid = |line: Option<u64>, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let raw = read_raw(path, text)?;
    let resolve = |p: &Path| resolve_from(path, p);

    let id = match &raw.node.id {
        Some(id) => {
            check_name(&id.value).map_err(|e| invalid(line_of(id), format!("node.id: {e}")))?;
            id.value.clone()
        }
        None => hostname().map_err(|e| invalid(None, format!("node.id: {e}")))?,
    };
    let ClientSettings { listen, data_dir } = client_settings(path, &raw);
    let node = Node {
        id,
        data_dir: data_dir.clone(),
        labels: raw.node.labels,
        shutdown_grace: raw
            .node
            .shutdown_grace
            .map_or(DEFAULT_SHUTDOWN_GRACE, |d| d.0),
        files_root: raw.node.files_root.as_deref().map(resolve),
    };
    let status = Status {
        listen,
        token_file: raw
            .status
            .token_file
            .as_deref()
            .map_or_else(|| data_dir.join("admin.token"), resolve),
        public_logs: raw.status.public_logs,
    };
    let hooks = Hooks {
        runas_env: match &raw.hooks.runas_env {
            Some(names) => {
                check_runas_env(&names.value)
                    .map_err(|e| invalid(line_of(names), e.to_string()))?;
                names.value.clone()
            }
            None => DEFAULT_RUNAS_ENV.map(str::to_owned).to_vec(),
        },
    };
    let level = raw
        .log
        .level
        .as_ref()
        .map_or("info".to_owned(), |l| l.value.clone());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        let line = raw.log.level.as_ref().and_then(line_of);
        return Err(invalid(
            line,
            format!(
                "log.level: `{level}` is not a level or filter ({e}); use error, warn, info, debug or trace"
            ),
        ));
    }
    let log = Log {
        format: raw.log.format.unwrap_or(LogFormat::Pretty),
        level,
    };
    let share = match raw.mesh.as_ref() {
        Some(m) => share(&m.value).map_err(|e| invalid(line_of(m), e.to_string()))?,
        None => ShareSettings::default(),
    };
    let mesh = raw
        .mesh
        .as_ref()
        .map(|m| mesh(&m.value, &node.id, &resolve).map_err(|e| invalid(line_of(m), e.to_string())))
        .transpose()?;

    // With a mesh, an agent with no groups is a plain member (a seed, a fleet view).
    if raw.groups.is_empty() && mesh.is_none() {
        return Err(invalid(
            None,
            "groups: no groups are configured and there is no mesh, so the agent would have nothing to do; add a group under `groups:` (or a `mesh:` to run as a plain mesh member)".to_owned(),
        ));
    }
    let mut names = BTreeSet::new();
    let mut groups = Vec::new();
    for (index, entry) in raw.groups.iter().enumerate() {
        let group = group(index, &entry.value, &resolve)
            .map_err(|(line, msg)| invalid(line.or_else(|| line_of(entry)), msg))?;
        if !names.insert(group.name.clone()) {
            return Err(invalid(
                line_of(entry),
                format!(
                    "groups[{index}].name: `{}` is used by an earlier group; give each group its own name",
                    group.name
                ),
            ));
        }
        groups.push(group);
    }
    let notify = notify::notify(&raw.notify, &resolve).map_err(|(line, msg)| invalid(line, msg))?;
    Ok(Settings {
        path: path.to_owned(),
        node,
        status,
        log,
        hooks,
        mesh,
        share,
        groups,
        notify,
    })
}

/// Variables shoal sets for a runas script itself: its login identity and the deployment's.
const SET_BY_SHOAL: [&str; 10] = [
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "LIFECYCLE_EVENT",
    "DEPLOYMENT_ID",
    "APPLICATION_NAME",
    "DEPLOYMENT_GROUP_NAME",
    "DEPLOYMENT_GROUP_ID",
];

/// `hooks.runas_env` names variables, and none that shoal sets for the script itself.
fn check_runas_env(names: &[String]) -> Result<(), BadValue> {
    let bad = |message: String| BadValue::new("hooks.runas_env", message);
    for name in names {
        let mut chars = name.chars();
        let well_formed = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(bad(format!(
                "`{name}` is not a variable name; list names such as LANG, TZ or HTTPS_PROXY"
            )));
        }
        let ours = SET_BY_SHOAL.contains(&name.as_str())
            || name.starts_with("SHOAL_")
            || name.starts_with("BUNDLE_");
        if ours {
            return Err(bad(format!(
                "shoal sets {name} for a runas script itself (its login or deployment value); remove it from the list"
            )));
        }
    }
    Ok(())
}

pub(super) fn line_of<T>(spanned: &Spanned<T>) -> Option<u64> {
    Some(spanned.referenced.line()).filter(|l| *l > 0)
}

/// serde-saphyr's message reads `error: line 4 column 40: <what>`; shoal's puts the file and
/// line first and names the key the column sits under when the message does not.
fn split_location(message: &str, source: &str) -> (Option<u64>, String) {
    let first = message.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("error: ").unwrap_or(first);
    let Some(position) = rest.strip_prefix("line ") else {
        return (None, rest.to_owned());
    };
    let Some((place, what)) = position.split_once(": ") else {
        return (None, rest.to_owned());
    };
    let mut numbers = place
        .split(" column ")
        .map(|n| n.trim().parse::<usize>().ok());
    let (Some(Some(line)), column) = (numbers.next(), numbers.next().flatten()) else {
        return (None, rest.to_owned());
    };
    let key = column.and_then(|column| key_before(source, line, column));
    let message = match key {
        Some(key) if !what.contains(&format!("`{key}`")) => format!("{key}: {what}"),
        _ => what.to_owned(),
    };
    (u64::try_from(line).ok(), message)
}

/// The last `key:` on `line` before `column` (both 1-based).
fn key_before(source: &str, line: usize, column: usize) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)?)?;
    let before: String = text.chars().take(column.saturating_sub(1)).collect();
    let colon = before
        .trim_end()
        .strip_suffix(':')
        .map(str::len)
        .or_else(|| before.rfind(": "))?;
    let key: String = before[..colon]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!key.is_empty()).then(|| key.chars().rev().collect())
}

fn check_name(name: &str) -> Result<(), BadName> {
    if is_safe_component(name) {
        Ok(())
    } else {
        Err(BadName(name.to_owned()))
    }
}

fn hostname() -> Result<String, HostnameError> {
    let name = nix::unistd::gethostname().map_err(HostnameError::Unreadable)?;
    let name = name.to_string_lossy().into_owned();
    check_name(&name).map_err(HostnameError::Invalid)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, text: &str) -> Result<Settings, ConfigError> {
        parse(&dir.join("agent.yaml"), text)
    }

    fn with_signers() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("allowed_signers"),
            "dev@example.com namespaces=\"git\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXnfR0q1u3uOTyn6fCkCGeTLlzNQqFxrBiL6BQTDf2a\n",
        )
        .expect("write");
        let key = dir.path().join("gossip.key");
        let line = crate::coordinate::seal::generate().expect("random");
        std::fs::write(&key, format!("{line}\n")).expect("write");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        dir
    }

    const MINIMAL: &str = "groups:\n  - name: web\n    channel:\n      git: { url: /srv/shop.git }\n    allowed_signers: allowed_signers\n";

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let dir = with_signers();
        let settings = parse_in(dir.path(), MINIMAL).expect("valid");
        assert_eq!(settings.status.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.node.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            settings.status.token_file,
            PathBuf::from("/var/lib/shoal/admin.token")
        );
        assert_eq!(settings.node.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        let group = &settings.groups[0];
        assert_eq!(group.application, "web");
        assert_eq!(group.allowed_signers, dir.path().join("allowed_signers"));
        assert_eq!(group.rollout, Policy::default());
        let Channel::Git(source) = &group.channel else {
            panic!("git channel expected");
        };
        assert_eq!(
            (source.tags.as_str(), source.poll, source.timeout),
            ("v*", Duration::from_secs(30), Duration::from_secs(30))
        );
        let slow = MINIMAL.replace("shop.git }", "shop.git, timeout: 2m }");
        let settings = parse_in(dir.path(), &slow).expect("valid");
        let Channel::Git(source) = &settings.groups[0].channel else {
            panic!("git channel expected");
        };
        assert_eq!(source.timeout, Duration::from_secs(120));
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let dir = with_signers();
        let text = format!(
            "node:\n  id: web-1\n  data_dir: /var/lib/shoal\n  labels: {{ zone: eu-1a }}\n  shutdown_grace: 45s\n  files_root: images/web\n\
             status:\n  listen: 127.0.0.1:0\nlog: {{ format: json, level: debug }}\n\
             mesh:\n  name: prod\n  listen: 0.0.0.0:7946\n  advertise: 10.0.0.5:7946\n  seeds: [10.0.0.6:7946]\n  interval: 1s\n  key_file: gossip.key\n\
             groups:\n  - name: web\n    application: shop\n    channel:\n      store: {{ url: s3://bucket/shop, poll: 500ms, endpoint: http://127.0.0.1:9000, region: eu-west-1, allow_http: true }}\n\
             \x20   allowed_signers: {}\n    rollout: {{ strategy: rolling, max_parallel: 25% }}\n    health: {{ http: http://127.0.0.1:8080/health, interval: 5s }}\n",
            dir.path().join("allowed_signers").display()
        );
        let settings = parse_in(dir.path(), &text).expect("valid");
        assert_eq!(settings.node.id, "web-1");
        assert_eq!(settings.node.shutdown_grace, Duration::from_secs(45));
        assert_eq!(
            settings.node.files_root,
            Some(dir.path().join("images/web")),
            "a relative files_root is under the config's directory"
        );
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.mesh.as_ref().map(|m| m.seeds.len()), Some(1));
        let group = &settings.groups[0];
        assert_eq!(group.application, "shop");
        let Channel::Store(source) = &group.channel else {
            panic!("store channel expected");
        };
        assert_eq!(source.poll, Duration::from_millis(500));
        assert!(source.allow_http);
        let health = group.health.as_ref().expect("health");
        assert_eq!(
            health.probe,
            Probe::Http("http://127.0.0.1:8080/health".into())
        );
        assert_eq!(health.timeout, Duration::from_secs(5));
    }

    #[test]
    fn the_mesh_gets_a_dead_grace_in_minutes() {
        let dir = with_signers();
        let mesh = |extra: &str| {
            let text = format!("mesh:\n  name: prod\n  key_file: gossip.key\n{extra}{MINIMAL}");
            parse_in(dir.path(), &text).map(|s| s.mesh.expect("mesh"))
        };
        let plain = mesh("").expect("valid");
        assert_eq!(plain.interval, DEFAULT_GOSSIP_INTERVAL);
        assert_eq!(plain.dead_grace, DEFAULT_DEAD_GRACE);
        let set = mesh("  interval: 100ms\n  dead_grace: 2m\n").expect("valid");
        assert_eq!(set.dead_grace, Duration::from_secs(120));
        let err = mesh("  interval: 0s\n").expect_err("zero").to_string();
        assert!(
            err.contains(":2: mesh.interval: must be more than 0"),
            "{err}"
        );
        let err = mesh("  interval: 1s\n  dead_grace: 5s\n")
            .expect_err("short")
            .to_string();
        assert!(
            err.contains(":2: mesh.dead_grace: 5s is shorter than 20 gossip intervals (20s)"),
            "{err}"
        );
        let err = mesh("  dead_grace: 10\n")
            .expect_err("unitless")
            .to_string();
        assert!(err.contains("has no unit"), "{err}");
    }

    #[test]
    fn sharing_releases_has_defaults_checked_keys_and_needs_sealing() {
        let dir = with_signers();
        let share = |extra: &str| {
            let text = format!("mesh:\n  name: prod\n{extra}{MINIMAL}");
            parse_in(dir.path(), &text).map(|s| s.share)
        };
        let sealed = "  key_file: gossip.key\n";
        assert_eq!(share(sealed).expect("valid"), ShareSettings::default());
        let set = share(&format!(
            "{sealed}  share: {{ listen: 10.0.0.5:7950, uploads: 0, upload_rate: 800Mbit/s }}\n"
        ))
        .expect("valid");
        assert_eq!(
            set,
            ShareSettings {
                listen: Some("10.0.0.5:7950".parse().expect("addr")),
                uploads: 0,
                upload_rate: Some(100_000_000),
            }
        );
        for (extra, says) in [
            (
                "  share: { listen: somewhere }\n",
                "mesh.share.listen: `somewhere` is not IP:port",
            ),
            (
                "  share: { upload_rate: fast }\n",
                "mesh.share.upload_rate: `fast` is not a rate; write e.g. 100MB/s",
            ),
            ("  share: { peers: 3 }\n", "unknown field `peers`"),
        ] {
            let err = share(&format!("{sealed}{extra}"))
                .expect_err(extra)
                .to_string();
            assert!(err.contains(says), "{err}");
        }
        let err = share("  insecure: true\n  share: { uploads: 2 }\n")
            .expect_err("clear")
            .to_string();
        assert!(
            err.contains("mesh.share: peers share releases only over a sealed mesh"),
            "{err}"
        );
    }

    #[test]
    fn the_largest_gossip_datagram_is_bounded_and_needs_sealing() {
        let dir = with_signers();
        let mesh = |extra: &str| {
            let text = format!("mesh:\n  name: prod\n{extra}{MINIMAL}");
            parse_in(dir.path(), &text).map(|s| s.mesh.expect("mesh"))
        };
        let sealed = "  key_file: gossip.key\n";
        assert_eq!(
            mesh(sealed).expect("valid").max_datagram,
            crate::coordinate::MAX_DATAGRAM
        );
        let set = mesh(&format!("{sealed}  max_datagram: 1400\n")).expect("valid");
        assert_eq!(set.max_datagram, 1_400);
        let err = mesh(&format!("{sealed}  max_datagram: 100\n"))
            .expect_err("tiny")
            .to_string();
        assert!(
            err.contains("mesh.max_datagram: 100 is not between 548 and 65507 bytes"),
            "{err}"
        );
        let err = mesh("  insecure: true\n  max_datagram: 1400\n")
            .expect_err("clear")
            .to_string();
        assert!(
            err.contains("only sealed gossip can send a message in parts"),
            "{err}"
        );
    }

    #[test]
    fn runas_scripts_get_the_locale_and_time_zone_unless_told_otherwise() {
        let dir = with_signers();
        let settings = parse_in(dir.path(), MINIMAL).expect("valid");
        assert_eq!(settings.hooks.runas_env, ["LANG", "LC_ALL", "TZ"]);
        assert!(!settings.status.public_logs);
        let text = format!(
            "hooks:\n  runas_env: [LANG, HTTPS_PROXY, no_proxy]\nstatus: {{ public_logs: true }}\n{MINIMAL}"
        );
        let settings = parse_in(dir.path(), &text).expect("valid");
        assert_eq!(
            settings.hooks.runas_env,
            ["LANG", "HTTPS_PROXY", "no_proxy"]
        );
        assert!(settings.status.public_logs);
        let empty = parse_in(
            dir.path(),
            &format!("hooks: {{ runas_env: [] }}\n{MINIMAL}"),
        );
        assert!(empty.expect("valid").hooks.runas_env.is_empty());
    }

    #[test]
    fn runas_env_names_variables_shoal_does_not_set() {
        let dir = with_signers();
        for (names, words) in [
            (
                "[LANG, A=B]",
                "hooks.runas_env: `A=B` is not a variable name",
            ),
            ("[\"\"]", "hooks.runas_env: `` is not a variable name"),
            ("[1X]", "`1X` is not a variable name"),
            (
                "[PATH]",
                "hooks.runas_env: shoal sets PATH for a runas script itself",
            ),
            ("[SHOAL_REVISION]", "shoal sets SHOAL_REVISION"),
            ("[DEPLOYMENT_ID]", "shoal sets DEPLOYMENT_ID"),
        ] {
            let text = format!("hooks:\n  runas_env: {names}\n{MINIMAL}");
            let err = parse_in(dir.path(), &text).expect_err(names).to_string();
            assert!(err.contains(":2: "), "{err}");
            assert!(err.contains(words), "{names}: {err}");
        }
        let err = parse_in(dir.path(), &format!("hooks: {{ runas: [] }}\n{MINIMAL}"))
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("runas"), "{err}");
    }

    /// Each bad file gets one sentence naming the file, the line and the key.
    #[test]
    fn a_mesh_member_may_have_no_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = parse_in(
            dir.path(),
            "mesh: { name: prod, listen: 127.0.0.1:0, seeds: [10.0.0.6:7946], insecure: true }\ngroups: []\n",
        )
        .expect("a mesh member without groups");
        assert!(settings.groups.is_empty());
        let mesh = settings.mesh.expect("mesh");
        assert_eq!(mesh.cluster, "prod");
        assert!(mesh.keyring.is_none(), "insecure: no key");
    }

    #[test]
    fn a_mesh_needs_a_private_key_file_unless_insecure() {
        let dir = with_signers();
        let mesh = |extra: &str| {
            let text = format!("mesh:\n  name: prod\n{extra}{MINIMAL}");
            parse_in(dir.path(), &text).map(|s| s.mesh.expect("mesh"))
        };
        let sealed = mesh("  key_file: gossip.key\n").expect("a key");
        assert!(sealed.keyring.is_some());
        let err = mesh("  key_file: missing.key\n")
            .expect_err("no file")
            .to_string();
        assert!(
            err.contains("missing.key does not exist; make one with `shoal keygen --out"),
            "{err}"
        );
        let key = dir.path().join("gossip.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let err = mesh("  key_file: gossip.key\n")
            .expect_err("exposed")
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        let err = mesh("  key_file: gossip.key\n  insecure: true\n")
            .expect_err("both")
            .to_string();
        assert!(err.contains("remove one of them"), "{err}");
        assert!(mesh("  insecure: true\n").expect("clear").keyring.is_none());
    }

    #[test]
    fn three_members_poll_the_origin_unless_told_and_never_none() {
        let dir = with_signers();
        let pollers = |extra: &str| {
            parse_in(dir.path(), &format!("{MINIMAL}{extra}")).map(|s| s.groups[0].pollers)
        };
        assert_eq!(pollers("").expect("default"), 3);
        assert_eq!(pollers("    pollers: 1\n").expect("one"), 1);
        let err = pollers("    pollers: 0\n").expect_err("none").to_string();
        assert!(
            err.contains("groups[0].pollers: 0 would leave the group without a host"),
            "{err}"
        );
    }

    #[test]
    fn a_group_keeps_a_few_releases_in_the_cache_unless_told() {
        let dir = with_signers();
        let keep = |extra: &str| {
            parse_in(dir.path(), &format!("{MINIMAL}{extra}")).map(|s| s.groups[0].keep_releases)
        };
        assert_eq!(keep("").expect("default"), 2);
        assert_eq!(keep("    keep_releases: 0\n").expect("none"), 0);
        let err = keep("    keep_releases: 101\n")
            .expect_err("too many")
            .to_string();
        assert!(
            err.contains("groups[0].keep_releases: 101 is more than 100"),
            "{err}"
        );
        let err = keep("    keep_releases: -1\n")
            .expect_err("negative")
            .to_string();
        assert!(
            err.contains(":6:") && err.contains("keep_releases"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let dir = with_signers();
        let cases = [
            ("nodes:\n  id: x\n", ":1:", "nodes"),
            (&format!("{MINIMAL}    colour: blue\n"), ":6:", "colour"),
            (
                &MINIMAL.replace("/srv/shop.git }", "/srv/shop.git, poll: 30 }"),
                ":4: poll: `30` has no unit",
                "30s",
            ),
            (
                &MINIMAL.replace("shop.git }", "shop.git, timeout: 0s }"),
                ":4:",
                "groups[0].channel.git.timeout: must be 1s or more",
            ),
            (
                &MINIMAL.replace("git: { url: /srv/shop.git }", "{}"),
                ":4:",
                "exactly one of `git:` or `store:`",
            ),
            (
                &format!("status:\n  listen: localhost\n{MINIMAL}"),
                ":2:",
                "IP:port",
            ),
            (
                &format!("log: {{ format: xml }}\n{MINIMAL}"),
                ":1:",
                "format: unknown variant `xml`, expected one of pretty, json",
            ),
            (
                &format!("{MINIMAL}    rollout: {{ strategy: sideways }}\n"),
                ":6:",
                "groups[0].rollout.strategy",
            ),
            (
                &format!("{MINIMAL}    health: {{ interval: 5s }}\n"),
                ":6:",
                "groups[0].health: set exactly one of",
            ),
            (
                &MINIMAL.replace("allowed_signers\n", "missing_signers\n"),
                ":5:",
                "cannot read",
            ),
            (
                &format!("{MINIMAL}{}", &MINIMAL[8..]),
                ":6:",
                "used by an earlier group",
            ),
            (
                "groups: []\n",
                "",
                "no groups are configured and there is no mesh",
            ),
            (
                &format!("{MINIMAL}    application: \"shop\\n\"\n"),
                "",
                "groups[0].application: `shop\\n` holds a control character",
            ),
        ];
        for (text, line, words) in cases {
            let err = parse_in(dir.path(), text).expect_err(text).to_string();
            assert!(
                err.starts_with(&dir.path().join("agent.yaml").display().to_string()),
                "{err}"
            );
            assert!(err.contains(line), "{text}\nwanted line {line} in: {err}");
            assert!(err.contains(words), "{text}\nwanted `{words}` in: {err}");
        }
    }
}
