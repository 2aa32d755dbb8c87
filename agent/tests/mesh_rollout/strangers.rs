//! Sealed gossip between real agent processes: two agents on one cluster key mesh; a third on
//! another key, told where both are, never sees them nor they it. A fourth process (this test)
//! sends noise, a forged datagram and recorded datagrams again to a gossip port: the fleet it
//! sees does not change, and `/metrics` counts each kind by reason.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;
use shoal_tests::udp::Recorder;

const WAIT: Duration = Duration::from_secs(60);

fn keygen(file: &Path) {
    let made = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("keygen")
        .arg("--out")
        .arg(file)
        .status()
        .unwrap();
    assert!(made.success(), "shoal keygen --out {}", file.display());
}

/// A plain mesh member `id` on the key in `key`, joining through `seeds`.
fn member(dir: &Path, id: &str, key: &Path, seeds: &[SocketAddr]) -> AgentProcess {
    let home = dir.join(id);
    fs::create_dir_all(&home).unwrap();
    let seeds: Vec<String> = seeds.iter().map(ToString::to_string).collect();
    let config = home.join("agent.yaml");
    fs::write(
        &config,
        format!(
            "node: {{ id: {id}, data_dir: {data} }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: info }}\n\
             mesh: {{ name: e2e, listen: 127.0.0.1:0, seeds: [{seeds}], interval: 100ms, key_file: {key} }}\n\
             groups: []\n",
            data = home.join("data").display(),
            seeds = seeds.join(", "),
            key = key.display(),
        ),
    )
    .unwrap();
    AgentProcess::start(
        Path::new(env!("CARGO_BIN_EXE_shoal")),
        &config,
        &home.join("agent.log"),
        &[],
    )
}

/// The ids of the nodes `agent` shows alive in its fleet view.
fn alive(agent: &AgentProcess) -> Option<Vec<String>> {
    let body = agent.get("/v1/fleet").ok()?.body;
    let fleet: serde_json::Value = serde_json::from_str(&body).ok()?;
    let ids = fleet["nodes"]
        .as_array()?
        .iter()
        .filter(|n| n["alive"] == true)
        .filter_map(|n| n["id"].as_str().map(str::to_owned))
        .collect();
    Some(ids)
}

/// `shoal_gossip_dropped_datagrams_total{reason="…"}` on `agent`'s `/metrics`.
fn dropped(agent: &AgentProcess, reason: &str) -> u64 {
    counter(
        agent,
        &format!("shoal_gossip_dropped_datagrams_total{{reason=\"{reason}\"}}"),
    )
}

/// Every gossip datagram `agent`'s `/metrics` counts as dropped, whatever the reason.
fn all_dropped(agent: &AgentProcess) -> u64 {
    ["short", "forged", "replayed", "unknown_key", "version"]
        .iter()
        .map(|reason| dropped(agent, reason))
        .sum()
}

/// The gossip datagrams and bytes `agent`'s `/metrics` shows in `direction`.
fn traffic(agent: &AgentProcess, direction: &str) -> (u64, u64) {
    let labels = format!("{{direction=\"{direction}\"}}");
    (
        counter(agent, &format!("shoal_gossip_datagrams_total{labels}")),
        counter(agent, &format!("shoal_gossip_bytes_total{labels}")),
    )
}

/// The value of `series` (a name with its labels) on `agent`'s `/metrics`; 0 when absent.
fn counter(agent: &AgentProcess, series: &str) -> u64 {
    let Ok(reply) = agent.get("/metrics") else {
        return 0;
    };
    let series = format!("{series} ");
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn agents_on_another_key_never_meet_and_bad_datagrams_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours.key"), dir.path().join("theirs.key"));
    keygen(&ours);
    keygen(&theirs);
    let a = member(dir.path(), "a", &ours, &[]);
    // b joins a through a relay that keeps what b sends.
    let relay = Recorder::start(a.gossip_addr()).unwrap();
    let b = member(dir.path(), "b", &ours, &[relay.addr]);
    let x = member(
        dir.path(),
        "x",
        &theirs,
        &[a.gossip_addr(), b.gossip_addr()],
    );

    let both = vec!["a".to_owned(), "b".to_owned()];
    for agent in [&a, &b] {
        let seen = poll_until(WAIT, || alive(agent).filter(|ids| *ids == both));
        assert!(seen.is_some(), "a and b mesh: {:?}", alive(agent));
    }
    let counted = poll_until(WAIT, || (dropped(&a, "unknown_key") > 0).then_some(()));
    assert!(counted.is_some(), "a counts x's datagrams as unknown_key");
    assert!(
        poll_until(WAIT, || (relay.seen().len() >= 5).then_some(())).is_some(),
        "the relay holds some of b's datagrams"
    );

    // This process: b's datagrams again, a forged copy, and noise of every length (last, as
    // a burst of it may overflow a's socket buffer).
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = a.gossip_addr();
    let old = relay.seen();
    let before = (
        traffic(&a, "received"),
        all_dropped(&a),
        dropped(&a, "replayed"),
    );
    let send = |datagram: &[u8]| attacker.send_to(datagram, target).unwrap();
    for datagram in &old {
        send(datagram);
    }
    let mut forged = old[0].clone();
    let middle = forged.len() / 2;
    forged[middle] ^= 0x40;
    send(&forged);
    for len in 0..300usize {
        let noise: Vec<u8> = (0..len).map(|i| (i * 131 + len * 7) as u8).collect();
        send(&noise);
    }
    let counted = poll_until(WAIT, || {
        let all = dropped(&a, "short") > 0
            && dropped(&a, "forged") > 0
            && dropped(&a, "replayed") >= old.len() as u64 / 2;
        all.then_some(())
    });
    assert!(
        counted.is_some(),
        "short {}, forged {}, replayed {} of {}",
        dropped(&a, "short"),
        dropped(&a, "forged"),
        dropped(&a, "replayed"),
        old.len()
    );

    // Every datagram that arrived is counted as received, the dropped ones too: the replays
    // at their full length at least.
    // (Drops are read before traffic here and after it above, so a datagram arriving between
    // the two reads can only make the drops look fewer.)
    let dropped_after = all_dropped(&a);
    let replays = dropped(&a, "replayed") - before.2;
    let after = (traffic(&a, "received"), dropped_after);
    let replayed = replays * old.iter().map(Vec::len).min().unwrap() as u64;
    assert!(
        after.0.0 - before.0.0 >= after.1 - before.1 && after.0.1 - before.0.1 >= replayed,
        "a received {:?} (datagrams, bytes) and dropped {} before the attack, {:?} and {} after; replays of {replayed} bytes",
        before.0,
        before.1,
        after.0,
        after.1,
    );
    for agent in [&a, &b] {
        let sent = traffic(agent, "sent");
        assert!(sent.0 > 0 && sent.1 > sent.0, "sent {sent:?}");
    }

    // Nothing changed: a and b still see exactly each other, alive; x still sees no one.
    for agent in [&a, &b] {
        assert_eq!(alive(agent), Some(both.clone()), "{}", agent.log_text());
    }
    assert_eq!(alive(&x), Some(vec!["x".to_owned()]), "x sees only itself");
    assert_eq!(a.get("/ready").unwrap().status, 200, "a is still ready");
}
