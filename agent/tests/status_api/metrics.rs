//! `GET /metrics` read by the real OpenMetrics parser (`prometheus_client` in `.venv`), so the
//! exposition is proven to be what Prometheus accepts, not only what it looks like.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shoal_tests::poll_until;

use crate::Agent;
use crate::daemon::{DEPLOY, Hooks, Host, said};

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

/// Every sample name in `families`.
fn sample_names(families: &[Value]) -> BTreeSet<String> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap().iter())
        .map(|s| s[0].as_str().unwrap().to_owned())
        .collect()
}

/// Every series name `families` can hold, samples or not yet: a counter's `_total`, a
/// histogram's `_bucket`, `_sum` and `_count`, an info's `_info`, a gauge's own name.
fn series_names(families: &[Value]) -> BTreeSet<String> {
    let mut names = sample_names(families);
    for family in families {
        let name = family["name"].as_str().unwrap();
        let suffixes: &[&str] = match family["type"].as_str().unwrap() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    names
}

/// The `shoal_…` names in `text`.
fn shoal_names(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("shoal_"))
        .collect()
}

/// The shipped Grafana dashboard.
fn dashboard() -> Value {
    let path = shoal_tests::workspace_root().join("packaging/grafana/shoal.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The PromQL expressions of the shipped Grafana dashboard's panels.
fn dashboard_queries() -> Vec<String> {
    let queries: Vec<String> = dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(queries.len() >= 12, "{queries:?}");
    queries
}

/// The queries of the dashboard's variables (Grafana's `label_values(…)`, not PromQL).
fn dashboard_variables() -> Vec<String> {
    dashboard()["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variable| variable["definition"].as_str().unwrap().to_owned())
        .collect()
}

/// The state families on a real agent as its first release is done, halted by the operator,
/// and a second one runs; and every series the shipped alert rules read is one it exports.
#[test]
fn state_metrics_follow_a_real_agent_and_the_alert_rules_read_them() {
    let host = Host::start();
    let scrape = || {
        let reply = host.agent.get("/metrics").unwrap();
        assert_eq!(reply.status, 200);
        parse(&reply.body)
    };
    let web = json!({"group": "web"});
    let web_in = |label: &str, value: &str| json!({"group": "web", label: value});
    let gauge = |families: &[Value], name: &str, labels: &Value| {
        sample(family(families, name), name, labels)
    };
    let started = shoal_agent::clock::now_ms() as f64 / 1000.0;
    host.publish("v1.0.0", Hooks::Good);
    host.wait_web("v1.0.0 deployed", |g| {
        g["current_revision"] == "v1.0.0" && g["rollout"]["step"] == "done"
    });

    let done = scrape();
    let version = json!({"version": env!("CARGO_PKG_VERSION")});
    assert_eq!(
        sample(family(&done, "shoal_build"), "shoal_build_info", &version),
        1.0
    );
    assert_eq!(gauge(&done, "shoal_group_halted", &web), 0.0);
    assert_eq!(
        gauge(&done, "shoal_group_health", &web_in("state", "none")),
        1.0
    );
    assert_eq!(
        gauge(&done, "shoal_group_health", &web_in("state", "healthy")),
        0.0
    );
    assert_eq!(
        gauge(&done, "shoal_rollout_step", &web_in("step", "done")),
        1.0
    );
    assert_eq!(
        gauge(&done, "shoal_rollout_step", &web_in("step", "running")),
        0.0
    );
    assert_eq!(gauge(&done, "shoal_rollout_promote_pending", &web), 0.0);
    assert_eq!(gauge(&done, "shoal_rollout_hosts_done", &web), 1.0);
    assert_eq!(gauge(&done, "shoal_rollout_hosts", &web), 1.0);
    assert_eq!(
        gauge(&done, "shoal_mesh_members", &json!({"state": "alive"})),
        1.0
    );
    assert_eq!(
        gauge(&done, "shoal_mesh_members", &json!({"state": "dead"})),
        0.0
    );
    let now = shoal_agent::clock::now_ms() as f64 / 1000.0;
    for name in [
        "shoal_channel_last_success_timestamp_seconds",
        "shoal_deployment_last_success_timestamp_seconds",
    ] {
        let at = gauge(&done, name, &web);
        assert!(
            (started..=now).contains(&at),
            "{name} {at} not in {started}..{now}"
        );
    }
    assert!(
        !sample_names(&done).contains("shoal_rollout_last_progress_timestamp_seconds"),
        "a complete rollout does not stand still"
    );

    let out = host.shoal(&["halt", "web"]);
    assert!(out.status.success(), "{}", said(&out).1);
    let halted = poll_until(DEPLOY, || {
        let families = scrape();
        (gauge(&families, "shoal_group_halted", &web) == 1.0).then_some(families)
    })
    .expect("the halt shows in the metrics");

    host.publish("v2.0.0", Hooks::BlockBeforeInstall);
    host.wait_blocked("v2.0.0");
    let running = scrape();
    host.let_go();
    assert_eq!(
        gauge(&running, "shoal_group_halted", &web),
        0.0,
        "a newer release clears it"
    );
    assert_eq!(
        gauge(&running, "shoal_rollout_step", &web_in("step", "running")),
        1.0
    );
    let advanced = gauge(
        &running,
        "shoal_rollout_last_progress_timestamp_seconds",
        &web,
    );
    assert!(advanced >= started, "{advanced}");
    assert_eq!(
        gauge(&running, "shoal_rollout_progress_deadline_seconds", &web),
        600.0,
        "the default progress_deadline"
    );

    let mut exported: BTreeSet<String> = [done, halted, running]
        .iter()
        .flat_map(|f| series_names(f))
        .collect();
    // Families that show once something happened (a refusal, a dropped datagram), each
    // made to happen once.
    let every = shoal_agent::report::Metrics::new();
    every.deployment_ended("web", "failed");
    every.event_took("web", "Install", 1.0);
    every.refused("web", "unsigned_tag");
    every.unreadable_names("web", 1);
    every.ignored_halts("web", 1);
    every.set_gossip_dropped(&[("forged", 1)]);
    exported.extend(series_names(&parse(&every.encode())));
    let rules = std::fs::read_to_string(
        shoal_tests::workspace_root().join("packaging/prometheus/alerts.yml"),
    )
    .unwrap();
    let dashboard = [dashboard_queries(), dashboard_variables()]
        .concat()
        .join("\n");
    for (file, text) in [("alerts.yml", rules.as_str()), ("shoal.json", &dashboard)] {
        let read = shoal_names(text);
        assert!(read.len() >= 8, "{file}: {read:?}");
        for name in read {
            assert!(
                exported.contains(name),
                "{file} reads {name}, which the agent does not export: {exported:?}"
            );
        }
    }
}

/// The shipped alert rules pass Prometheus's own checks and their test cases, and every query
/// of the dashboard parses as PromQL (checked as recording rules, `$group` as `.*`).
#[test]
fn the_alert_rules_and_the_dashboard_pass_promtool() {
    let root = shoal_tests::workspace_root();
    let dir = root.join("packaging/prometheus");
    let promtool = root.join(".venv/bin/promtool");
    let found = Command::new(&promtool).arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        panic!(
            "{} does not run: run scripts/test.sh once (it unpacks it from Debian's prometheus \
             package)",
            promtool.display()
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let rules: String = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(n, query)| {
            let query = query.replace("$group", ".*");
            format!("      - record: shoal:dashboard:{n}\n        expr: {query:?}\n")
        })
        .collect();
    let dashboard_rules = scratch.path().join("dashboard.yml");
    std::fs::write(
        &dashboard_rules,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    let dashboard_rules = dashboard_rules.display().to_string();
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "rules", dashboard_rules.as_str()],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
