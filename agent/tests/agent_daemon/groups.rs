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

#[test]
fn a_group_stuck_in_a_hook_does_not_hold_back_another() {
    let world = World::new();
    let repos: Vec<Repo> = ["web", "api"]
        .iter()
        .map(|name| {
            let repo = Repo::init(&world.dir.path().join(format!("repo-{name}")));
            repo.commit_file("README", name, "initial");
            repo
        })
        .collect();
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
