//! The stories every channel must tell the same way, each on a real agent in a fresh world:
//! deploying, reverting a failure, refusing. What happens across a restart is in
//! [`crate::restarts`].

use std::time::Duration;

use serde_json::Value;
use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;

use crate::world::{Hooks, World, group, settled_on};

/// How long a deployment (or a revert) may take in these tests.
pub const DEPLOY: Duration = Duration::from_secs(90);

/// A release channel the stories can publish to.
pub trait Channel {
    /// The YAML of the group's `channel:` (one line).
    fn config(&self) -> String;
    /// Environment the agent needs to reach the channel.
    fn env(&self) -> Vec<(String, String)>;
    /// Publishes `revision` with hooks behaving as `hooks`, signed by the trusted key.
    fn publish(&self, world: &World, revision: &str, hooks: Hooks);
    /// Publishes `revision` in a way the agent must refuse; returns the refusal kind expected.
    fn publish_refused(&self, world: &World, revision: &str) -> &'static str;
    /// Polls the channel once through the library, on the agent's data dir, as an agent that
    /// then died would have; returns the release it verified.
    fn poll_as_agent(&self, world: &World) -> Option<String>;
}

pub type Make = fn(&World) -> Box<dyn Channel>;

pub fn start(make: Make, grace: &str) -> (World, Box<dyn Channel>, AgentProcess) {
    let world = World::new();
    let channel = make(&world);
    world.write_config(&channel.config(), grace);
    let agent = world.start_agent(&channel.env());
    (world, channel, agent)
}

/// v1 and its health check pass: v1 runs.
pub fn deploy_v1(world: &World, channel: &dyn Channel, agent: &AgentProcess) -> Value {
    channel.publish(world, "v1.0.0", Hooks::Good);
    let status = agent.wait_status(DEPLOY, "v1.0.0 deployed", |s| settled_on(s, "v1.0.0"));
    assert_eq!(world.installed(), "v1.0.0");
    status
}

pub fn deployments(agent: &AgentProcess) -> Vec<Value> {
    let reply = agent.get("/v1/deployments").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

pub fn deployment_of(agent: &AgentProcess, revision: &str, reverts: bool) -> Value {
    deployments(agent)
        .into_iter()
        .find(|d| d["revision"] == revision && d["reverts"].is_null() != reverts)
        .unwrap_or_else(|| {
            panic!("no deployment of {revision} (revert: {reverts}) in /v1/deployments")
        })
}

/// `shoal status --addr` as a user runs it.
fn shoal_status(agent: &AgentProcess) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["status", "--addr", &agent.addr().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "shoal status: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub fn event<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {deployment}"))
}

/// A release deploys and shows in status; a failing one is reverted and both show; a refused
/// one shows as the last refusal and changes nothing.
pub fn deploys_reverts_and_refuses(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    assert_eq!(agent.get("/live").unwrap().status, 200);
    poll_until(DEPLOY, || {
        (agent.get("/ready").ok()?.status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("never ready:\n{}", agent.log_text()));

    let status = deploy_v1(&world, channel.as_ref(), &agent);
    let v1 = &group(&status)["last_deployment"];
    let id = v1["id"].as_str().unwrap();
    assert!(id.len() == 14 && id.starts_with("d-"), "deployment id {id}");
    let names: Vec<&str> = v1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "DownloadBundle",
            "ApplicationStop",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
            "HealthCheck"
        ],
    );
    assert_eq!(
        v1["events"][1]["message"],
        "first deployment of this group: no previous revision to run"
    );
    assert_eq!(group(&status)["floor"], "v1.0.0");
    assert_eq!(group(&status)["last_known_good"], "v1.0.0");
    agent.wait_status(DEPLOY, "health reported", |s| {
        group(s)["health"] == "healthy"
    });
    let table = shoal_status(&agent);
    for words in [
        "web",
        "v1.0.0",
        "idle",
        "healthy",
        "succeeded",
        "HealthCheck",
    ] {
        assert!(
            table.contains(words),
            "`shoal status` lacks {words}:\n{table}"
        );
    }

    channel.publish(&world, "v2.0.0", Hooks::FailValidate);
    let status = agent.wait_status(DEPLOY, "v2.0.0 failed and reverted to v1.0.0", |s| {
        settled_on(s, "v1.0.0")
            && group(s)["last_deployment"]["revision"] == "v1.0.0"
            && !group(s)["last_deployment"]["reverts"].is_null()
    });
    assert_eq!(world.installed(), "v1.0.0", "the files of v1 are back");
    assert_eq!(group(&status)["floor"], "v2.0.0");
    let failed = deployment_of(&agent, "v2.0.0", false);
    assert_eq!(failed["result"], "failed");
    assert_eq!(group(&status)["last_failure"]["id"], failed["id"]);
    let validate = event(&failed, "ValidateService");
    assert_eq!(
        (validate["status"].as_str(), validate["exit_code"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert_eq!(group(&status)["last_deployment"]["reverts"], failed["id"]);
    let hooks = world.hooks_log();
    let stop_of_v2 = hooks.find("v2.0.0 ApplicationStop as v1.0.0");
    let validate_of_v2 = hooks.find("v2.0.0 ValidateService");
    assert!(
        validate_of_v2 < stop_of_v2 && stop_of_v2.is_some(),
        "the revert runs the failed revision's ApplicationStop:\n{hooks}"
    );
    assert!(
        hooks.ends_with("v1.0.0 ValidateService as v1.0.0\n"),
        "{hooks}"
    );
    let table = shoal_status(&agent);
    assert!(
        table.contains("revert of d-")
            && table.contains("last failure: d-")
            && table
                .contains("ValidateService: script at scripts/validate.sh failed with exit code 1"),
        "`shoal status` shows the revert and the floor:\n{table}"
    );
    let log = agent
        .get(&format!(
            "/v1/deployments/{}/log",
            failed["id"].as_str().unwrap()
        ))
        .unwrap();
    // Hook output is the admin's: no token, no log.
    assert_eq!(log.status, 401, "{}", log.body);
    assert!(!log.body.contains("service answers 500"), "{}", log.body);
    // `shoal logs` as root reads over the agent's control socket, with no token.
    let logs = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "logs",
            failed["id"].as_str().unwrap(),
            "--config",
            &world.config.display().to_string(),
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.status.success(), "shoal logs: {printed}");
    assert!(
        printed.contains("service answers 500") && printed.contains("ValidateService"),
        "`shoal logs` prints the hook output:\n{printed}"
    );

    let kind = channel.publish_refused(&world, "v3.0.0");
    let status = agent.wait_status(DEPLOY, "v3.0.0 refused", |s| {
        group(s)["last_refusal"]["name"] == "v3.0.0"
    });
    assert_eq!(group(&status)["last_refusal"]["kind"], kind);
    assert!(
        settled_on(&status, "v1.0.0"),
        "a refusal changes nothing: {status}"
    );
    assert_eq!(world.installed(), "v1.0.0");

    let metrics = agent.get("/metrics").unwrap().body;
    for line in [
        "shoal_deployments_total{group=\"web\",result=\"failed\"} 1",
        "shoal_deployments_total{group=\"web\",result=\"succeeded\"} 2",
        "shoal_revision_info{group=\"web\",revision=\"v1.0.0\"} 1",
        &format!("shoal_release_refusals_total{{group=\"web\",reason=\"{kind}\"}} 1"),
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
}

/// Every hook of v2 passes but its health check fails inside `min_healthy_time`: the
/// deployment fails at HealthCheck and the host goes back to v1.
pub fn a_failing_health_check_reverts(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    deploy_v1(&world, channel.as_ref(), &agent);
    channel.publish(&world, "v2.0.0", Hooks::Unhealthy);
    let status = agent.wait_status(DEPLOY, "v2.0.0 unhealthy and reverted", |s| {
        settled_on(s, "v1.0.0") && !group(s)["last_deployment"]["reverts"].is_null()
    });
    let failed = deployment_of(&agent, "v2.0.0", false);
    assert_eq!(failed["result"], "failed");
    assert_eq!(event(&failed, "ValidateService")["status"], "succeeded");
    let check = event(&failed, "HealthCheck");
    assert_eq!(check["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("HealthCheck: health check failed")
            && error.contains("exited with code 1"),
        "{error}"
    );
    assert_eq!(group(&status)["last_failure"]["id"], failed["id"]);
    assert_eq!(world.installed(), "v1.0.0");
}

/// A release's own `health:` (in its signed `shoal.yaml`) judges it in place of the group's:
/// here the group's check would pass the app, the release's fails it.
pub fn a_release_carries_its_own_health_check(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    deploy_v1(&world, channel.as_ref(), &agent);
    channel.publish(&world, "v2.0.0", Hooks::OwnHealthFails);
    agent.wait_status(DEPLOY, "v2.0.0 failing its own check and reverted", |s| {
        settled_on(s, "v1.0.0") && !group(s)["last_deployment"]["reverts"].is_null()
    });
    let failed = deployment_of(&agent, "v2.0.0", false);
    assert_eq!(
        event(&failed, "ValidateService")["status"],
        "succeeded",
        "{failed}"
    );
    assert_eq!(
        event(&failed, "HealthCheck")["status"],
        "failed",
        "{failed}"
    );
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("exited with code 1"), "{error}");
    assert_eq!(world.installed(), "v1.0.0");
}

/// Between deployments, the running revision is watched with its release's own check too.
pub fn the_running_release_is_watched_with_its_own_check(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    channel.publish(&world, "v1.0.0", Hooks::OwnHealth);
    agent.wait_status(DEPLOY, "v1.0.0 deployed and healthy", |s| {
        settled_on(s, "v1.0.0") && group(s)["health"] == "healthy"
    });
    std::fs::write(world.marks.join("release-down"), "").unwrap();
    agent.wait_status(DEPLOY, "v1.0.0 unhealthy by its own check", |s| {
        group(s)["health"] == "unhealthy"
    });
    std::fs::remove_file(world.marks.join("release-down")).unwrap();
    agent.wait_status(DEPLOY, "v1.0.0 healthy again", |s| {
        group(s)["health"] == "healthy"
    });
}

/// `ignore_application_stop_failures: true` in a release's `shoal.yaml` takes it past the
/// running revision's broken ApplicationStop, as CodeDeploy's deployment option does.
pub fn a_release_can_go_past_a_broken_application_stop(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    channel.publish(&world, "v1.0.0", Hooks::BrokenStop);
    agent.wait_status(DEPLOY, "v1.0.0 deployed", |s| settled_on(s, "v1.0.0"));
    channel.publish(&world, "v2.0.0", Hooks::IgnoreStopFailures);
    agent.wait_status(DEPLOY, "v2.0.0 deployed", |s| settled_on(s, "v2.0.0"));
    let done = deployment_of(&agent, "v2.0.0", false);
    assert_eq!(done["result"], "succeeded", "{done}");
    assert_eq!(
        event(&done, "ApplicationStop")["status"],
        "failed-ignored",
        "{done}"
    );
    assert_eq!(world.installed(), "v2.0.0");
}

/// A group without a `health:` check still waits `min_healthy_time` after ValidateService
/// before the run counts as done: "healthy" then means the hooks passed and the host stayed
/// up that long, and the record says so.
pub fn without_a_health_check_min_healthy_time_still_holds(make: Make) {
    let world = World::new();
    let channel = make(&world);
    world.write_config(&channel.config(), "30s");
    let config = std::fs::read_to_string(&world.config).unwrap();
    let config: String = config
        .lines()
        .filter(|line| !line.trim_start().starts_with("health:"))
        .map(|line| line.replace("min_healthy_time: 500ms", "min_healthy_time: 1500ms") + "\n")
        .collect();
    std::fs::write(&world.config, config).unwrap();
    let agent = world.start_agent(&channel.env());
    channel.publish(&world, "v1.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v1.0.0 in its health window", |s| {
        group(s)["phase"] == "checking-health"
    });
    agent.wait_status(DEPLOY, "v1.0.0 deployed", |s| settled_on(s, "v1.0.0"));
    let done = deployment_of(&agent, "v1.0.0", false);
    let window = event(&done, "HealthCheck");
    assert_eq!(window["status"], "succeeded", "{done}");
    assert!(window["duration_ms"].as_u64().unwrap() >= 1500, "{done}");
    assert!(
        window["message"]
            .as_str()
            .is_some_and(|m| m.contains("no health check configured")),
        "{done}"
    );
}

/// Trusts a new operator key for `shoal-rollback` and runs `shoal rollback web` with it.
fn roll_back(world: &World) {
    let keys = world.dir.path().join("keys");
    let ops = shoal_tests::signing::SigningKey::generate(&keys, "ops@example");
    let line = shoal_tests::signing::allowed_signers_line(
        "ops@example",
        &ops,
        "namespaces=\"shoal-rollback\"",
    );
    let mut signers = std::fs::read_to_string(&world.signers_file).unwrap();
    signers.push_str(&format!("{line}\n"));
    std::fs::write(&world.signers_file, signers).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["rollback", "web", "--key"])
        .arg(&ops.private)
        .arg("--config")
        .arg(&world.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shoal rollback: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With its git origin gone (moved away), the agent still rolls back: the order needs no new
/// look at the channel, and the release is in the agent's mirror. The channel's error shows.
pub fn a_rollback_goes_ahead_while_the_git_origin_is_down(make: Make) {
    let (world, channel, agent) = start(make, "30s");
    deploy_v1(&world, channel.as_ref(), &agent);
    channel.publish(&world, "v2.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v2.0.0 deployed", |s| settled_on(s, "v2.0.0"));
    let origin = world.dir.path().join("repo");
    std::fs::rename(&origin, origin.with_extension("away")).unwrap();
    roll_back(&world);
    let status = agent.wait_status(DEPLOY, "rolled back to v1.0.0 without its origin", |s| {
        settled_on(s, "v1.0.0")
            && group(s)["last_deployment"]["reverts"].is_null()
            && group(s)["last_channel_error"]["message"].is_string()
    });
    assert_eq!(world.installed(), "v1.0.0");
    assert_eq!(group(&status)["floor"], "v2.0.0");
}

/// `shoal rollback` with an operator key trusted for `shoal-rollback`: the agent goes back to
/// v1.0.0 below its floor, v2.0.0 is not offered again after a `kill -9` and a restart (the
/// store channel's first poll re-checks the release at the floor), and v3.0.0 ends the
/// rollback.
pub fn an_operator_rolls_back_below_the_floor_and_stays_back(make: Make) {
    let (world, channel, mut agent) = start(make, "30s");
    deploy_v1(&world, channel.as_ref(), &agent);
    channel.publish(&world, "v2.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v2.0.0 deployed", |s| settled_on(s, "v2.0.0"));
    roll_back(&world);
    let status = agent.wait_status(DEPLOY, "rolled back to v1.0.0", |s| {
        settled_on(s, "v1.0.0") && group(s)["last_deployment"]["reverts"].is_null()
    });
    assert_eq!(world.installed(), "v1.0.0");
    assert_eq!(group(&status)["floor"], "v2.0.0", "the floor stays");
    let rolled_back = group(&status)["last_deployment"]["id"].clone();

    agent.kill9();
    let agent = world.start_agent(&channel.env());
    let first = agent.wait_status(DEPLOY, "a look after the restart", |s| {
        group(s)["last_check"].is_string()
    });
    let status = agent.wait_status(DEPLOY, "a second look", |s| {
        group(s)["last_check"].is_string() && group(s)["last_check"] != group(&first)["last_check"]
    });
    assert_eq!(group(&status)["current_revision"], "v1.0.0", "{status:#}");
    assert_eq!(
        group(&status)["rollout"]["revision"],
        "v1.0.0",
        "{status:#}"
    );

    channel.publish(&world, "v3.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v3.0.0 deployed", |s| settled_on(s, "v3.0.0"));
    // v2.0.0 was deployed once, v1.0.0 twice (its release, then the rollback), nothing more.
    let runs: Vec<(String, String)> = deployments(&agent)
        .iter()
        .map(|d| {
            (
                d["revision"].as_str().unwrap_or_default().to_owned(),
                d["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let count = |revision: &str| runs.iter().filter(|(r, _)| r == revision).count();
    assert_eq!(
        (count("v1.0.0"), count("v2.0.0"), count("v3.0.0")),
        (2, 1, 1),
        "{runs:?}"
    );
    assert!(
        runs.iter().any(|(_, id)| rolled_back == id.as_str()),
        "{runs:?}"
    );
}
