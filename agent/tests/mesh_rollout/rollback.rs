//! `shoal rollback` across five real agents: an operator's signed order takes the group back to
//! the release it ran before as a rollout of its own under the group's canary policy, below
//! the anti-rollback floor; keys that may not order it are refused; the release rolled back
//! from is not offered again after a restart; history records who did it; and a newer
//! release ends the rollback.

use serde_json::Value;
use shoal_tests::poll_until;

use super::fleet::{Fleet, Hooks};
use super::watch::{view as fleet_view, wait_view, web};

const WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The group's canary policy: one canary, then a promote.
const GROUP_POLICY: &str =
    "{ strategy: canary, canary: 1, max_parallel: 2, auto_promote: false, min_healthy_time: 0s }";

/// The releases' own policy: all at once, so building up the history is quick.
const RELEASE_POLICY: &str = "{ strategy: rolling, max_parallel: 5, min_healthy_time: 0s }";

fn said(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_signed_rollback_goes_back_across_the_fleet_canary_first() {
    let mut fleet = Fleet::start(5, GROUP_POLICY);
    let ops = fleet.trust_operator("ops@example", "shoal-rollback");
    for revision in ["v1.0.0", "v2.0.0"] {
        fleet.publish_with_policy(revision, Hooks::Good, RELEASE_POLICY);
        fleet.wait_all_on(revision);
    }
    assert_eq!(fleet.starts("v1.0.0").len(), 5, "{}", fleet.hooks_log());

    // Neither the release key (trusted for releases only) nor a key nobody trusts orders a
    // rollback; the agent refuses at once and nothing moves.
    let release_key = fleet.release_key().private.clone();
    let refused = fleet.shoal(
        1,
        &["rollback", "web", "--key", release_key.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", said(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("shoal-rollback"),
        "the refusal names the namespace it needs: {}",
        said(&refused)
    );
    let unknown = fleet.shoal(1, &["rollback", "web", "--to", "v0.9.0", "--key"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", said(&unknown));
    let never_ran = fleet.shoal(
        1,
        &[
            "rollback",
            "web",
            "--to",
            "v0.9.0",
            "--key",
            ops.private.to_str().unwrap(),
        ],
    );
    assert_eq!(never_ran.status.code(), Some(1), "{}", said(&never_ran));
    assert!(
        String::from_utf8_lossy(&never_ran.stderr).contains("never ran v0.9.0"),
        "{}",
        said(&never_ran)
    );
    assert!(web(&fleet_view(&fleet, 0))["rollback"].is_null());

    // The operator's key: back to the release before, from host-2.
    let given = fleet.shoal(
        1,
        &["rollback", "web", "--key", ops.private.to_str().unwrap()],
    );
    assert_eq!(given.status.code(), Some(0), "{}", said(&given));
    let stdout = String::from_utf8_lossy(&given.stdout);
    assert!(
        stdout.contains("rolling web back from v2.0.0 to v1.0.0")
            && stdout.contains("order signed by ops@example"),
        "{stdout}"
    );

    // The group's canary policy: one host goes back first, and every host shows the rollback
    // waiting for a promote.
    let mut by = String::new();
    for i in 0..fleet.len() {
        let view = wait_view(&fleet, i, "the rollback waiting for a promote", |v| {
            let g = web(v);
            g["target"] == "v1.0.0" && g["promote_pending"] == true && g["done"] == 1
        });
        let rollback = &web(&view)["rollback"];
        assert_eq!(rollback["from"], "v2.0.0", "{view:#}");
        assert_eq!(rollback["signer"], "ops@example", "{view:#}");
        rollback["by"].as_str().unwrap().clone_into(&mut by);
        assert!(by.ends_with("@host-2"), "{view:#}");
    }
    assert_eq!(
        fleet.starts("v1.0.0").len(),
        6,
        "only the canary went back before the promote:\n{}",
        fleet.hooks_log()
    );
    let cli = fleet.shoal(3, &["fleet"]);
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains(&format!(
            "rollback from v2.0.0 ordered by {by}, signed by ops@example"
        )),
        "{}",
        said(&cli)
    );

    let promoted = fleet.shoal(4, &["promote", "web"]);
    assert_eq!(promoted.status.code(), Some(0), "{}", said(&promoted));
    fleet.wait_all_on("v1.0.0");
    assert_eq!(fleet.starts("v1.0.0").len(), 10, "{}", fleet.hooks_log());
    assert_eq!(fleet.starts("v2.0.0").len(), 5, "{}", fleet.hooks_log());

    // Every host's history has the rollback, with who ordered it.
    for i in 0..fleet.len() {
        poll_until(WAIT, || {
            let out = fleet.shoal(i, &["history", "web", "--json"]);
            let history: Value = serde_json::from_slice(&out.stdout).ok()?;
            let entry = &history[0]["entries"][0];
            let rolled_back = entry["events"].as_array()?.iter().any(|e| {
                e["event"] == "rolled_back"
                    && e["by"].as_str().is_some_and(|b| b.ends_with("@host-2"))
                    && e["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("back from v2.0.0"))
            });
            (entry["revision"] == "v1.0.0" && entry["result"] == "completed" && rolled_back)
                .then_some(())
        })
        .unwrap_or_else(|| {
            let out = fleet.shoal(i, &["history", "web", "--json"]);
            panic!(
                "host {i}'s history: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    }

    // A restarted host keeps to the rollback: it looks at its channel again and is not
    // offered v2.0.0, the newest release there.
    fleet.kill9(2);
    fleet.restart(2);
    let first = fleet.wait_status(2, "a look at the channel after the restart", |g| {
        g["last_check"].is_string()
    });
    // A second look: whatever the first one offered has been taken by then.
    let status = fleet.wait_status(2, "a second look at the channel", |g| {
        g["last_check"].is_string() && g["last_check"] != first["last_check"]
    });
    assert_eq!(status["current_revision"], "v1.0.0", "{status:#}");
    assert_eq!(status["rollout"]["revision"], "v1.0.0", "{status:#}");
    assert_eq!(fleet.starts("v2.0.0").len(), 5, "{}", fleet.hooks_log());

    // A newer release ends the rollback and rolls out as usual. Nothing ran in between: a
    // restarted host that took v2.0.0 up again (or ran the rollback twice) would have started
    // it once its warmup passed, a second after its start.
    fleet.publish_with_policy("v3.0.0", Hooks::Good, RELEASE_POLICY);
    fleet.wait_all_on("v3.0.0");
    assert!(web(&fleet_view(&fleet, 0))["rollback"].is_null());
    assert_eq!(
        (fleet.starts("v1.0.0").len(), fleet.starts("v2.0.0").len()),
        (10, 5),
        "{}",
        fleet.hooks_log()
    );
}
