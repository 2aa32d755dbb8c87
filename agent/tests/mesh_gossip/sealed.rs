//! Sealed gossip over real UDP on 127.0.0.1: nodes on one cluster key mesh; a node on another
//! key never sees them nor they it; noise, forgeries and replayed datagrams sent to the gossip
//! port change nothing and are counted by reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_agent::coordinate::seal::{self, Keyring};
use shoal_agent::coordinate::{GroupValues, Mesh, MeshSettings, REPLAY_WINDOW};
use shoal_shared::gossip::Step;
use shoal_tests::udp::Recorder;
use tokio::net::UdpSocket;

use crate::{eventually, exclusive, settings, state};

const INTERVAL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(20);

fn keyring() -> Arc<Keyring> {
    let key = shoal_agent::coordinate::seal::generate().unwrap();
    Arc::new(Keyring::parse(&key).unwrap())
}

fn sealed(node: &str, seeds: &[SocketAddr], keyring: &Arc<Keyring>) -> MeshSettings {
    MeshSettings {
        keyring: Some(Arc::clone(keyring)),
        ..settings(node, seeds, INTERVAL)
    }
}

async fn start(settings: MeshSettings) -> Mesh {
    Mesh::start(settings, &["web".to_owned()]).await.unwrap()
}

fn dropped(mesh: &Mesh, reason: &str) -> u64 {
    mesh.dropped()
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| *n)
}

/// Waits until `at` sees `node` publish `revision` for the group `web`.
async fn sees(at: &Mesh, node: &str, revision: &str) {
    let what = format!("{} to see {node} on {revision}", at.node());
    eventually(DEADLINE, &what, || async {
        let web = at.group("web").await;
        (web.peer(node)?.state == published(revision).state).then_some(())
    })
    .await;
}

/// Nodes a and b on `key`, b joined through a relay that keeps a copy of every datagram b
/// sends; b is on v1 at a, and the relay holds a few datagrams.
async fn recorded_pair(key: &Arc<Keyring>) -> (Mesh, Recorder, Mesh) {
    let a = start(sealed("a", &[], key)).await;
    let relay = Recorder::start(a.gossip_addr()).unwrap();
    let b = start(sealed("b", &[relay.addr], key)).await;
    b.publish("web", &published("v1")).await;
    sees(&a, "b", "v1").await;
    eventually(
        DEADLINE,
        "the relay to hold a few of b's datagrams",
        || async { (relay.seen().len() >= 5).then_some(()) },
    )
    .await;
    (a, relay, b)
}

fn published(revision: &str) -> GroupValues {
    GroupValues {
        state: Some(state(revision, Step::Done)),
        ..GroupValues::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_key_meshes_and_another_key_is_never_seen() {
    let _one = exclusive().await;
    let (ours, theirs) = (keyring(), keyring());
    let a = start(sealed("a", &[], &ours)).await;
    let b = start(sealed("b", &[a.gossip_addr()], &ours)).await;
    let stranger = start(sealed("x", &[a.gossip_addr(), b.gossip_addr()], &theirs)).await;
    b.publish("web", &published("v1")).await;
    sees(&a, "b", "v1").await;
    eventually(DEADLINE, "a to drop the stranger's datagrams", || async {
        (dropped(&a, "unknown_key") > 0).then_some(())
    })
    .await;
    for mesh in [&a, &b] {
        let web = mesh.group("web").await;
        assert!(web.peer("x").is_none(), "the stranger is not a member");
    }
    assert!(
        stranger.group("web").await.peers.is_empty(),
        "the stranger sees no one"
    );
    for mesh in [a, b, stranger] {
        mesh.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn noise_and_replays_change_nothing_and_are_counted() {
    let _one = exclusive().await;
    let key = keyring();
    let (a, relay, b) = recorded_pair(&key).await;
    b.publish("web", &published("v2")).await;
    sees(&a, "b", "v2").await;

    // A third socket: b's old datagrams again, a forged copy, and noise of every length (last,
    // as a burst of it may overflow a's socket buffer).
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = a.gossip_addr();
    let old: Vec<Vec<u8>> = relay.seen();
    for datagram in &old {
        attacker.send_to(datagram, target).await.unwrap();
    }
    let mut forged = old[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    attacker.send_to(&forged, target).await.unwrap();
    for len in 0..200usize {
        let noise: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        attacker.send_to(&noise, target).await.unwrap();
    }
    eventually(DEADLINE, "every kind of bad datagram counted", || async {
        let counted = dropped(&a, "short") > 0
            && dropped(&a, "forged") > 0
            && dropped(&a, "replayed") >= old.len() as u64 / 2;
        counted.then_some(())
    })
    .await;
    // Ten rounds later a still sees b on v2, alive.
    let until = tokio::time::Instant::now() + INTERVAL * 10;
    while tokio::time::Instant::now() < until {
        let web = a.group("web").await;
        let peer = web.peer("b").expect("b is still a member");
        assert_eq!(peer.state, published("v2").state, "nothing went back");
        assert!(peer.alive);
        tokio::time::sleep(INTERVAL).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// How many keys `node`'s state holds for peer `of`, as `node`'s chitchat sees them.
async fn keys_seen(mesh: &Mesh, of: &Mesh, prefix: &str) -> usize {
    let chitchat = mesh.chitchat();
    let chitchat = chitchat.lock().await;
    let other = of.chitchat();
    let other = other.lock().await.self_chitchat_id().clone();
    chitchat.node_state(&other).map_or(0, |state| {
        state
            .key_values()
            .filter(|(k, _)| k.starts_with(prefix))
            .count()
    })
}

/// chitchat fills a message up to the largest UDP payload; with `mesh.max_datagram` smaller
/// than that (here 1,200 bytes) each message is sealed in parts, none larger, and put back
/// together before chitchat reads it: a 200 KiB state crosses whole.
#[tokio::test(flavor = "current_thread")]
async fn a_state_larger_than_a_datagram_crosses_in_parts() {
    let _one = exclusive().await;
    const MAX: usize = 1_200;
    let key = keyring();
    let small = |node: &str, seeds: &[SocketAddr]| MeshSettings {
        max_datagram: MAX,
        ..sealed(node, seeds, &key)
    };
    let a = start(small("a", &[])).await;
    // b joins through a relay that keeps a copy of every datagram b sends.
    let relay = Recorder::start(a.gossip_addr()).unwrap();
    let b = start(small("b", &[relay.addr])).await;
    // 5,000 keys whose values do not compress, so chitchat's messages are as full as it makes
    // them.
    const KEYS: usize = 5_000;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    {
        let chitchat = b.chitchat();
        let mut chitchat = chitchat.lock().await;
        let state = chitchat.self_node_state();
        for i in 0..KEYS {
            let value: String = (0..24)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(ALPHABET[(seed % 64) as usize])
                })
                .collect();
            state.set(format!("bulk:{i:05}"), value);
        }
    }
    eventually(DEADLINE, "a to hold every one of b's keys", || async {
        (keys_seen(&a, &b, "bulk:").await == KEYS).then_some(())
    })
    .await;
    let sent = relay.seen();
    let largest = sent.iter().map(Vec::len).max().unwrap_or(0);
    let full_parts = sent.iter().filter(|d| d.len() == MAX).count();
    assert!(largest <= MAX, "b sent a datagram of {largest} bytes");
    assert!(
        full_parts >= 2,
        "b's messages went in parts of exactly {MAX} bytes (saw {full_parts} of {})",
        sent.len()
    );
    for mesh in [&a, &b] {
        assert_eq!(mesh.dropped(), vec![], "nothing dropped on one key");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Exact replays are dropped while their nonce is among the last `REPLAY_WINDOW` seen; older
/// ones reach chitchat, whose versions do not go back: b's datagrams from when it was on v1,
/// replayed once the window has moved past them, are answered (so chitchat read them) and a
/// still sees b on v2.
#[tokio::test(flavor = "current_thread")]
async fn replays_older_than_the_window_do_not_roll_state_back() {
    let _one = exclusive().await;
    let key = keyring();
    let (a, relay, b) = recorded_pair(&key).await;
    let old: Vec<Vec<u8>> = relay.seen();
    b.publish("web", &published("v2")).await;
    sees(&a, "b", "v2").await;

    // Move a's window past the old datagrams: sealed frames of no known kind, each with a
    // fresh nonce, opened and remembered, then dropped as undecodable.
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = a.gossip_addr();
    let flood = REPLAY_WINDOW as u64 + 100;
    let before = dropped(&a, "undecodable");
    let mut sent = 0;
    while sent < flood {
        for _ in 0..64.min(flood - sent) {
            let nonce = shoal_agent::coordinate::seal::nonce().unwrap();
            let datagram = key.seal("test", &[9], &nonce);
            attacker.send_to(&datagram, target).await.unwrap();
            sent += 1;
        }
        eventually(DEADLINE, "a to take in the flood", || async {
            (dropped(&a, "undecodable") - before >= sent).then_some(())
        })
        .await;
    }
    let replayed_before = dropped(&a, "replayed");
    for datagram in &old {
        attacker.send_to(datagram, target).await.unwrap();
    }
    // a answers at least one of them: they went past the window to chitchat.
    let mut buf = vec![0; 65_536];
    let answered = tokio::time::timeout(DEADLINE, attacker.recv_from(&mut buf)).await;
    assert!(
        matches!(answered, Ok(Ok((_, from))) if from == target),
        "a answers a replay older than the window"
    );
    assert_eq!(
        dropped(&a, "replayed"),
        replayed_before,
        "none was in the window"
    );
    let until = tokio::time::Instant::now() + INTERVAL * 10;
    while tokio::time::Instant::now() < until {
        let web = a.group("web").await;
        let peer = web.peer("b").expect("b is still a member");
        assert_eq!(peer.state, published("v2").state, "nothing went back");
        tokio::time::sleep(INTERVAL).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// An agent that restarted remembers no nonces: b's datagrams recorded before it started are
/// refused all the same (by the time sealed into them), and chitchat never reads them; so is a
/// datagram sealed longer ago than `MAX_AGE`, or too far ahead of this clock.
#[tokio::test(flavor = "current_thread")]
async fn replays_to_a_restarted_agent_and_old_datagrams_are_refused() {
    let _one = exclusive().await;
    let key = keyring();
    let (a, relay, b) = recorded_pair(&key).await;
    let old: Vec<Vec<u8>> = relay.seen();
    a.shutdown().await;
    b.shutdown().await;
    // The restarted agent: a new mesh instance on the same key and mesh name.
    let restarted = start(sealed("a", &[], &key)).await;
    let target = restarted.gossip_addr();
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for datagram in &old {
        attacker.send_to(datagram, target).await.unwrap();
    }
    eventually(
        DEADLINE,
        "the replays to be refused as sent before the start",
        || async { (dropped(&restarted, "before_start") >= old.len() as u64).then_some(()) },
    )
    .await;
    let now = seal::unix_ms();
    for (sent_at, reason) in [(now - 61_000, "stale"), (now + 61_000, "early")] {
        let datagram = key.seal_at("test", &[0, 1, 2], &seal::nonce().unwrap(), sent_at);
        attacker.send_to(&datagram, target).await.unwrap();
        eventually(DEADLINE, reason, || async {
            (dropped(&restarted, reason) == 1).then_some(())
        })
        .await;
    }
    let mut buf = vec![0; 65_536];
    assert!(
        attacker.try_recv_from(&mut buf).is_err(),
        "the restarted agent answered a replay"
    );
    assert!(
        restarted.group("web").await.peer("b").is_none(),
        "the restarted agent learned b from replays"
    );
    restarted.shutdown().await;
}

/// A key holder's well-sealed garbage is not a chitchat message: each one is dropped as soon
/// as chitchat's decoder has passed over it (not after a timeout), and gossip goes on paired
/// with the right peers.
#[tokio::test(flavor = "current_thread")]
async fn sealed_garbage_is_dropped_at_once_and_gossip_goes_on() {
    let _one = exclusive().await;
    let key = keyring();
    let a = start(sealed("a", &[], &key)).await;
    let b = start(sealed("b", &[a.gossip_addr()], &key)).await;
    b.publish("web", &published("v1")).await;
    sees(&a, "b", "v1").await;
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let before = dropped(&a, "undecodable");
    // Whole frames (kind 0) of garbage, and chitchat's BadCluster, which a sealed mesh never
    // sends: 50 of them would take 50 s if each waited for a timeout.
    // A whole frame: chitchat's magic number (45,139, little-endian), version 1, type 3.
    let bad_cluster_v1 = [0u8, 0x53, 0xb0, 1, 3];
    for i in 0..50u8 {
        let garbage = [0, i, 0xff, i, 0x13, 0x37];
        let frame: &[u8] = if i % 10 == 0 {
            &bad_cluster_v1
        } else {
            &garbage
        };
        let nonce = shoal_agent::coordinate::seal::nonce().unwrap();
        let datagram = key.seal("test", frame, &nonce);
        attacker.send_to(&datagram, a.gossip_addr()).await.unwrap();
    }
    eventually(
        Duration::from_secs(5),
        "a to drop the 50 within 5 s",
        || async { (dropped(&a, "undecodable") - before >= 50).then_some(()) },
    )
    .await;
    b.publish("web", &published("v2")).await;
    sees(&a, "b", "v2").await;
    eventually(DEADLINE, "a to see b alive", || async {
        a.group("web").await.peer("b")?.alive.then_some(())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
