//! The agent config file as written (`/etc/shoal/agent.yaml`): structs that refuse unknown
//! keys, and value types that check themselves while the YAML is read, so every error carries
//! the line it is on.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;
use shoal_shared::duration::parse_duration;
use shoal_shared::rollout::{RawHealth, RawPolicy};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub node: NodeFile,
    #[serde(default)]
    pub status: StatusFile,
    #[serde(default)]
    pub log: LogFile,
    #[serde(default)]
    pub hooks: HooksFile,
    pub mesh: Option<Spanned<MeshFile>>,
    #[serde(default)]
    pub groups: Vec<Spanned<GroupFile>>,
    #[serde(default)]
    pub notify: NotifyFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub id: Option<Spanned<String>>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long a running hook may go on after SIGTERM before its process group is killed.
    pub shutdown_grace: Option<DurationValue>,
    /// Where the AppSpec's `files` and `permissions` paths are resolved (default `/`).
    pub files_root: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    pub listen: Option<ListenAddr>,
    pub token_file: Option<PathBuf>,
    /// Serve hook output to any client of the endpoint, without the admin token.
    #[serde(default)]
    pub public_logs: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksFile {
    /// The names of the agent's variables a runas script gets.
    pub runas_env: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<LogFormat>,
    pub level: Option<Spanned<String>>,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Pretty,
    /// One JSON object a line.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshFile {
    pub name: String,
    pub listen: Option<String>,
    pub advertise: Option<String>,
    #[serde(default)]
    pub seeds: Vec<String>,
    pub interval: Option<DurationValue>,
    /// How long a dead member is remembered before it is forgotten.
    pub dead_grace: Option<DurationValue>,
    /// The cluster keyring (default `/etc/shoal/gossip.key`).
    pub key_file: Option<PathBuf>,
    /// Gossip in the clear, with no key.
    #[serde(default)]
    pub insecure: bool,
    /// The largest gossip datagram in bytes.
    pub max_datagram: Option<usize>,
    /// How this host serves releases to its peers.
    pub share: Option<ShareFile>,
}

/// `mesh.share:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    /// Where the TCP service listens (default: the gossip address and port).
    pub listen: Option<String>,
    /// Copies served at once; 0 serves none.
    pub uploads: Option<usize>,
    /// Bytes a second for all uploads, e.g. `100MB/s` or `800Mbit/s`.
    pub upload_rate: Option<String>,
}

/// `notify:`: where rollout events go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    #[serde(default)]
    pub webhooks: Vec<Spanned<WebhookFile>>,
    pub command: Option<Spanned<CommandFile>>,
    /// How many deliveries may wait.
    pub queue: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub url: String,
    /// The key of `X-Shoal-Signature` (mode 0600).
    pub secret_file: Option<PathBuf>,
    /// Event names; all of them when absent.
    pub events: Option<Vec<String>>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    pub path: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// Event names; all of them when absent.
    pub events: Option<Vec<String>>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub name: String,
    pub application: Option<String>,
    pub channel: Spanned<ChannelFile>,
    pub allowed_signers: Spanned<PathBuf>,
    pub rollout: Option<Spanned<RawPolicy>>,
    pub health: Option<Spanned<RawHealth>>,
    /// Deployment directories kept on disk, this one included.
    pub max_revisions: Option<usize>,
    /// Releases of the group kept in the release cache besides those in use.
    pub keep_releases: Option<usize>,
    /// SIGTERM → SIGKILL grace for a timed-out script.
    pub kill_grace: Option<DurationValue>,
    /// The group's size across the mesh, if the quorum is to count against it.
    pub expected_members: Option<usize>,
    /// How many members poll a remote channel's origin.
    pub pollers: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFile {
    pub git: Option<GitFile>,
    pub store: Option<StoreFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitFile {
    pub url: String,
    pub tags: Option<String>,
    pub poll: Option<DurationValue>,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub ssh_key: Option<PathBuf>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    pub url: String,
    pub poll: Option<DurationValue>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
}

/// A duration written `500ms`, `30s`, `5m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 30s, 5m or 1h")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_duration(text).map(DurationValue).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{n}` has no unit; write a duration such as {n}s, {n}ms, {n}m or {n}h"
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                self.visit_u64(n.unsigned_abs())
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// An address to listen on: `IP:port` (port 0 picks a free one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(ListenAddr).map_err(|_| {
            de::Error::custom(format!(
                "`{text}` is not an address to listen on; write IP:port, e.g. 127.0.0.1:7701"
            ))
        })
    }
}
