//! Notifications from real agents to a real HTTP receiver: every host of the fleet is given the
//! same webhook, and the fleet sends each rollout event once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use shoal_tests::poll_until;
use shoal_tests::receiver::{Received, Receiver};

use crate::fleet::{Fleet, Hooks};

const WAIT: Duration = Duration::from_secs(90);
const SECRET: &str = "a shared secret of the webhook";

fn events(receiver: &Receiver) -> Vec<(Received, Value)> {
    receiver
        .received()
        .into_iter()
        .filter_map(|r| {
            let body = serde_json::from_slice(&r.body).ok()?;
            Some((r, body))
        })
        .collect()
}

fn named<'a>(events: &'a [(Received, Value)], name: &str) -> Vec<&'a (Received, Value)> {
    events.iter().filter(|(_, e)| e["event"] == name).collect()
}

/// Lines in host `i`'s log of the rollout event `name` it decided to send.
fn sent_by(fleet: &Fleet, i: usize, name: &str) -> usize {
    fleet
        .log(i)
        .lines()
        .filter(|l| l.contains("\"rollout event sent\""))
        .filter(|l| l.contains(&format!("\"event\":\"{name}\"")))
        .count()
}

/// A canary fails and halts the rollout: of the three hosts given the same webhook, one
/// sends `halted` (the host that failed), with the failure's host, reason and output, signed
/// with the secret; and each event of the release before, once.
#[test]
fn a_fleet_sends_one_halted_with_the_failure_to_its_webhook() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook.secret");
    fs::write(&secret, format!("{SECRET}\n")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let notify = format!(
        "notify:\n  webhooks:\n    - url: {}\n      secret_file: {}\n",
        receiver.url("/hooks/shoal"),
        secret.display()
    );
    let fleet = Fleet::start_with_sections(
        3,
        "{ strategy: canary, canary: 1, max_parallel: 2, min_healthy_time: 0s }",
        &notify,
    );
    fleet.publish("v1.0.0", Hooks::Good);
    fleet.wait_all_on("v1.0.0");
    poll_until(WAIT, || {
        (named(&events(&receiver), "completed").len() == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("no completed: {:#?}", receiver.received()));

    fleet.publish("v2.0.0", Hooks::FailValidate);
    // Every host records the halt; the one that failed sends it.
    for i in 0..fleet.len() {
        poll_until(WAIT, || {
            let out = fleet.shoal(i, &["history", "web", "--json"]);
            let history: Value = serde_json::from_slice(&out.stdout).ok()?;
            let events = history[0]["entries"][0]["events"].as_array()?.clone();
            events.iter().any(|e| e["event"] == "halted").then_some(())
        })
        .unwrap_or_else(|| panic!("host {i} never recorded the halt:\n{}", fleet.log(i)));
    }
    let senders: Vec<usize> = (0..fleet.len())
        .filter(|i| sent_by(&fleet, *i, "halted") > 0)
        .collect();
    assert_eq!(senders.len(), 1, "hosts that sent halted: {senders:?}");
    assert_eq!(sent_by(&fleet, senders[0], "halted"), 1);
    let got = poll_until(WAIT, || {
        let all = events(&receiver);
        (named(&all, "halted").len() == 1).then_some(all)
    })
    .unwrap_or_else(|| panic!("no halted: {:#?}", receiver.received()));
    let (request, halted) = named(&got, "halted")[0];
    assert_eq!(halted["group"], "web");
    assert_eq!(halted["revision"], "v2.0.0");
    assert_eq!(halted["host"], fleet.id(senders[0]), "{halted}");
    assert_eq!(halted["node"], fleet.id(senders[0]), "{halted}");
    assert!(
        halted["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ValidateService")),
        "{halted}"
    );
    assert!(
        halted["output"]
            .as_array()
            .is_some_and(|o| o.iter().any(|l| l
                .as_str()
                .is_some_and(|l| l.contains("service answers 500")))),
        "{halted}"
    );
    // Signed: HMAC-SHA256 over the timestamp, a dot and the body.
    assert_eq!(request.line, "POST /hooks/shoal HTTP/1.1");
    assert_eq!(
        request.headers.get("x-shoal-event").map(String::as_str),
        Some("halted")
    );
    let timestamp = request
        .headers
        .get("x-shoal-timestamp")
        .cloned()
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        request.headers.get("x-shoal-signature"),
        Some(&format!("sha256={expected}"))
    );
    // The release before: each of its events once, from one host each.
    for name in ["release_seen", "rollout_started", "completed"] {
        let v1: Vec<_> = named(&got, name)
            .into_iter()
            .filter(|(_, e)| e["revision"] == "v1.0.0")
            .collect();
        assert_eq!(v1.len(), 1, "{name}: {v1:#?}");
    }
}
