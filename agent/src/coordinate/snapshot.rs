//! Reading peers out of chitchat's state: which generation of each node id is shown, and every
//! value decoded once per version (a cache), with unreadable values skipped and counted.
//!
//! Which generation: a restarted agent is a new chitchat node with the same node id. A peer may
//! learn a generation from a digest (its heartbeat) a moment before its values; so a generation
//! is shown once its `groups` key has arrived (every start publishes it at once), and until then
//! the previous one stays. The newest shown generation wins; this host always shows itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use chitchat::{Chitchat, ChitchatId, NodeState, Version, VersionedValue};
use shoal_shared::gossip::{
    self, DecodeError, GROUPS_KEY, GroupState, Groups, Halt, Live, Promote, Resume, Rollback,
};
use tracing::debug;

use super::{GroupSnapshot, GroupValues, NodeView, PeerState};

/// The part of chitchat's state a snapshot is read from (borrowed under its lock).
pub(super) struct Source<'a> {
    me: &'a ChitchatId,
    nodes: &'a BTreeMap<ChitchatId, NodeState>,
    live: HashSet<&'a ChitchatId>,
    /// Peers heard from within the last few rounds ([`super::heard::Heard`]).
    recent: HashSet<ChitchatId>,
}

impl<'a> Source<'a> {
    pub(super) fn of(chitchat: &'a Chitchat) -> Self {
        Self {
            me: chitchat.self_chitchat_id(),
            nodes: chitchat.node_states(),
            live: chitchat.live_nodes().collect(),
            recent: HashSet::new(),
        }
    }

    /// With the peers heard from recently.
    pub(super) fn with_recent(mut self, recent: HashSet<ChitchatId>) -> Self {
        self.recent = recent;
        self
    }

    fn recent(&self, id: &ChitchatId) -> bool {
        self.alive(id) && self.recent.contains(id)
    }

    fn alive(&self, id: &ChitchatId) -> bool {
        id == self.me || self.live.contains(id)
    }

    /// The shown generation of every node id, in node id order.
    fn visible(&self) -> Vec<(&'a ChitchatId, &'a NodeState)> {
        let mut chosen: BTreeMap<&'a str, (&'a ChitchatId, &'a NodeState)> = BTreeMap::new();
        for (id, state) in self.nodes {
            let slot = chosen.entry(&*id.node_id).or_insert((id, state));
            if self.shown_before(id, state, slot) {
                *slot = (id, state);
            }
        }
        chosen.into_values().collect()
    }

    /// Whether generation `id` is shown rather than the one chosen so far for its node id.
    fn shown_before(
        &self,
        id: &ChitchatId,
        state: &NodeState,
        (chosen_id, chosen_state): &(&ChitchatId, &NodeState),
    ) -> bool {
        if *chosen_id == self.me {
            return false;
        }
        if id == self.me {
            return true;
        }
        let rank = |id: &ChitchatId, state: &NodeState| {
            (state.get_versioned(GROUPS_KEY).is_some(), id.generation_id)
        };
        rank(id, state) > rank(chosen_id, chosen_state)
    }
}

/// Where a node serves releases: its gossip IP and the port its `share` key names.
fn share_addr(id: &ChitchatId, state: &NodeState) -> Option<SocketAddr> {
    let share: gossip::Share = gossip::decode(state.get(gossip::SHARE_KEY)?).ok()?;
    (share.port != 0).then(|| SocketAddr::new(id.gossip_advertise_addr.ip(), share.port))
}

/// A decoded value of one of the schema's keys.
#[derive(Debug, Clone)]
enum Value {
    Groups(Vec<String>),
    State(GroupState),
    Halt(Halt),
    Resume(Resume),
    Promote(Promote),
    Live(Box<Live>),
    Rollback(Box<Rollback>),
}

/// What a key holds, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Groups,
    State,
    Halt,
    Resume,
    Promote,
    Live,
    Rollback,
}

impl Kind {
    fn of(key: &str) -> Option<Kind> {
        if key == GROUPS_KEY {
            return Some(Kind::Groups);
        }
        let (_, kind) = gossip::split_group_key(key)?;
        match kind {
            "state" => Some(Kind::State),
            "halt" => Some(Kind::Halt),
            "resume" => Some(Kind::Resume),
            "promote" => Some(Kind::Promote),
            "live" => Some(Kind::Live),
            "rollback" => Some(Kind::Rollback),
            // A newer shoal's key: not ours to read.
            _ => None,
        }
    }

    fn decode(self, text: &str) -> Result<Value, DecodeError> {
        Ok(match self {
            Kind::Groups => Value::Groups(gossip::decode::<Groups>(text)?.groups),
            Kind::State => Value::State(gossip::decode(text)?),
            Kind::Halt => Value::Halt(gossip::decode(text)?),
            Kind::Resume => Value::Resume(gossip::decode(text)?),
            Kind::Promote => Value::Promote(gossip::decode(text)?),
            Kind::Live => Value::Live(Box::new(gossip::decode(text)?)),
            Kind::Rollback => Value::Rollback(Box::new(gossip::decode(text)?)),
        })
    }
}

/// One value as last decoded: its version, and what it read as (`None`: unreadable).
#[derive(Debug)]
struct Cached {
    version: Version,
    value: Option<Value>,
}

/// Reads snapshots, decoding each peer value once per version and counting the unreadable ones
/// once each, by reason (`too-long`, `version`, `malformed`).
#[derive(Debug, Default)]
pub(super) struct Reader {
    cache: HashMap<ChitchatId, HashMap<String, Cached>>,
    failures: BTreeMap<&'static str, u64>,
}

impl Reader {
    /// The other members of `group`.
    pub(super) fn group(&mut self, source: &Source<'_>, group: &str) -> GroupSnapshot {
        let mut peers = Vec::new();
        for (id, state) in source.visible() {
            if id.node_id == source.me.node_id || !self.groups(id, state).iter().any(|g| g == group)
            {
                continue;
            }
            let values = self.published(id, state, group);
            peers.push(PeerState {
                node: id.node_id.to_string(),
                alive: source.alive(id),
                recent: source.recent(id),
                state: values.state,
                halt: values.halt,
                resume: values.resume,
                promote: values.promote,
                rollback: values.rollback,
                share: share_addr(id, state),
            });
        }
        self.forget_gone(source);
        GroupSnapshot {
            peers,
            duplicate: false,
        }
    }

    /// Every node, this one included.
    pub(super) fn fleet(&mut self, source: &Source<'_>) -> Vec<NodeView> {
        let mut nodes = Vec::new();
        for (id, state) in source.visible() {
            let groups = self.groups(id, state);
            let mut values: BTreeMap<String, GroupValues> = BTreeMap::new();
            for (key, versioned) in state.iter_prefix("g:") {
                let Some((group, _)) = gossip::split_group_key(key) else {
                    continue;
                };
                if let Some(value) = self.read(id, key, versioned) {
                    fill(values.entry(group.to_owned()).or_default(), value);
                }
            }
            nodes.push(NodeView {
                id: id.node_id.to_string(),
                alive: source.alive(id),
                groups,
                values,
            });
        }
        self.forget_gone(source);
        nodes
    }

    /// Values that did not decode, in all.
    pub(super) fn failures(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Values that did not decode, by reason.
    pub(super) fn failures_by_reason(&self) -> BTreeMap<&'static str, u64> {
        self.failures.clone()
    }

    fn groups(&mut self, id: &ChitchatId, state: &NodeState) -> Vec<String> {
        let Some(versioned) = state.get_versioned(GROUPS_KEY) else {
            return Vec::new();
        };
        match self.read(id, GROUPS_KEY, versioned) {
            Some(Value::Groups(groups)) => groups,
            _ => Vec::new(),
        }
    }

    fn published(&mut self, id: &ChitchatId, state: &NodeState, group: &str) -> GroupValues {
        let mut published = GroupValues::default();
        for (key, versioned) in state.iter_prefix(&gossip::group_prefix(group)) {
            if gossip::split_group_key(key).map(|(g, _)| g) != Some(group) {
                continue;
            }
            if let Some(value) = self.read(id, key, versioned) {
                fill(&mut published, value);
            }
        }
        published
    }

    /// The decoded value of `key` at its current version; `None` if deleted, not one of the
    /// schema's keys, or unreadable.
    fn read(&mut self, id: &ChitchatId, key: &str, versioned: &VersionedValue) -> Option<Value> {
        if versioned.is_deleted() {
            return None;
        }
        let kind = Kind::of(key)?;
        let node = self.cache.entry(id.clone()).or_default();
        if let Some(cached) = node.get(key)
            && cached.version == versioned.version
        {
            return cached.value.clone();
        }
        let value = match kind.decode(&versioned.value) {
            Ok(value) => Some(value),
            Err(error) => {
                debug!(peer.id = %id.node_id, key, %error, "unreadable gossip value skipped");
                *self.failures.entry(reason(&error)).or_default() += 1;
                None
            }
        };
        node.insert(
            key.to_owned(),
            Cached {
                version: versioned.version,
                value: value.clone(),
            },
        );
        value
    }

    /// Drops cached values of nodes chitchat forgot, and of keys they deleted.
    fn forget_gone(&mut self, source: &Source<'_>) {
        self.cache.retain(|id, keys| {
            let Some(state) = source.nodes.get(id) else {
                return false;
            };
            keys.retain(|key, _| state.get(key).is_some());
            true
        });
    }
}

fn fill(published: &mut GroupValues, value: Value) {
    match value {
        Value::State(state) => published.state = Some(state),
        Value::Halt(halt) => published.halt = Some(halt),
        Value::Resume(resume) => published.resume = Some(resume),
        Value::Promote(promote) => published.promote = Some(promote),
        Value::Live(live) => published.live = Some(*live),
        Value::Rollback(rollback) => published.rollback = Some(*rollback),
        Value::Groups(_) => {}
    }
}

fn reason(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::TooLong(_) => "too-long",
        DecodeError::Version(_) => "version",
        DecodeError::Malformed(_) => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use chitchat::DeletionStatus;
    use shoal_shared::gossip::{Step, encode, halt_key, state_key};

    use super::*;
    use crate::coordinate::MeshSettings;

    fn id(node: &str, generation: u64, port: u16) -> ChitchatId {
        ChitchatId::new(node, generation, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn groups(names: &[&str]) -> String {
        encode(&Groups {
            groups: names.iter().map(|g| (*g).to_owned()).collect(),
        })
    }

    fn state(step: Step) -> GroupState {
        GroupState {
            revision: Some("v1".into()),
            digest: None,
            target: None,
            step: Some(step),
            epoch: 0,
            failures: 0,
            reason: None,
            health: shoal_shared::gossip::Health::None,
            members: None,
            forgets: Vec::new(),
            leaving: false,
        }
    }

    fn halt() -> Halt {
        Halt {
            id: "d-1".into(),
            epoch: 1,
            host: "b".into(),
            reason: "hook failed".into(),
            by: None,
        }
    }

    /// A chitchat instance that is `me`, with no network.
    fn chitchat(me: &ChitchatId) -> Chitchat {
        let settings = MeshSettings {
            cluster: "test".into(),
            node: me.node_id.to_string(),
            listen: me.gossip_advertise_addr,
            advertise: None,
            seeds: Vec::new(),
            interval: Duration::from_millis(100),
            dead_grace: Duration::from_secs(600),
            keyring: None,
            max_datagram: crate::coordinate::MAX_DATAGRAM,
        };
        let config = settings.chitchat_config(
            me.generation_id,
            me.gossip_advertise_addr,
            me.gossip_advertise_addr,
        );
        let (_seeds_tx, seeds_rx) = tokio::sync::watch::channel(HashSet::new());
        Chitchat::with_chitchat_id_and_seeds(
            config,
            seeds_rx,
            vec![(GROUPS_KEY.to_owned(), groups(&["web"]))],
        )
    }

    /// Sets a peer's whole state, as a catch-up from gossip would (`version` must rise).
    fn peer(chitchat: &mut Chitchat, id: &ChitchatId, version: u64, values: &[(&str, String)]) {
        let values = values.iter().map(|(key, value)| {
            let versioned = VersionedValue {
                value: value.clone(),
                version,
                status: DeletionStatus::Set,
            };
            ((*key).to_owned(), versioned)
        });
        chitchat.reset_node_state_if_update(id, values, version, 0);
    }

    fn source<'a>(chitchat: &'a Chitchat, live: &[&'a ChitchatId]) -> Source<'a> {
        Source {
            me: chitchat.self_chitchat_id(),
            nodes: chitchat.node_states(),
            live: live.iter().copied().collect(),
            recent: live.iter().map(|id| (*id).clone()).collect(),
        }
    }

    #[test]
    fn a_group_lists_its_other_members_with_their_values() {
        let me = id("a", 1, 1);
        let (b, c, d) = (id("b", 1, 2), id("c", 1, 3), id("d", 1, 4));
        let mut chitchat = chitchat(&me);
        let running = encode(&state(Step::Running));
        peer(
            &mut chitchat,
            &c,
            1,
            &[
                (GROUPS_KEY, groups(&["web", "db"])),
                (&state_key("web"), running.clone()),
            ],
        );
        peer(
            &mut chitchat,
            &b,
            1,
            &[
                (GROUPS_KEY, groups(&["web"])),
                (&halt_key("web"), encode(&halt())),
            ],
        );
        peer(
            &mut chitchat,
            &d,
            1,
            &[(GROUPS_KEY, groups(&["db"])), (&state_key("web"), running)],
        );
        let mut reader = Reader::default();
        let web = reader.group(&source(&chitchat, &[&b]), "web");
        let nodes: Vec<_> = web
            .peers
            .iter()
            .map(|p| (p.node.as_str(), p.alive))
            .collect();
        assert_eq!(nodes, [("b", true), ("c", false)]);
        assert_eq!(web.peers[0].halt, Some(halt()));
        assert_eq!(web.peers[1].state, Some(state(Step::Running)));
        let view = web.view();
        assert_eq!(
            view.peers[1].state.and_then(|s| s.step),
            Some(Step::Running)
        );
        let db = reader.group(&source(&chitchat, &[]), "db");
        assert_eq!(
            db.peers.iter().map(|p| p.node.as_str()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        assert_eq!(db.peers[0].state, None, "c publishes no db state");
        assert_eq!(reader.failures(), 0);
    }

    #[test]
    fn unreadable_values_are_skipped_and_counted_once_per_version() {
        let me = id("a", 1, 1);
        let b = id("b", 1, 2);
        let mut chitchat = chitchat(&me);
        let hostile = [
            (GROUPS_KEY, groups(&["web"])),
            ("g:web:state", "{\"v\":1,\"step\":\"sideways\"}".to_owned()),
            ("g:web:halt", "x".repeat(gossip::MAX_VALUE + 1)),
            (
                "g:web:resume",
                "{\"v\":0,\"id\":\"d\",\"epoch\":1}".to_owned(),
            ),
            ("g:web:promote", "\u{0}\u{ff}[[[".to_owned()),
            ("g:web:future", "anything".to_owned()),
            ("unrelated", "anything".to_owned()),
        ];
        peer(&mut chitchat, &b, 1, &hostile);
        let mut reader = Reader::default();
        for _ in 0..3 {
            let web = reader.group(&source(&chitchat, &[&b]), "web");
            assert_eq!(web.peers.len(), 1);
            assert_eq!(web.peers[0].state, None);
            assert_eq!(web.peers[0].halt, None);
        }
        let by_reason = reader.failures_by_reason();
        assert_eq!(by_reason.get("malformed"), Some(&2), "{by_reason:?}");
        assert_eq!(by_reason.get("too-long"), Some(&1));
        assert_eq!(by_reason.get("version"), Some(&1));
        assert_eq!(reader.failures(), 4);
        let mut fixed = hostile.to_vec();
        fixed[1].1 = encode(&state(Step::Done));
        peer(&mut chitchat, &b, 2, &fixed);
        let web = reader.group(&source(&chitchat, &[&b]), "web");
        assert_eq!(web.peers[0].state, Some(state(Step::Done)));
        assert_eq!(
            reader.failures(),
            7,
            "the other bad values are new versions"
        );
    }

    #[test]
    fn the_newest_generation_with_values_replaces_the_old_one() {
        let me = id("a", 1, 1);
        let (old, new) = (id("b", 10, 2), id("b", 20, 3));
        let mut chitchat = chitchat(&me);
        let running = encode(&state(Step::Running));
        peer(
            &mut chitchat,
            &old,
            1,
            &[(GROUPS_KEY, groups(&["web"])), (&state_key("web"), running)],
        );
        peer(&mut chitchat, &new, 1, &[]);
        let mut reader = Reader::default();
        let web = reader.group(&source(&chitchat, &[&old]), "web");
        assert_eq!(web.peers.len(), 1);
        assert!(
            web.peers[0].alive,
            "the new generation has no values yet: the old one shows"
        );
        assert_eq!(web.peers[0].state, Some(state(Step::Running)));
        peer(&mut chitchat, &new, 2, &[(GROUPS_KEY, groups(&["web"]))]);
        let web = reader.group(&source(&chitchat, &[&old]), "web");
        assert_eq!(web.peers.len(), 1);
        assert!(!web.peers[0].alive, "the new generation is not alive yet");
        assert_eq!(web.peers[0].state, None);
        let web = reader.group(&source(&chitchat, &[&new]), "web");
        assert!(web.peers[0].alive);
    }

    #[test]
    fn the_fleet_shows_every_node_once_this_one_included() {
        let me = id("a", 5, 1);
        let my_old = id("a", 2, 1);
        let b = id("b", 1, 2);
        let mut chitchat = chitchat(&me);
        chitchat
            .self_node_state()
            .set(state_key("web"), encode(&state(Step::Waiting)));
        peer(&mut chitchat, &my_old, 1, &[(GROUPS_KEY, groups(&["old"]))]);
        peer(
            &mut chitchat,
            &b,
            1,
            &[
                (GROUPS_KEY, groups(&["web"])),
                (&halt_key("api"), encode(&halt())),
            ],
        );
        let mut reader = Reader::default();
        let fleet = reader.fleet(&source(&chitchat, &[]));
        assert_eq!(fleet.len(), 2);
        assert_eq!((fleet[0].id.as_str(), fleet[0].alive), ("a", true));
        assert_eq!(fleet[0].groups, ["web"]);
        assert_eq!(fleet[0].values["web"].state, Some(state(Step::Waiting)));
        assert_eq!((fleet[1].id.as_str(), fleet[1].alive), ("b", false));
        assert_eq!(fleet[1].values["api"].halt, Some(halt()));
        assert!(
            reader
                .group(&source(&chitchat, &[]), "old")
                .peers
                .is_empty()
        );
    }
}
