//! Stories across a stop or a crash of the agent: `kill -9` mid-hook, SIGTERM within and past
//! the grace, and the crash windows around a release the channel has verified. A planned stop
//! and a first crash run the release again; only a second crash counts as a failure.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::story::{DEPLOY, Make, deploy_v1, deployments, event, start};
use crate::world::{Hooks, World, group, settled_on};

/// `kill -9` while a hook of a good release runs (a power cut, not a bad release): the
/// restarted agent stops the hook left running, marks that deployment interrupted and runs the
/// release again from the start, which completes. Nothing counts as a failure.
pub fn kill_9_mid_hook_runs_the_release_again_on_restart(make: Make) {
    let (world, channel, mut agent) = start(make, "30s");
    deploy_v1(&world, channel.as_ref(), &agent);
    channel.publish(&world, "v2.0.0", Hooks::BlockBeforeInstall);
    world.wait_started("v2.0.0", &agent);
    let status = agent.status();
    assert_eq!(group(&status)["phase"], "deploying");
    assert_eq!(group(&status)["current_event"], "BeforeInstall");
    assert_eq!(group(&status)["target_revision"], "v2.0.0");
    agent.kill9();
    let group_id = world.hook_group("v2.0.0");
    assert!(
        !World::group_alive(&group_id).is_empty(),
        "the blocked hook outlives kill -9 of the agent"
    );

    let agent = world.start_agent(&channel.env());
    world.wait_started_again("v2.0.0", &group_id, &agent);
    let alive = World::group_alive(&group_id);
    assert!(
        alive.is_empty(),
        "the restarted agent stops the left hook first: {alive:?}"
    );
    let status = agent.status();
    assert_eq!(group(&status)["phase"], "deploying", "{status}");
    assert_eq!(group(&status)["target_revision"], "v2.0.0", "{status}");
    std::fs::write(world.marks.join("go"), "").unwrap();
    agent.wait_status(DEPLOY, "v2.0.0 deployed on its second run", |s| {
        settled_on(s, "v2.0.0")
    });
    assert_eq!(world.installed(), "v2.0.0");
    let runs: Vec<Value> = deployments(&agent)
        .into_iter()
        .filter(|d| d["revision"] == "v2.0.0")
        .collect();
    let results: Vec<&str> = runs.iter().map(|d| d["result"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 2, "{runs:?}");
    assert!(
        results.contains(&"interrupted") && results.contains(&"succeeded"),
        "{runs:?}"
    );
    let cut = runs.iter().find(|d| d["result"] == "interrupted").unwrap();
    assert_eq!(
        cut["error"], "interrupted by agent restart during BeforeInstall",
        "{cut}"
    );
    assert_eq!(event(cut, "BeforeInstall")["status"], "interrupted");
    let detail: Value = serde_json::from_str(
        &agent
            .get(&format!("/v1/deployments/{}", cut["id"].as_str().unwrap()))
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(
        detail["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!(
                "scripts the previous agent left running were stopped (process groups [{group_id}])"
            )),
        "{detail}"
    );
    let hooks = world.hooks_log();
    assert_eq!(
        hooks.matches("v2.0.0 BeforeInstall went on").count(),
        1,
        "{hooks}"
    );
    assert_eq!(failures(&world), 0, "a crash once is not a failure");
    let metrics = agent.get("/metrics").unwrap().body;
    assert!(
        metrics.contains("shoal_deployments_total{group=\"web\",result=\"interrupted\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("shoal_deployments_total{group=\"web\",result=\"failed\"}"),
        "{metrics}"
    );
}

/// The one run of `revision` that was stopped or cut short.
fn the_stopped_run(agent: &shoal_tests::agent::AgentProcess, revision: &str) -> Value {
    let cut: Vec<Value> = deployments(agent)
        .into_iter()
        .filter(|d| d["revision"] == revision && d["result"] == "interrupted")
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    cut[0].clone()
}

/// The failures this host published for its target.
fn failures(world: &World) -> u32 {
    let journal =
        shoal_agent::runtime::journal::JournalFile::of(&world.data_dir, crate::world::GROUP)
            .load()
            .unwrap();
    journal.plan.and_then(|m| m.state).map_or(0, |s| s.failures)
}

/// SIGTERM while a hook runs: the hook finishes within the grace, nothing new starts, the
/// agent exits 0; the restarted agent runs the deployment it had stopped again, with no
/// failure counted and no revert.
pub fn sigterm_lets_the_hook_finish_then_exits(make: Make) {
    let world = World::new();
    let channel = make(&world);
    world.write_config(&channel.config(), "20s");
    let notify_path = world.dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&notify_path).unwrap();
    systemd.set_read_timeout(Some(DEPLOY)).unwrap();
    let mut env = channel.env();
    env.push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));
    let mut agent = world.start_agent(&env);
    let mut said = String::new();
    let mut read_until = |what: &str| {
        let mut buf = [0u8; 4096];
        while !said.lines().any(|l| l == what) {
            let n = systemd
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {what} ({e}); got {said:?}"));
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
            said.push('\n');
        }
    };
    read_until("READY=1");
    let environ = std::fs::read(format!("/proc/{}/environ", agent.pid())).unwrap();
    let tuned = format!("GLIBC_TUNABLES={}", shoal_agent::heap::TUNABLES);
    assert!(
        environ.split(|&b| b == 0).any(|v| v == tuned.as_bytes()),
        "the agent did not start itself again with {tuned}"
    );
    deploy_v1(&world, channel.as_ref(), &agent);
    read_until("STATUS=web: idle on v1.0.0");
    channel.publish(
        &world,
        "v2.0.0",
        Hooks::SlowStart(Duration::from_millis(1500)),
    );
    world.wait_started("v2.0.0", &agent);
    agent.signal("TERM");
    read_until("STOPPING=1");
    let exit = agent
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no exit within the 20 s grace:\n{}", agent.log_text()));
    assert!(exit.success(), "{exit}:\n{}", agent.log_text());
    let env_seen = world.hooks_env();
    assert!(
        !env_seen.is_empty() && env_seen.lines().all(|l| l.ends_with("notify=none")),
        "hooks must not inherit NOTIFY_SOCKET:\n{env_seen}"
    );
    // The agent ran with glibc's thread cache off (started itself again with the setting);
    // its hooks got the environment it was given, without it.
    assert!(
        env_seen.lines().all(|l| l.contains(" tunables=none ")),
        "hooks must not inherit the agent's GLIBC_TUNABLES:\n{env_seen}"
    );
    let hooks = world.hooks_log();
    assert!(
        hooks.contains("v2.0.0 start finished"),
        "the hook ran to its end:\n{hooks}"
    );
    assert!(
        !hooks.contains("v2.0.0 ValidateService"),
        "nothing new started:\n{hooks}"
    );

    // A planned stop is no failure: the next start runs v2.0.0 again, from the start.
    let agent = world.start_agent(&channel.env());
    agent.wait_status(DEPLOY, "v2.0.0 deployed after the restart", |s| {
        settled_on(s, "v2.0.0")
    });
    let stopped = the_stopped_run(&agent, "v2.0.0");
    assert_eq!(
        stopped["error"],
        "stopped by agent shutdown before ValidateService"
    );
    assert_eq!(world.installed(), "v2.0.0");
    assert_eq!(failures(&world), 0);
    let hooks = world.hooks_log();
    assert_eq!(hooks.matches("v2.0.0 start finished").count(), 2, "{hooks}");
    assert!(
        deployments(&agent).iter().all(|d| d["reverts"].is_null()),
        "no revert"
    );
}

/// SIGTERM while a hook runs longer than the grace: its process group is killed when the
/// grace runs out and the agent exits 0; the next start runs the release again.
pub fn sigterm_kills_a_hook_that_outlives_the_grace(make: Make) {
    let (world, channel, mut agent) = start(make, "1s");
    deploy_v1(&world, channel.as_ref(), &agent);
    let long = Duration::from_millis(60_250);
    channel.publish(&world, "v2.0.0", Hooks::SlowStart(long));
    world.wait_started("v2.0.0", &agent);
    let sent = SystemTime::now();
    agent.signal("TERM");
    let exit = agent
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no exit:\n{}", agent.log_text()));
    let took = sent.elapsed().unwrap();
    assert!(exit.success(), "{exit}:\n{}", agent.log_text());
    // 1 s of grace, then SIGTERM to the group (the shell dies at once).
    assert!(took < Duration::from_secs(8), "exit took {took:?}");
    let group_id = world.hook_group("v2.0.0");
    let alive = World::group_alive(&group_id);
    assert!(
        alive.is_empty(),
        "the hook's process group {group_id} was not killed: {alive:?}"
    );
    assert!(
        !world.hooks_log().contains("v2.0.0 start finished"),
        "the hook was cut short"
    );

    // The next start runs v2.0.0 again (its start runs long again), counting no failure.
    let agent = world.start_agent(&channel.env());
    world.wait_started_again("v2.0.0", &group_id, &agent);
    let status = agent.status();
    assert_eq!(group(&status)["phase"], "deploying", "{status}");
    assert_eq!(failures(&world), 0);
    let stopped = the_stopped_run(&agent, "v2.0.0");
    let start = event(&stopped, "ApplicationStart");
    assert_eq!(start["status"], "interrupted", "{stopped}");
    assert!(
        stopped["error"]
            .as_str()
            .unwrap()
            .starts_with("stopped by agent shutdown during ApplicationStart: script at scripts/start.sh was still running 1 s after the agent was told to stop"),
        "{stopped}"
    );
}

/// The agent died after its channel verified v1.0.0 (the floor rose) and before the deployment
/// was journaled: the restarted agent still deploys it, although a poll offers a release only
/// when it raises the floor. The dead agent's poll is the library's, on the same data dir.
pub fn a_release_verified_before_a_crash_is_deployed_after_it(make: Make) {
    let world = World::new();
    let channel = make(&world);
    world.write_config(&channel.config(), "30s");
    channel.publish(&world, "v1.0.0", Hooks::Good);
    assert_eq!(channel.poll_as_agent(&world).as_deref(), Some("v1.0.0"));
    let agent = world.start_agent(&channel.env());
    let status = agent.wait_status(DEPLOY, "v1.0.0 deployed after the restart", |s| {
        settled_on(s, "v1.0.0")
    });
    assert_eq!(group(&status)["floor"], "v1.0.0");
    assert!(group(&status)["last_refusal"].is_null(), "{status}");
    assert_eq!(world.installed(), "v1.0.0");
}

/// The agent died while it unpacked v1.0.0 (journaled, nothing run, nothing on disk): the
/// restarted agent deploys v1.0.0 again rather than dropping it.
pub fn a_deployment_cut_short_before_it_changed_anything_runs_again(make: Make) {
    use shoal_agent::runtime::journal::{InFlight, JournalFile};

    let world = World::new();
    let channel = make(&world);
    world.write_config(&channel.config(), "30s");
    channel.publish(&world, "v1.0.0", Hooks::Good);
    assert_eq!(channel.poll_as_agent(&world).as_deref(), Some("v1.0.0"));
    let file = JournalFile::of(&world.data_dir, crate::world::GROUP);
    let mut journal = file.load().unwrap();
    journal.last_target = Some("v1.0.0".into());
    journal.in_flight = Some(InFlight {
        deployment_id: "d-000000000001".into(),
        revision: "v1.0.0".into(),
        digest: "git:0".into(),
        bundle: world.dir.path().join("gone"),
        reverts: None,
        auto_revert: true,
        dir: None,
        step: "Prepare".into(),
        started_ms: 0,
        attempt: 0,
        stopped: false,
    });
    file.save(&journal).unwrap();
    let agent = world.start_agent(&channel.env());
    agent.wait_status(DEPLOY, "v1.0.0 deployed after the restart", |s| {
        settled_on(s, "v1.0.0")
    });
    assert_eq!(world.installed(), "v1.0.0");
}

/// `shoal halt` sends a host that completed v2.0.0 back to v1.0.0; the agent is killed (-9) in
/// that revert's BeforeInstall. The restarted agent finishes the revert to v1.0.0 (not to the
/// halted v2.0.0), once, without spinning, and a newer release still deploys after it.
pub fn kill_9_in_a_halts_revert_finishes_that_revert_on_restart(make: Make) {
    let (world, channel, mut agent) = start(make, "30s");
    channel.publish(&world, "v1.0.0", Hooks::HoldBeforeInstall);
    agent.wait_status(DEPLOY, "v1.0.0 deployed", |s| settled_on(s, "v1.0.0"));
    channel.publish(&world, "v2.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v2.0.0 deployed", |s| settled_on(s, "v2.0.0"));
    std::fs::write(world.marks.join("hold"), "").unwrap();
    let halt = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["halt", "web", "--reason", "bad build", "--config"])
        .arg(&world.config)
        .output()
        .unwrap();
    assert!(halt.status.success(), "{halt:?}");
    world.wait_started("v1.0.0", &agent);
    let status = agent.status();
    assert_eq!(group(&status)["phase"], "reverting", "{status}");
    assert_eq!(group(&status)["target_revision"], "v1.0.0", "{status}");
    agent.kill9();
    std::fs::remove_file(world.marks.join("hold")).unwrap();

    let agent = world.start_agent(&channel.env());
    let status = agent.wait_status(DEPLOY, "the revert to v1.0.0 finished", |s| {
        settled_on(s, "v1.0.0") && !group(s)["last_deployment"]["reverts"].is_null()
    });
    assert_eq!(world.installed(), "v1.0.0");
    assert_eq!(group(&status)["phase"], "halted", "{status}");
    assert_eq!(group(&status)["last_known_good"], "v1.0.0", "{status}");
    let journal =
        shoal_agent::runtime::journal::JournalFile::of(&world.data_dir, crate::world::GROUP)
            .load()
            .unwrap();
    assert_eq!(journal.in_flight, None);
    let step = journal.plan.and_then(|m| m.state).and_then(|s| s.step);
    assert_eq!(step, Some(shoal_shared::gossip::Step::Reverted));
    // Both agents log to one file: the revert the halt started, and its one retry.
    let log = agent.log_text();
    let reverts = log
        .matches("reverting to the last known good revision")
        .count();
    assert_eq!(reverts, 2, "one retry of the cut revert, no loop:\n{log}");
    assert!(!log.contains("not on this host"), "{log}");

    channel.publish(&world, "v3.0.0", Hooks::Good);
    agent.wait_status(DEPLOY, "v3.0.0 deployed after the halt", |s| {
        settled_on(s, "v3.0.0")
    });
    assert_eq!(world.installed(), "v3.0.0");
}

/// kill -9 in v2.0.0's BeforeInstall, again in its second run (a second crash counts as a
/// failure, which halts the rollout), and again in the revert to v1.0.0 that follows: the
/// fourth agent finishes that revert and still knows the rollout of v2.0.0, rather than
/// starting over from what is installed.
pub fn kill_9_thrice_keeps_the_rollout_in_the_journal(make: Make) {
    let (world, channel, mut agent) = start(make, "30s");
    channel.publish(&world, "v1.0.0", Hooks::HoldBeforeInstall);
    agent.wait_status(DEPLOY, "v1.0.0 deployed", |s| settled_on(s, "v1.0.0"));
    channel.publish(&world, "v2.0.0", Hooks::BlockBeforeInstall);
    world.wait_started("v2.0.0", &agent);
    agent.kill9();
    let first = world.hook_group("v2.0.0");
    let mut agent = world.start_agent(&channel.env());
    world.wait_started_again("v2.0.0", &first, &agent);
    assert_eq!(failures(&world), 0, "the first crash is run again");
    agent.kill9();

    std::fs::write(world.marks.join("hold"), "").unwrap();
    let mut agent = world.start_agent(&channel.env());
    world.wait_started("v1.0.0", &agent);
    assert_eq!(group(&agent.status())["phase"], "reverting");
    agent.kill9();
    std::fs::remove_file(world.marks.join("hold")).unwrap();

    let agent = world.start_agent(&channel.env());
    let status = agent.wait_status(DEPLOY, "back on v1.0.0, v2.0.0 halted", |s| {
        settled_on(s, "v1.0.0") && group(s)["phase"] == "halted"
    });
    assert_eq!(world.installed(), "v1.0.0");
    assert_eq!(group(&status)["rollout"]["revision"], "v2.0.0", "{status}");
    let journal =
        shoal_agent::runtime::journal::JournalFile::of(&world.data_dir, crate::world::GROUP)
            .load()
            .unwrap();
    let state = journal.plan.and_then(|m| m.state).unwrap();
    assert_eq!(state.target.map(|t| t.revision).as_deref(), Some("v2.0.0"));
    assert_eq!(
        state.revision.as_deref(),
        Some("v1.0.0"),
        "it says what runs"
    );
    assert_eq!(state.step, Some(shoal_shared::gossip::Step::Reverted));
    assert_eq!(state.failures, 1, "the second crash counted");
}
