//! `GET /v1/fleet` and `shoal fleet` on the in-process endpoint of an agent without a mesh: the
//! host alone, from its groups' planners, and the CLI's table and JSON.

use std::process::Command;

use shoal_shared::rollout::Policy;
use shoal_shared::status::{Fleet, Health};

use crate::Agent;

#[test]
fn without_a_mesh_the_fleet_is_this_host_alone() {
    let agent = Agent::start();
    let reply = agent.get("/v1/fleet");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let fleet: Fleet = reply.json();
    assert_eq!(fleet.node, "web-1");
    assert_eq!(fleet.nodes.len(), 1);
    let node = &fleet.nodes[0];
    assert!(node.alive);
    let groups: Vec<(&str, Option<&str>, &str, Health)> = node
        .groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.revision.as_deref(),
                g.phase.as_str(),
                g.health,
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("db", None, "idle", Health::Unknown),
            ("web", None, "idle", Health::Unknown)
        ]
    );
    let names: Vec<(&str, usize, Option<&str>)> = fleet
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.total, g.target.as_deref()))
        .collect();
    assert_eq!(names, [("db", 1, None), ("web", 1, None)]);
}

#[test]
fn a_release_shows_as_the_groups_deployment_and_the_hosts_step() {
    let agent = Agent::start();
    let id = agent.release("web", "v2.0.0", Policy::default());
    let fleet: Fleet = agent.get("/v1/fleet").json();
    let web = fleet.groups.iter().find(|g| g.name == "web").unwrap();
    assert_eq!(web.deployment.as_deref(), Some(id.as_str()));
    assert_eq!(web.target.as_deref(), Some("v2.0.0"));
    assert_eq!((web.done, web.total), (0, 1));
    let phase = &fleet.nodes[0]
        .groups
        .iter()
        .find(|g| g.name == "web")
        .unwrap()
        .phase;
    assert_eq!(
        phase, "running",
        "alone in its group, it takes its turn at once"
    );
}

#[test]
fn shoal_fleet_prints_a_table_and_json_as_served() {
    let agent = Agent::start();
    agent.release("web", "v2.0.0", Policy::default());
    let addr = agent.addr.to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(args)
            .args(["--addr", &addr])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["fleet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "fleet seen from web-1: 1 node, 0 dead, 2 groups",
        "{text}"
    );
    assert_eq!(lines[2], "NODE   STATE  db      web", "{text}");
    assert_eq!(
        lines[3], "web-1  alive  - idle  - → v2.0.0 running",
        "{text}"
    );
    assert_eq!(lines[5], "db  no release yet (1 member)", "{text}");
    assert_eq!(
        lines[7], "web  v2.0.0  [..........] 0/1 done, 1 running",
        "{text}"
    );

    let served = agent.get("/v1/fleet").text();
    let out = run(&["fleet", "--json"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), served);
}
