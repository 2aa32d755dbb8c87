//! `GET /metrics` read by the real OpenMetrics parser (`prometheus_client` in `.venv`), so the
//! exposition is proven to be what Prometheus accepts, not only what it looks like.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::Agent;

/// Prints the families the parser found as JSON: name, type, and samples as [name, labels, value].
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type,
     "samples": [[s.name, s.labels, s.value] for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
"#;

/// The families of `text` as the OpenMetrics parser reads them.
fn parse(text: &str) -> Vec<Value> {
    let python = shoal_tests::workspace_root().join(".venv/bin/python");
    let check = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output();
    if !check.is_ok_and(|o| o.status.success()) {
        panic!(
            "{} cannot import prometheus_client: run scripts/test.sh once (it installs it), or \
             `{} -m pip install prometheus_client`",
            python.display(),
            python.display()
        );
    }
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition:\n{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
}

fn sample(family: &Value, name: &str, labels: &Value) -> f64 {
    family["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == name && &s[1] == labels)
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("no sample {name} {labels} in {family:#}"))
}

#[test]
fn metrics_are_valid_openmetrics_with_every_family() {
    let agent = Agent::start();
    agent.metrics.deployment_ended("web", "succeeded");
    agent.metrics.event_took("web", "AfterInstall", 0.3);
    agent.metrics.set_revision("web", Some("v1.3.0"));
    agent.metrics.refused("db", "below_floor");
    agent.metrics.polled("web", true);
    agent.metrics.polled("web", false);
    let reply = agent.get("/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let families = parse(&reply.text());

    let deployments = family(&families, "shoal_deployments");
    assert_eq!(deployments["type"], "counter");
    let web_ok = json!({"group": "web", "result": "succeeded"});
    assert_eq!(sample(deployments, "shoal_deployments_total", &web_ok), 1.0);

    let hooks = family(&families, "shoal_hook_duration_seconds");
    assert_eq!(hooks["type"], "histogram");
    let after_install = json!({"group": "web", "event": "AfterInstall"});
    assert_eq!(
        sample(hooks, "shoal_hook_duration_seconds_count", &after_install),
        1.0
    );
    assert_eq!(
        sample(hooks, "shoal_hook_duration_seconds_sum", &after_install),
        0.3
    );

    let revision = family(&families, "shoal_revision_info");
    let web_rev = json!({"group": "web", "revision": "v1.3.0"});
    assert_eq!(sample(revision, "shoal_revision_info", &web_rev), 1.0);

    let refusals = family(&families, "shoal_release_refusals");
    let floor = json!({"group": "db", "reason": "below_floor"});
    assert_eq!(
        sample(refusals, "shoal_release_refusals_total", &floor),
        1.0
    );

    let polls = family(&families, "shoal_channel_polls");
    assert_eq!(
        sample(polls, "shoal_channel_polls_total", &json!({"group": "web"})),
        2.0
    );
    // Registered groups show from the start, at zero.
    assert_eq!(
        sample(polls, "shoal_channel_polls_total", &json!({"group": "db"})),
        0.0
    );
    let errors = family(&families, "shoal_channel_poll_errors");
    assert_eq!(
        sample(
            errors,
            "shoal_channel_poll_errors_total",
            &json!({"group": "web"})
        ),
        1.0
    );
}
