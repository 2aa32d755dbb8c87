//! The mesh's knobs, and how they become a chitchat config: the cluster id, a generation that
//! rises on every start, the failure detector tuned to the gossip interval, and the address
//! peers are told to reach this host at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion};
use tokio::net::{UdpSocket, lookup_host};
use tracing::warn;

use super::MeshError;
use super::seal::Keyring;

/// chitchat's phi threshold: a peer is dead once the time since its last heartbeat exceeds this
/// many mean heartbeat intervals.
const PHI_THRESHOLD: f64 = 8.0;

/// Heartbeat gaps longer than this many gossip intervals (or 10 s) are not learnt from.
const MAX_INTERVAL_ROUNDS: u32 = 10;

/// Heartbeat intervals the failure detector keeps per peer for its mean. chitchat's default of
/// 1,000 preallocates 8 KB per peer (16 MB on each host of a 2,000-host mesh, and 32 GB for a
/// 2,000-node mesh in one test process); the mean of the last 100 is as good a prior, and
/// follows a change of the gossip interval sooner.
const SAMPLING_WINDOW: usize = 100;

/// Where the route to "anywhere" is looked up when no seed says which interface to advertise.
const ROUTE_PROBE_V4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9);
const ROUTE_PROBE_V6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    9,
);

/// How this host joins the mesh: the config's `mesh:` section, read by `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSettings {
    /// The cluster id (`mesh.name`): nodes of other meshes are refused.
    pub cluster: String,
    /// This host's node id.
    pub node: String,
    /// Where gossip listens (port 0 picks a free port, which is then advertised).
    pub listen: SocketAddr,
    /// The address peers reach this host at; by default the bound address, or when that is a
    /// wildcard, this host's address on the route to the first seed.
    pub advertise: Option<SocketAddr>,
    /// Peers to join through (`host:port`, resolved again by chitchat every minute).
    pub seeds: Vec<String>,
    /// Time between gossip rounds.
    pub interval: Duration,
    /// How long a dead member is still shown before it is forgotten.
    pub dead_grace: Duration,
    /// The cluster keys every datagram is sealed and opened with; `None` gossips in the clear
    /// (`mesh.insecure`).
    pub keyring: Option<Arc<Keyring>>,
    /// The largest sealed datagram; larger messages go in parts (sealed gossip only).
    pub max_datagram: usize,
}

impl MeshSettings {
    /// Refuses settings chitchat cannot run with (it panics on a zero interval).
    pub(super) fn check(&self) -> Result<(), MeshError> {
        if self.interval.is_zero() {
            return Err(MeshError::Settings(
                "the gossip interval must be more than 0".to_owned(),
            ));
        }
        if self.dead_grace.is_zero() {
            return Err(MeshError::Settings(
                "the dead grace must be more than 0".to_owned(),
            ));
        }
        Ok(())
    }

    /// The chitchat config of one start of this node, advertised at `advertise`.
    pub(super) fn chitchat_config(
        &self,
        generation: u64,
        listen: SocketAddr,
        advertise: SocketAddr,
    ) -> ChitchatConfig {
        ChitchatConfig {
            chitchat_id: ChitchatId::new(self.node.as_str(), generation, advertise),
            cluster_id: self.cluster.clone(),
            gossip_interval: self.interval,
            listen_addr: listen,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: self.failure_detector(),
            // A peer away for less than the dead grace still holds this node's values and needs
            // the tombstones to learn of deletions; one away longer has forgotten the node and
            // is sent its whole state anyway.
            marked_for_deletion_grace_period: self.dead_grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // Every shoal node speaks V1 (compressed digests) from the first mesh release on.
            protocol_version: ProtocolVersion::V1,
        }
    }

    /// Death is declared after about `PHI_THRESHOLD` mean heartbeat intervals; the prior of that
    /// mean is the gossip interval, so detection is quick from the first heartbeats on (chitchat's
    /// 5 s default would make it take about 40 s).
    fn failure_detector(&self) -> FailureDetectorConfig {
        FailureDetectorConfig {
            phi_threshold: PHI_THRESHOLD,
            initial_interval: self.interval,
            max_interval: self
                .interval
                .saturating_mul(MAX_INTERVAL_ROUNDS)
                .max(Duration::from_secs(10)),
            dead_node_grace_period: self.dead_grace,
            sampling_window_size: SAMPLING_WINDOW,
        }
    }

    /// The address peers are told to gossip to, once the socket is bound at `bound`.
    pub(super) async fn advertised(&self, bound: SocketAddr) -> SocketAddr {
        match self.advertise {
            Some(addr) if addr.port() == 0 => SocketAddr::new(addr.ip(), bound.port()),
            Some(addr) => addr,
            None if bound.ip().is_unspecified() => {
                SocketAddr::new(route_ip(bound.ip(), &self.seeds).await, bound.port())
            }
            None => bound,
        }
    }
}

/// A generation id for this start: wall-clock nanoseconds since the epoch, and strictly more than
/// any earlier start in this process. Across processes it rises as long as the clock does not
/// step back by more than the restart takes (nothing is persisted); a lower generation would be
/// taken for the older one until its dead grace ends.
pub(super) fn next_generation() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::clock::now_ns();
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(0);
    now.max(previous.saturating_add(1))
}

/// This host's address on the route to the first seed that resolves, or to the default route;
/// no datagram is sent (a UDP connect only picks the route). Loopback if nothing routes.
async fn route_ip(wildcard: IpAddr, seeds: &[String]) -> IpAddr {
    for seed in seeds {
        let Ok(mut addrs) = lookup_host(seed.as_str()).await else {
            continue;
        };
        if let Some(ip) = addrs.find(|a| a.is_ipv4() == wildcard.is_ipv4())
            && let Some(local) = local_ip_towards(wildcard, ip).await
        {
            return local;
        }
    }
    let probe = if wildcard.is_ipv4() {
        ROUTE_PROBE_V4
    } else {
        ROUTE_PROBE_V6
    };
    if let Some(local) = local_ip_towards(wildcard, probe).await {
        return local;
    }
    let loopback = if wildcard.is_ipv4() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    };
    warn!(advertise = %loopback, "no route to any peer; advertising loopback, set mesh.advertise");
    loopback
}

async fn local_ip_towards(wildcard: IpAddr, target: SocketAddr) -> Option<IpAddr> {
    let socket = UdpSocket::bind(SocketAddr::new(wildcard, 0)).await.ok()?;
    socket.connect(target).await.ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MeshSettings {
        MeshSettings {
            cluster: "prod".into(),
            node: "web-1".into(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            advertise: None,
            seeds: vec!["127.0.0.1:7946".into()],
            interval: Duration::from_millis(100),
            dead_grace: Duration::from_secs(600),
            keyring: None,
            max_datagram: crate::coordinate::MAX_DATAGRAM,
        }
    }

    #[test]
    fn generations_rise_on_every_start() {
        let first = next_generation();
        let second = next_generation();
        assert!(second > first, "{first} then {second}");
        assert!(first > 1_700_000_000_000_000_000, "nanoseconds since 1970");
    }

    #[test]
    fn the_failure_detector_follows_the_interval() {
        let config = settings().chitchat_config(
            7,
            "127.0.0.1:1".parse().expect("addr"),
            "127.0.0.1:1".parse().expect("addr"),
        );
        let detector = &config.failure_detector_config;
        assert_eq!(detector.initial_interval, Duration::from_millis(100));
        assert_eq!(detector.dead_node_grace_period, Duration::from_secs(600));
        assert_eq!(detector.max_interval, Duration::from_secs(10));
        assert_eq!(config.cluster_id, "prod");
        assert_eq!(config.chitchat_id.generation_id, 7);
    }

    #[tokio::test]
    async fn the_bound_port_is_advertised() {
        let bound: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        assert_eq!(settings().advertised(bound).await, bound);
        let mut explicit = settings();
        explicit.advertise = Some("10.0.0.5:0".parse().expect("addr"));
        assert_eq!(
            explicit.advertised(bound).await,
            "10.0.0.5:4321".parse::<SocketAddr>().expect("addr")
        );
        let wildcard: SocketAddr = "0.0.0.0:4321".parse().expect("addr");
        let guessed = settings().advertised(wildcard).await;
        assert_eq!(
            guessed,
            "127.0.0.1:4321".parse::<SocketAddr>().expect("addr")
        );
    }

    #[test]
    fn a_zero_interval_is_refused() {
        let mut zero = settings();
        zero.interval = Duration::ZERO;
        assert_eq!(zero.check().map_err(|e| e.kind()), Err("settings"));
        assert!(settings().check().is_ok());
    }
}
