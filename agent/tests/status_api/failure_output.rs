//! A failed deployment's last lines of output, on a real agent: root's `shoal status` and
//! `shoal fleet` (which send the admin token) show them, as they show hook output; a plain
//! request does not, and the fleet view says it left them out. A restarted agent still shows
//! its last deployment and failure.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shoal_tests::agent::AgentProcess;

use crate::daemon::{Hooks, Host, fleet_web, said};

const OUTPUT: &str = "service answers 500";

fn holds_output(lines: &Value) -> bool {
    lines.as_array().is_some_and(|l| {
        l.iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains(OUTPUT)))
    })
}

/// `shoal ARGS --config …` as root on the host: over the control socket (no `--addr`).
fn as_root(host: &Host, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args)
        .arg("--config")
        .arg(&host.config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> Value {
    let (stdout, stderr) = said(out);
    assert!(out.status.success(), "{stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn a_failures_output_is_shown_to_readers_of_hook_output_only_and_kept_over_a_restart() {
    let mut host = Host::start();
    host.publish("v1.0.0", Hooks::FailValidate);
    let web = host.wait_web("v1.0.0 failed and halted", |g| {
        g["rollout"]["failed_at"].is_string() && !g["rollout"]["halted"].is_null()
    });
    assert!(
        web["rollout"]["failure_output"].is_null(),
        "a plain GET must not carry hook output: {web}"
    );
    let (text, _) = said(&host.shoal(&["status"]));
    assert!(!text.contains(OUTPUT), "{text}");
    let status = json(&as_root(&host, &["status", "--json"]));
    let failure = &status["groups"][0]["rollout"]["failure_output"];
    assert!(holds_output(failure), "root sees the output: {status}");
    let (text, _) = said(&as_root(&host, &["status"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("    | [ValidateService]") && l.contains(OUTPUT)),
        "{text}"
    );

    let plain = host.fleet();
    let halt = &fleet_web(&plain)["halted"];
    assert!(
        halt["output"].is_null() && halt["output_hidden"] == true,
        "{plain}"
    );
    let root = json(&as_root(&host, &["fleet", "--json"]));
    assert!(
        holds_output(&fleet_web(&root)["halted"]["output"]),
        "{root}"
    );
    let page = host.agent.get("/").unwrap().body;
    assert!(
        !page.contains(OUTPUT) && page.contains("output is private here"),
        "{page}"
    );

    // A restart: status still says what happened last.
    host.agent.signal("TERM");
    host.agent.wait_exit(Duration::from_secs(30)).unwrap();
    host.agent = AgentProcess::start(
        Path::new(env!("CARGO_BIN_EXE_shoal")),
        &host.config,
        &host.dir.path().join("agent.log"),
        &[],
    );
    let web = host.wait_web("the last failure after a restart", |g| {
        !g["last_failure"].is_null() && !g["rollout"]["halted"].is_null()
    });
    assert_eq!(web["last_failure"]["revision"], "v1.0.0", "{web}");
    assert_eq!(web["last_failure"]["result"], "failed", "{web}");
    assert!(!web["last_deployment"].is_null(), "{web}");
}
