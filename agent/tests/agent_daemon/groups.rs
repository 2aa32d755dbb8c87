//! Two applications on one host: each group has its own channel, journal and deployments, and
//! one group stuck in a hook does not hold the other back.

use std::time::Duration;

use serde_json::Value;
use shoal_tests::signing::git::Repo;

use crate::world::{Hooks, World};

fn group<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {status}"))
}

/// A repository each for groups `web` and `api` in `world`, each with a first commit; each
/// group's tags are bound to its application: its name.
pub fn web_and_api(world: &World) -> Vec<Repo> {
    ["web", "api"]
        .iter()
        .map(|name| {
            let repo = Repo::init(&world.dir.path().join(format!("repo-{name}")))
                .for_application(Some(name));
            repo.commit_file("README", name, "initial");
            repo
        })
        .collect()
}

/// A world whose agent has groups `web` and `api`, each on a repository of its own whose tags
/// are bound to its application (its name).
fn two_groups() -> (World, Vec<Repo>) {
    let world = World::new();
    let repos = web_and_api(&world);
    let config = format!(
        "node: {{ id: test-node, data_dir: {data} }}\n\
         status: {{ listen: 127.0.0.1:0 }}\n\
         log: {{ format: json, level: info }}\n\
         groups:\n\
         \x20 - {{ name: web, channel: {{ git: {{ url: {web} }} }}, allowed_signers: {signers}, rollout: {{ min_healthy_time: 0s }} }}\n\
         \x20 - {{ name: api, channel: {{ git: {{ url: {api} }} }}, allowed_signers: {signers}, rollout: {{ min_healthy_time: 0s }} }}\n",
        data = world.data_dir.display(),
        web = repos[0].dir().display(),
        api = repos[1].dir().display(),
        signers = world.signers_file.display(),
    );
    std::fs::write(&world.config, config).unwrap();
    (world, repos)
}

#[test]
fn a_group_stuck_in_a_hook_does_not_hold_back_another() {
    let (world, repos) = two_groups();
    let agent = world.start_agent(&[]);

    // api blocks in BeforeInstall.
    let api_dir = world.dir.path().join("app-api");
    world.write_bundle_to(
        repos[1].dir(),
        "v1.0.0",
        Hooks::BlockBeforeInstall,
        &api_dir,
    );
    repos[1].git(&["add", "-A"]);
    repos[1].git(&["commit", "-q", "-m", "api v1"]);
    repos[1].tag_signed("v1.0.0", "api 1.0.0", &world.key, None);
    world.wait_started("v1.0.0", &agent);

    world.write_bundle(repos[0].dir(), "v2.0.0", Hooks::Good);
    repos[0].git(&["add", "-A"]);
    repos[0].git(&["commit", "-q", "-m", "web v2"]);
    repos[0].tag_signed("v2.0.0", "web 2.0.0", &world.key, None);
    // Polls are 30 s apart: only the watch on the repository makes this quick.
    let status = agent.wait_status(
        Duration::from_secs(20),
        "web deployed while api is stuck",
        |s| group(s, "web")["current_revision"] == "v2.0.0" && group(s, "web")["phase"] == "idle",
    );
    let api = group(&status, "api");
    assert_eq!(api["phase"], "deploying", "{api}");
    assert_eq!(api["current_event"], "BeforeInstall", "{api}");
    assert!(api["current_revision"].is_null(), "{api}");

    std::fs::write(world.marks.join("go"), "").unwrap();
    agent.wait_status(Duration::from_secs(90), "api deployed once let go", |s| {
        group(s, "api")["current_revision"] == "v1.0.0" && group(s, "api")["phase"] == "idle"
    });
    assert_eq!(
        std::fs::read_to_string(api_dir.join("version.txt")).unwrap(),
        "v1.0.0\n"
    );
    for name in ["web", "api"] {
        let journal = world.data_dir.join("journal").join(format!("{name}.json"));
        assert!(
            journal.is_file(),
            "each group has its own journal: {}",
            journal.display()
        );
    }
    let token = world.data_dir.join("admin.token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the admin token is made 0600");
}

/// Cross-channel replay, end to end: web and api share a signing key; web's signed v9.0.0
/// (tag object and commit) is pushed into api's repository. api must run none of web's hooks,
/// keep its floor, and still take its own next release.
#[test]
fn a_tag_copied_into_another_groups_repository_runs_nothing_there() {
    let (world, repos) = two_groups();
    let agent = world.start_agent(&[]);

    let web_dir = world.dir.path().join("app-web");
    world.write_bundle_to(repos[0].dir(), "v9.0.0", Hooks::Good, &web_dir);
    repos[0].git(&["add", "-A"]);
    repos[0].git(&["commit", "-q", "-m", "web v9"]);
    repos[0].tag_signed("v9.0.0", "web 9.0.0", &world.key, None);
    agent.wait_status(Duration::from_secs(20), "web deployed v9.0.0", |s| {
        group(s, "web")["current_revision"] == "v9.0.0" && group(s, "web")["phase"] == "idle"
    });
    let web_hooks = world.hooks_log();

    // The attacker's push into api's repository.
    let from = repos[0].dir().to_str().unwrap();
    repos[1].git(&["fetch", "-q", from, "refs/tags/v9.0.0:refs/tags/v9.0.0"]);
    let status = agent.wait_status(Duration::from_secs(20), "api judged v9.0.0", |s| {
        let api = group(s, "api");
        !api["last_refusal"].is_null() || !api["target_revision"].is_null()
    });
    let api = group(&status, "api");
    assert!(
        api["target_revision"].is_null() && api["current_revision"].is_null(),
        "api took web's release: {api}"
    );
    assert_eq!(api["last_refusal"]["name"], "v9.0.0", "{api}");
    assert_eq!(api["last_refusal"]["kind"], "wrong_application", "{api}");
    assert!(api["floor"].is_null(), "{api}");
    assert_eq!(world.hooks_log(), web_hooks, "no hook ran for api");

    // api's own release still goes through: its floor did not move.
    let api_dir = world.dir.path().join("app-api");
    world.write_bundle_to(repos[1].dir(), "v1.0.0", Hooks::Good, &api_dir);
    repos[1].git(&["add", "-A"]);
    repos[1].git(&["commit", "-q", "-m", "api v1"]);
    repos[1].tag_signed("v1.0.0", "api 1.0.0", &world.key, None);
    agent.wait_status(Duration::from_secs(20), "api deployed v1.0.0", |s| {
        group(s, "api")["current_revision"] == "v1.0.0" && group(s, "api")["phase"] == "idle"
    });
}
