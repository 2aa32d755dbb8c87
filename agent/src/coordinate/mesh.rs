//! [`Mesh`]: this host's membership of the gossip mesh. It starts chitchat on a socket it opened
//! itself, writes this host's keys, and reads the peers' as snapshots.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as SyncMutex, MutexGuard};

use chitchat::transport::{Socket, Transport};
use chitchat::{Chitchat, ChitchatHandle, NodeState, spawn_chitchat};
use shoal_shared::gossip::{
    self, GROUPS_KEY, Groups, halt_key, live_key, promote_key, resume_key, rollback_key, state_key,
};
use tokio::sync::{Mutex, watch};
use tracing::{info, warn};

use super::duplicates::Duplicates;
use super::heard::Heard;
use super::sealed::{self, Dropped, Flow, Traffic};
use super::settings::next_generation;
use super::snapshot::{Reader, Source};
use super::task::{ChangesHandle, spawn_changes};
use super::udp::{self, Handover};
use super::{GroupSnapshot, GroupValues, MeshError, MeshSettings, NodeView};

/// A running member of the mesh. Dropping it stops gossip too; [`Mesh::shutdown`] waits for it.
pub struct Mesh {
    node: String,
    addr: SocketAddr,
    handle: ChitchatHandle,
    chitchat: Arc<Mutex<Chitchat>>,
    reader: SyncMutex<Reader>,
    changes_rx: watch::Receiver<u64>,
    changes: ChangesHandle,
    dropped: Arc<Dropped>,
    /// Counted on the sealed socket only.
    traffic: Option<Arc<Traffic>>,
    heard: Arc<Heard>,
    duplicates: Arc<Duplicates>,
}

impl Mesh {
    /// Binds UDP at `settings.listen` (port 0 allowed: the bound port is then advertised),
    /// starts chitchat and publishes `groups`.
    pub async fn start(settings: MeshSettings, groups: &[String]) -> Result<Mesh, MeshError> {
        Self::start_with_values(settings, groups, &BTreeMap::new(), None).await
    }

    /// Same over any chitchat transport (tests use `ChannelTransport`).
    pub async fn start_with(
        settings: MeshSettings,
        groups: &[String],
        transport: &dyn Transport,
    ) -> Result<Mesh, MeshError> {
        Self::start_with_values(settings, groups, &BTreeMap::new(), Some(transport)).await
    }

    /// Starts with `values` (per group) already published, so peers never see this start
    /// without them; over UDP when `transport` is `None`.
    pub async fn start_with_values(
        settings: MeshSettings,
        groups: &[String],
        values: &BTreeMap<String, GroupValues>,
        transport: Option<&dyn Transport>,
    ) -> Result<Mesh, MeshError> {
        settings.check()?;
        let dropped = Arc::new(Dropped::default());
        let mut traffic = None;
        let socket = match (transport, &settings.keyring) {
            (Some(transport), _) => udp::open(transport, settings.listen).await?,
            (None, Some(keyring)) => {
                let keyring = Arc::clone(keyring);
                let counted = traffic.insert(Arc::new(Traffic::default()));
                sealed::bind(
                    settings.listen,
                    keyring,
                    &settings.cluster,
                    settings.max_datagram,
                    Arc::clone(&dropped),
                    Arc::clone(counted),
                )
                .await?
            }
            (None, None) => udp::bind(settings.listen).await?,
        };
        let initial = initial_values(groups, values);
        Self::launch(settings, socket, initial, dropped, traffic).await
    }

    async fn launch(
        settings: MeshSettings,
        socket: Box<dyn Socket>,
        initial: Vec<(String, String)>,
        dropped: Arc<Dropped>,
        traffic: Option<Arc<Traffic>>,
    ) -> Result<Mesh, MeshError> {
        let bound = udp::bound_addr(socket.as_ref(), settings.listen)?;
        let addr = settings.advertised(bound).await;
        let generation = next_generation();
        let config = settings.chitchat_config(generation, bound, addr);
        let handle = spawn_chitchat(config, initial, &Handover::new(socket))
            .await
            .map_err(|error| MeshError::Spawn {
                source: error.into(),
            })?;
        info!(
            gossip.addr = %addr,
            gossip.listen = %bound,
            cluster = %settings.cluster,
            node = %settings.node,
            generation,
            "gossip listening"
        );
        let chitchat = handle.chitchat();
        let (changes_tx, changes_rx) = watch::channel(0);
        let heard = Arc::new(Heard::new(settings.interval));
        let duplicates = Arc::new(Duplicates::default());
        let changes = spawn_changes(
            chitchat.clone(),
            settings.interval,
            changes_tx,
            Arc::clone(&heard),
            Arc::clone(&duplicates),
        );
        Ok(Mesh {
            node: settings.node,
            addr,
            handle,
            chitchat,
            reader: SyncMutex::new(Reader::default()),
            changes_rx,
            changes,
            dropped,
            traffic,
            heard,
            duplicates,
        })
    }

    /// The node ids several live hosts gossip under (found once per gossip round), with the
    /// gossip addresses of the hosts using each; this host's own id among them when another
    /// host took it.
    pub fn duplicates(&self) -> BTreeMap<String, Vec<SocketAddr>> {
        self.duplicates
            .get()
            .into_iter()
            .map(|(id, addrs)| (id, addrs.into_iter().collect()))
            .collect()
    }

    /// Gossip datagrams dropped so far, by reason (`forged`, `unknown_key`, `short`,
    /// `version`, `undecodable`, `too_large`); empty when gossip is not sealed.
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        self.dropped.snapshot()
    }

    /// What the gossip socket sent and received so far; `None` when gossip is not sealed
    /// (chitchat's own socket then, which counts nothing).
    pub fn traffic(&self) -> Option<(Flow, Flow)> {
        let traffic = self.traffic.as_ref()?;
        Some((traffic.sent(), traffic.received()))
    }

    /// This host's node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The address peers gossip to (the bound port; the advertised IP).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets this host's values for `group`: keys whose encoded value changed are written, `None`
    /// deletes (a tombstone peers learn of).
    pub async fn publish(&self, group: &str, values: &GroupValues) {
        let writes = encoded(group, values);
        let mut chitchat = self.chitchat.lock().await;
        let own = chitchat.self_node_state();
        for (key, value) in writes {
            write(own, &key, value);
        }
    }

    /// Sets (or with `None` deletes) this host's [`gossip::Live`] for `group`, if it changed.
    pub async fn publish_live(&self, group: &str, live: Option<&gossip::Live>) {
        let value = live.map(gossip::encode);
        let mut chitchat = self.chitchat.lock().await;
        write(chitchat.self_node_state(), &live_key(group), value);
    }

    /// Says where this host serves the releases it verified (a TCP port at its gossip address).
    pub async fn publish_share(&self, port: u16) {
        let value = gossip::encode(&gossip::Share { port });
        let mut chitchat = self.chitchat.lock().await;
        write(chitchat.self_node_state(), gossip::SHARE_KEY, Some(value));
    }

    /// Replaces the list of groups this host says it belongs to.
    pub async fn publish_groups(&self, groups: &[String]) {
        let value = gossip::encode(&Groups {
            groups: groups.to_vec(),
        });
        let mut chitchat = self.chitchat.lock().await;
        write(chitchat.self_node_state(), GROUPS_KEY, Some(value));
    }

    /// The other members of `group` (nodes whose `groups` lists it), alive or dead until the
    /// dead grace ends, one entry per node id (its newest generation), sorted by node id.
    pub async fn group(&self, group: &str) -> GroupSnapshot {
        let chitchat = self.chitchat.lock().await;
        let recent = self.heard.recent(&chitchat);
        let mut snapshot = self
            .reader()
            .group(&Source::of(&chitchat).with_recent(recent), group);
        snapshot.duplicate = self.duplicates.get().contains_key(&self.node);
        snapshot
    }

    /// Every node the mesh knows, this one included, alive or dead, with all its groups' values.
    pub async fn fleet(&self) -> Vec<NodeView> {
        let chitchat = self.chitchat.lock().await;
        self.reader().fleet(&Source::of(&chitchat))
    }

    /// A counter that rises whenever a peer's values or liveness change (not on heartbeats,
    /// not on this host's own publishes): `changed().await` on it, then take a snapshot. A
    /// peer's new value is signalled the moment it arrives; liveness changes, deletions and dead
    /// peers' values within one gossip interval. One change may count more than once.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes_rx.clone()
    }

    /// Peer values that did not decode (each bad value once per version it is seen at).
    pub fn decode_failures(&self) -> u64 {
        self.reader().failures()
    }

    /// Peer values that did not decode, by reason: `too-long`, `version`, `malformed`.
    pub fn decode_failures_by_reason(&self) -> BTreeMap<&'static str, u64> {
        self.reader().failures_by_reason()
    }

    /// chitchat itself, for what this API does not cover (tests, diagnostics). Its lock is the
    /// one gossip takes on every message: hold it briefly and never across an `.await`.
    pub fn chitchat(&self) -> Arc<Mutex<Chitchat>> {
        self.chitchat.clone()
    }

    /// Stops gossip and the change notifier. Peers are not told: they see this node die after
    /// the failure detector's timeout.
    pub async fn shutdown(self) {
        self.changes.stop().await;
        if let Err(error) = self.handle.shutdown().await {
            warn!(error = %error, "gossip stopped with an error");
        }
    }

    fn reader(&self) -> MutexGuard<'_, Reader> {
        // The reader holds only a cache and counters: a panic mid-update leaves nothing unsafe.
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The keys a start publishes at once: `groups`, and the given values of each group.
fn initial_values(
    groups: &[String],
    values: &BTreeMap<String, GroupValues>,
) -> Vec<(String, String)> {
    let list = Groups {
        groups: groups.to_vec(),
    };
    let mut initial = vec![(GROUPS_KEY.to_owned(), gossip::encode(&list))];
    for (group, published) in values {
        let set = encoded(group, published).into_iter();
        initial.extend(set.filter_map(|(key, value)| Some((key, value?))));
    }
    initial
}

/// Each key of a group's values, with its encoded value or `None` for absent.
fn encoded(group: &str, values: &GroupValues) -> [(String, Option<String>); 5] {
    [
        (state_key(group), values.state.as_ref().map(gossip::encode)),
        (halt_key(group), values.halt.as_ref().map(gossip::encode)),
        (
            resume_key(group),
            values.resume.as_ref().map(gossip::encode),
        ),
        (
            promote_key(group),
            values.promote.as_ref().map(gossip::encode),
        ),
        (
            rollback_key(group),
            values.rollback.as_ref().map(gossip::encode),
        ),
    ]
}

/// Writes one own key only if its value changes; `None` deletes it if present.
fn write(own: &mut NodeState, key: &str, value: Option<String>) {
    match value {
        Some(value) if own.get(key) != Some(value.as_str()) => own.set(key, value),
        None if own.get(key).is_some() => own.delete(key),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::gossip::{Halt, decode};

    use super::*;

    #[test]
    fn a_start_publishes_its_groups_and_given_values() {
        let halt = Halt {
            id: "d-1".into(),
            epoch: 1,
            host: "a".into(),
            reason: "x".into(),
            by: None,
        };
        let values = BTreeMap::from([(
            "web".to_owned(),
            GroupValues {
                halt: Some(halt.clone()),
                ..GroupValues::default()
            },
        )]);
        let initial = initial_values(&["web".into()], &values);
        let keys: Vec<&str> = initial.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [GROUPS_KEY, "g:web:halt"]);
        assert_eq!(decode::<Halt>(&initial[1].1), Ok(halt));
        let groups: Groups = decode(&initial[0].1).expect("groups");
        assert_eq!(groups.groups, ["web"]);
    }
}
