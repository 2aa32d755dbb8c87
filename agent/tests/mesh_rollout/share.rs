//! Peers share verified releases: twenty hosts on an S3 store behind a counting proxy take a
//! 100 MB release while the origin serves at most three copies and only three hosts poll it;
//! the same over `git://`; a peer whose bundle was tampered with is caught and counted, and the
//! host gets good bytes from another; a stranger without the cluster key gets nothing.

use std::time::Duration;

use shoal_agent::coordinate::seal::Keyring;
use shoal_agent::share::stream::Sealed;
use shoal_agent::share::wire::{self, Answer, Request};
use shoal_tests::poll_until;
use shoal_tests::proxy::Stats;

use super::fleet::{Fleet, Hooks};
use super::pollers::{polls, wait_pollers};

const SIZE: usize = 100 << 20;
const WAIT: Duration = Duration::from_secs(300);

/// A labelled counter of host `i`'s `/metrics` (the sum over the series that carry `labels`).
pub(super) fn counter(fleet: &Fleet, i: usize, name: &str, labels: &str) -> u64 {
    let text = fleet.get(i, "/metrics").body;
    text.lines()
        .filter(|l| {
            (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                && l.contains(labels)
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn wait_all_on(fleet: &Fleet, revision: &str) {
    for i in 0..fleet.len() {
        fleet
            .agent(i)
            .wait_status(WAIT, &format!("host-{} on {revision}", i + 1), |s| {
                s["groups"][0]["current_revision"] == revision && s["groups"][0]["phase"] == "idle"
            });
    }
}

/// Fails at once, with the figures, when the disk under the fleet cannot hold what the test
/// writes: every host keeps the release three times (the bundle or pack it serves to peers,
/// the verified tree, the deployment archive) and the origin twice. A full disk would otherwise
/// show only as hosts that never finish.
fn require_disk(fleet: &Fleet) {
    let need = (3 * fleet.len() as u64 + 2) * SIZE as u64 * 11 / 10;
    let stat = nix::sys::statvfs::statvfs(fleet.dir()).expect("statvfs of the fleet's folder");
    let free = stat.blocks_available() * stat.fragment_size();
    assert!(
        free >= need,
        "{} has {:.1} GB free; this test writes about {:.1} GB ({} hosts keeping a {} MB release \
         three times); free some space or point TMPDIR at a larger disk",
        fleet.dir().display(),
        free as f64 / 1e9,
        need as f64 / 1e9,
        fleet.len(),
        SIZE >> 20
    );
}

/// Publishes a large release with `publish` once the fleet has chosen its pollers, waits until
/// every host runs it, and checks that at most 3 copies crossed the origin and that only
/// pollers looked at it. Returns what the origin sent.
fn take_a_large_release(fleet: &Fleet, publish: impl FnOnce(&Fleet)) -> Stats {
    require_disk(fleet);
    let all: Vec<usize> = (0..fleet.len()).collect();
    let pollers = wait_pollers(fleet, &all, 3);
    let before = polls(fleet, &all);
    fleet.origin().reset();

    publish(fleet);
    wait_all_on(fleet, "v1.0.0");

    let origin = fleet.origin().stats();
    let copies = origin.bytes_down / SIZE as u64;
    assert!(
        copies <= 3,
        "the origin sent {} bytes: {copies} copies of the release",
        origin.bytes_down
    );
    let after = polls(fleet, &all);
    let looked: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| after[i] > before[i])
        .collect();
    assert!(
        looked.iter().all(|i| pollers.contains(i)) && looked.len() <= 3,
        "hosts that looked at the origin: {looked:?}; the pollers: {pollers:?}"
    );
    origin
}

#[test]
fn twenty_hosts_take_a_100_mb_store_release_from_three_origin_copies() {
    let fleet = Fleet::start_store_alone(20, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let origin = take_a_large_release(&fleet, |f| f.publish_store("v1.0.0", Hooks::Good, SIZE));
    let all = 0..fleet.len();
    let from_peers: u64 = all
        .clone()
        .map(|i| {
            counter(
                &fleet,
                i,
                "shoal_release_fetched_bytes_total",
                "source=\"peer\"",
            )
        })
        .sum();
    assert!(
        from_peers >= 17 * SIZE as u64,
        "only {from_peers} bytes came from peers"
    );
    let most = all
        .map(|i| counter(&fleet, i, "shoal_share_upload_bytes_total", ""))
        .max()
        .unwrap_or_default();
    eprintln!(
        "origin: {} bytes down, {} requests; from peers: {from_peers} bytes; most served by one host: {most}",
        origin.bytes_down, origin.requests
    );
}

#[test]
fn twenty_hosts_take_a_100_mb_git_release_from_three_origin_fetches() {
    let fleet = Fleet::start_remote_alone(20, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let origin = take_a_large_release(&fleet, |f| f.publish_large("v1.0.0", Hooks::Good, SIZE));
    let from_peers = (0..fleet.len())
        .filter(|&i| fleet.log(i).contains("git release verified from a peer"))
        .count();
    assert!(
        from_peers >= 17,
        "only {from_peers} hosts took the release from a peer"
    );
    eprintln!(
        "origin: {} bytes down over {} connections; {from_peers} hosts from peers",
        origin.bytes_down, origin.connections
    );
}

#[test]
fn a_tampered_peer_is_caught_and_counted_and_a_stranger_gets_nothing() {
    let mut fleet = Fleet::start_store(4, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let all: Vec<usize> = (0..fleet.len()).collect();
    let pollers = wait_pollers(&fleet, &all, 3);
    fleet.publish_store("v1.0.0", Hooks::Good, 1 << 20);
    wait_all_on(&fleet, "v1.0.0");

    // The host that does not poll fetches again, from scratch; the peer it asks first has
    // its bundle changed on disk (same size), as a compromised or failing host would serve it.
    let fresh = all.iter().copied().find(|i| !pollers.contains(i)).unwrap();
    let blobs: Vec<String> = std::fs::read_dir(fleet.data_dir(0).join("releases/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs.len(), 1, "a serving host keeps the bundle: {blobs:?}");
    let sha = blobs[0].strip_prefix("sha256-").unwrap().to_owned();
    let digest = format!("sha256:{sha}");
    let ids: Vec<String> = pollers.iter().map(|&i| fleet.id(i)).collect();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let order = shoal_shared::rollout::sources::ask_order(&digest, &fleet.id(fresh), &names);
    // Every holder but the last in its order serves changed bytes: whichever it asks first is
    // caught, and one good holder is left.
    let (good, bad) = order.split_last().unwrap();
    for holder in bad {
        let blob = fleet
            .data_dir(fleet.index_of(holder))
            .join(format!("releases/blobs/sha256-{sha}"));
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[1000] ^= 0xff;
        std::fs::write(&blob, bytes).unwrap();
    }

    fleet.stop(fresh);
    std::fs::remove_dir_all(fleet.data_dir(fresh)).unwrap();
    fleet.origin().reset();
    fleet.restart(fresh);
    fleet.wait_status(fresh, "back on v1.0.0", |g| {
        g["current_revision"] == "v1.0.0" && g["phase"] == "idle"
    });
    let caught = counter(
        &fleet,
        fresh,
        "shoal_share_bad_peers_total",
        "reason=\"digest_mismatch\"",
    );
    assert!(
        (1..=bad.len() as u64).contains(&caught),
        "{caught} peers caught; {bad:?} were changed:\n{}",
        fleet.log(fresh)
    );
    assert!(
        fleet.log(fresh).contains(&format!("\"peer\":\"{good}\"")),
        "the good bytes came from {good}"
    );
    assert!(
        fleet.origin().stats().bytes_down < 1 << 20,
        "the good bytes came from another peer, not the origin"
    );

    // A stranger with another key: the stream does not open, nothing is served, and it is
    // counted. The same request with the mesh's key gets the bundle.
    let addr = fleet.agent(0).share_addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ask = |ring: Keyring| {
        let request = Request::Blob {
            sha256: sha.clone(),
        };
        runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let mut stream = Sealed::connect(tcp, &ring, "e2e").await.ok()?;
            stream.send(&wire::encode(&request)).await.ok()?;
            stream.flush().await.ok()?;
            wire::decode::<Answer>(&stream.recv().await.ok()?)
        })
    };
    let stranger = Keyring::parse(&shoal_agent::coordinate::seal::generate().unwrap()).unwrap();
    assert_eq!(ask(stranger), None);
    let counted = poll_until(Duration::from_secs(10), || {
        (counter(
            &fleet,
            0,
            "shoal_share_requests_total",
            "result=\"stranger\"",
        ) >= 1)
            .then_some(())
    });
    assert!(counted.is_some(), "the stranger was not counted");
    let member = Keyring::load(&fleet.key_file()).unwrap();
    assert!(
        matches!(ask(member), Some(Answer::Bytes { size, .. }) if size > 1 << 20),
        "a member is served"
    );
}
