//! `systemctl reload shoal` (SIGHUP): the agent reads its config again while it runs. A group
//! added starts at once; a group changed or removed applies between its deployments, so a
//! running hook goes on; a file that does not load changes nothing and says why.

use std::time::Duration;

use serde_json::Value;
use shoal_tests::poll_until;
use shoal_tests::signing::git::Repo;

use crate::world::{Hooks, World};

const WAIT: Duration = Duration::from_secs(30);

fn group<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
}

fn entry(name: &str, repo: &Repo, poll: &str, world: &World) -> String {
    format!(
        "\x20 - {{ name: {name}, channel: {{ git: {{ url: {url}, poll: {poll} }} }}, allowed_signers: {signers}, rollout: {{ min_healthy_time: 0s }} }}\n",
        url = repo.dir().display(),
        signers = world.signers_file.display(),
    )
}

fn write_config(world: &World, groups: &[String]) {
    let text = format!(
        "node: {{ id: test-node, data_dir: {data} }}\n\
         status: {{ listen: 127.0.0.1:0 }}\n\
         log: {{ format: json, level: info }}\n\
         groups:\n{}",
        groups.concat(),
        data = world.data_dir.display(),
    );
    std::fs::write(&world.config, text).unwrap();
}

fn release(world: &World, repo: &Repo, app: &str, revision: &str, hooks: Hooks) {
    world.write_bundle_to(repo.dir(), revision, hooks, &world.dir.path().join(app));
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", revision]);
    repo.tag_signed(revision, &format!("{app} {revision}"), &world.key, None);
}

/// While web's BeforeInstall runs, a reload adds api and shortens web's poll interval: api
/// deploys at once, web's hook goes on undisturbed, and once web's deployment is over it polls
/// at the new interval. A config that does not load changes nothing; a reload that removes
/// api takes it out of status.
#[test]
fn sighup_adds_a_group_and_changes_another_without_interrupting_its_hook() {
    let world = World::new();
    let repos = crate::groups::web_and_api(&world);
    let (web, api) = (&repos[0], &repos[1]);
    write_config(&world, &[entry("web", web, "1h", &world)]);
    let agent = world.start_agent(&[]);
    release(&world, web, "app-web", "v1.0.0", Hooks::BlockBeforeInstall);
    world.wait_started("v1.0.0", &agent);
    let hook = world.hook_group("v1.0.0");

    write_config(
        &world,
        &[
            entry("web", web, "300ms", &world),
            entry("api", api, "1h", &world),
        ],
    );
    agent.signal("HUP");
    release(&world, api, "app-api", "v2.0.0", Hooks::Good);
    let status = agent.wait_status(WAIT, "api added and deployed", |s| {
        group(s, "api").is_some_and(|g| g["current_revision"] == "v2.0.0" && g["phase"] == "idle")
    });
    let web_now = group(&status, "web").unwrap();
    assert_eq!(web_now["phase"], "deploying", "{web_now}");
    assert_eq!(web_now["current_event"], "BeforeInstall", "{web_now}");
    assert!(
        !World::group_alive(&hook).is_empty(),
        "web's hook still runs:\n{}",
        agent.log_text()
    );

    std::fs::write(world.marks.join("go"), "").unwrap();
    let status = agent.wait_status(WAIT, "web deployed", |s| {
        group(s, "web").is_some_and(|g| g["current_revision"] == "v1.0.0" && g["phase"] == "idle")
    });
    let hooks = world.hooks_log();
    assert!(hooks.contains("v1.0.0 BeforeInstall went on"), "{hooks}");
    let web_runs = hooks.matches("v1.0.0 BeforeInstall as").count();
    assert_eq!(web_runs, 1, "the hook ran once, uninterrupted:\n{hooks}");
    // At 300 ms, web's channel is looked at again and again with nothing new in it.
    let checked = group(&status, "web").unwrap()["last_check"].clone();
    let mut seen = checked.clone();
    poll_until(Duration::from_secs(10), || {
        seen = group(&agent.status(), "web").unwrap()["last_check"].clone();
        (seen != checked).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "web still polls hourly: last check {seen}\n{}",
            agent.log_text()
        )
    });

    // A config that does not load: nothing changes, and the log says why.
    std::fs::write(&world.config, "groups: [ {").unwrap();
    agent.signal("HUP");
    poll_until(WAIT, || {
        agent
            .log_text()
            .contains("config not reloaded")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no word of the bad file:\n{}", agent.log_text()));
    let status = agent.status();
    assert!(group(&status, "api").is_some() && group(&status, "web").is_some());
    assert_eq!(agent.get("/ready").unwrap().status, 200);

    write_config(&world, &[entry("web", web, "300ms", &world)]);
    agent.signal("HUP");
    agent.wait_status(WAIT, "api removed", |s| group(s, "api").is_none());
}
