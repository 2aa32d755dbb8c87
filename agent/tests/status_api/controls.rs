//! The steering calls on the in-process endpoint, over real planners and journals: the token
//! (401), the peer (403), the group (404), the planner's refusals (409), bad bodies (400, 413),
//! methods (405), and an accepted halt, resume and promote (202) that reach the planner, its
//! journal and the group task's wake-up.

use shoal_agent::runtime::journal::JournalFile;
use shoal_shared::rollout::{Policy, Strategy};
use shoal_shared::status::{CommandAccepted, Fleet};

use crate::{Agent, DEADLINE, TOKEN, wire};

fn fleet_halt(agent: &Agent) -> Option<shoal_shared::status::HaltInfo> {
    let fleet: Fleet = agent.get("/v1/fleet").json();
    fleet
        .groups
        .into_iter()
        .find(|g| g.name == "web")
        .unwrap()
        .halted
}

#[test]
fn a_steering_call_without_the_admin_token_is_a_401() {
    let agent = Agent::start();
    agent.release("web", "v2.0.0", Policy::default());
    for authorization in [
        None,
        Some("Basic d2ViOnB3"),
        Some("Bearer"),
        Some("Bearer not-the-token"),
        Some(&format!("Bearer {TOKEN}x")),
    ] {
        let reply = wire::post(agent.addr, "/v1/groups/web/halt", authorization, b"");
        assert_eq!(reply.status, 401, "{authorization:?}: {}", reply.text());
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"shoal\"")
        );
        assert!(reply.error().contains("admin token"), "{}", reply.text());
    }
    assert_eq!(fleet_halt(&agent), None, "nothing was halted");
    let lowercase = format!("bearer {TOKEN}");
    let reply = wire::post(agent.addr, "/v1/groups/web/halt", Some(&lowercase), b"");
    assert_eq!(reply.status, 202, "{}", reply.text());
}

#[test]
fn a_steering_call_from_another_host_is_a_403() {
    // The endpoint listens on every address; the call comes from this host's own non-loopback
    // address, as a call from another host would.
    let Some(ip) = non_loopback_ip() else {
        eprintln!("\n!!! SKIPPED: this host has no non-loopback IPv4 address !!!\n");
        return;
    };
    let agent = Agent::serve("0.0.0.0:0", shoal_agent::report::http::Limits::default());
    agent.release("web", "v2.0.0", Policy::default());
    let addr = std::net::SocketAddr::new(ip, agent.addr.port());
    let reply = wire::post(
        addr,
        "/v1/groups/web/halt",
        Some(&format!("Bearer {TOKEN}")),
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.error().contains("is not a loopback address"),
        "{}",
        reply.text()
    );
    // Nor is hook output served to another host, token or not.
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let log = wire::request(
        addr,
        "GET",
        "/v1/deployments/d-0123456789ab/log",
        &[&bearer],
    );
    assert_eq!(log.status, 403, "{}", log.text());
    assert!(
        log.error().contains("is not a loopback address"),
        "{}",
        log.text()
    );
    // Reading is not steering: the fleet answers anyone who can reach the endpoint.
    assert_eq!(wire::get(addr, "/v1/fleet").status, 200);
    assert_eq!(fleet_halt(&agent), None);
}

/// This host's address on the interface that would route to a documentation address.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn an_unknown_group_is_a_404_naming_the_groups() {
    let agent = Agent::start();
    let reply = agent.steer("nope", "halt", b"");
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_eq!(
        reply.error(),
        "no group `nope` on this host: its groups are web, db"
    );
}

#[test]
fn commands_that_do_not_apply_are_409s_with_the_planners_reason() {
    let agent = Agent::start();
    let reply = agent.steer("web", "halt", b"");
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert_eq!(reply.error(), "the group has no release to halt");
    let id = agent.release("web", "v2.0.0", Policy::default());
    let reply = agent.steer("web", "resume", b"");
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert_eq!(reply.error(), format!("deployment {id} is not halted"));
    let reply = agent.steer("web", "promote", b"");
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert_eq!(
        reply.error(),
        format!("deployment {id} is not a canary deployment")
    );
}

#[test]
fn a_halt_is_recorded_journaled_and_wakes_the_group_then_a_resume_lifts_it() {
    let agent = Agent::start();
    let id = agent.release("web", "v2.0.0", Policy::default());
    let reply = agent.steer("web", "halt", br#"{"reason": "bad build"}"#);
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let accepted: CommandAccepted = reply.json();
    assert_eq!(
        accepted,
        CommandAccepted {
            group: "web".into(),
            action: "halt".into(),
            deployment: id.clone(),
            gossip: false,
        }
    );
    let control = agent.control("web");
    let halt = control.read(|h| h.planner().halted().cloned()).unwrap();
    assert_eq!(
        (halt.id.as_str(), halt.host.as_str(), halt.reason.as_str()),
        (id.as_str(), "web-1", "halted by token@web-1: bad build")
    );
    let shown = fleet_halt(&agent).unwrap();
    assert_eq!(
        (shown.host.as_str(), shown.reason.as_str()),
        ("web-1", halt.reason.as_str())
    );
    // Persisted before the answer: a restart keeps the halt.
    let on_disk = JournalFile::of(agent.dir(), "web").load().unwrap();
    assert_eq!(on_disk.plan.and_then(|m| m.halt), Some(halt));
    // The group task is woken to publish it.
    let woken = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(DEADLINE, control.wake().notified()).await });
    assert!(woken.is_ok(), "the group task was not woken");

    let reply = agent.steer("web", "resume", b"");
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.json::<CommandAccepted>().action, "resume");
    assert_eq!(fleet_halt(&agent), None);
    assert!(control.read(|h| h.planner().halted().is_none()));
}

#[test]
fn a_halt_without_a_body_gives_no_reason() {
    let agent = Agent::start();
    agent.release("db", "v1.0.0", Policy::default());
    assert_eq!(agent.steer("db", "halt", b"").status, 202);
    let halt = agent.control("db").read(|h| h.planner().halted().cloned());
    assert_eq!(
        halt.unwrap().reason,
        "halted by token@web-1: no reason given"
    );
}

#[test]
fn a_canary_deployment_is_promoted() {
    let agent = Agent::start();
    let policy = Policy {
        strategy: Strategy::Canary,
        auto_promote: false,
        ..Policy::default()
    };
    let id = agent.release("web", "v2.0.0", policy);
    let reply = agent.steer("web", "promote", b"");
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.json::<CommandAccepted>().deployment, id);
    let promote = agent
        .control("web")
        .read(|h| h.planner().memory().promote.clone());
    assert_eq!(promote.map(|p| p.id), Some(id));
}

#[test]
fn a_halt_body_that_is_not_the_json_expected_is_a_400_and_a_large_one_a_413() {
    let agent = Agent::start();
    agent.release("web", "v2.0.0", Policy::default());
    let reply = agent.steer("web", "halt", b"bad build");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.error().contains(r#"JSON like {"reason""#),
        "{}",
        reply.text()
    );
    let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(5000));
    let reply = agent.steer("web", "halt", long.as_bytes());
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.error().contains("over 4 KiB"), "{}", reply.text());
    assert_eq!(fleet_halt(&agent), None);
}

#[test]
fn steering_paths_answer_post_only_and_reading_paths_get_and_head_only() {
    let agent = Agent::start();
    for method in ["GET", "HEAD", "PUT", "DELETE"] {
        let reply = wire::request(agent.addr, method, "/v1/groups/web/halt", &[]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
    }
    let reply = wire::post(agent.addr, "/v1/fleet", None, b"");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    assert!(reply.error().contains("/v1/fleet answers GET, HEAD only"));
    let reply = agent.steer("web", "stop", b"");
    assert_eq!(reply.status, 404, "{}", reply.text());
}
