//! The fleet view and the steering commands on a real agent: `shoal fleet` shows the host with
//! its revision; `shoal halt` stops a release (a host that completed it goes back, and does not
//! start it again) until `shoal resume` or a newer release; refusals exit with one sentence.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use crate::daemon::{Hooks, Host, fleet_web, node_web, said};
use crate::wire;

#[test]
fn fleet_shows_the_host_and_refusals_say_why() {
    let host = Host::start();
    // Nothing released yet.
    let out = host.shoal(&["halt", "web"]);
    let (_, stderr) = said(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "error: the group has no release to halt\n");
    let out = host.shoal(&["halt", "nope"]);
    let (_, stderr) = said(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no group `nope` on this host: its groups are web"),
        "{stderr}"
    );

    host.publish("v1.0.0", Hooks::Good);
    host.wait_web("v1.0.0 deployed", |g| {
        g["current_revision"] == "v1.0.0" && g["rollout"]["step"] == "done"
    });
    let fleet = host.fleet();
    assert_eq!(fleet["node"], "test-node", "{fleet}");
    assert_eq!(fleet["nodes"].as_array().unwrap().len(), 1, "{fleet}");
    assert_eq!(fleet["nodes"][0]["alive"], true, "{fleet}");
    let node = node_web(&fleet);
    assert_eq!(
        (&node["revision"], &node["phase"]),
        (&"v1.0.0".into(), &"idle".into()),
        "{fleet}"
    );
    let web = fleet_web(&fleet);
    assert_eq!(web["target"], "v1.0.0", "{fleet}");
    assert_eq!(
        (&web["done"], &web["total"]),
        (&1.into(), &1.into()),
        "{fleet}"
    );
    assert!(web["halted"].is_null(), "{fleet}");

    let out = host.shoal(&["fleet", "--json"]);
    let (stdout, stderr) = said(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
        fleet
    );
    let out = host.shoal(&["fleet"]);
    let (stdout, _) = said(&out);
    assert!(stdout.contains("test-node  alive  v1.0.0 idle"), "{stdout}");
    assert!(
        stdout.contains("web  v1.0.0  [##########] 1/1 done; finished "),
        "{stdout}"
    );

    // A rolling deployment cannot be promoted, nor resumed when it is not halted.
    let id = web["deployment"].as_str().unwrap();
    let out = host.shoal(&["promote", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        said(&out).1,
        format!("error: deployment {id} is not a canary deployment\n")
    );
    let out = host.shoal(&["resume", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        said(&out).1,
        format!("error: deployment {id} is not halted\n")
    );

    // Over TCP the steering calls still need the admin token.
    for authorization in [None, Some("Bearer 0000")] {
        let reply = wire::post(host.agent.addr(), "/v1/groups/web/halt", authorization, b"");
        assert_eq!(reply.status, 401, "{authorization:?}");
    }
    let status = host.agent.status();
    assert!(
        status["groups"][0]["rollout"]["halted"].is_null(),
        "{status}"
    );

    // A halt after the release is done shows; a newer release clears it.
    let out = host.shoal(&["halt", "web"]);
    let (stdout, stderr) = said(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "halted web (deployment {id}) on this host; this agent has no mesh, so the group \
             is this host alone\n"
        )
    );
    // Run as root with no sudo: the user is root's name.
    let reason = "halted by root@test-node: no reason given";
    host.wait_web("the halt shows in status", |g| {
        g["rollout"]["halted"]["reason"] == reason
    });
    assert_eq!(fleet_web(&host.fleet())["halted"]["host"], "test-node");
    host.publish("v2.0.0", Hooks::Good);
    let web = host.wait_web("v2.0.0 deployed past the old halt", |g| {
        g["current_revision"] == "v2.0.0" && g["rollout"]["step"] == "done"
    });
    assert!(web["rollout"]["halted"].is_null(), "{web}");
    assert!(fleet_web(&host.fleet())["halted"].is_null());
}

#[test]
fn a_halted_release_goes_back_and_waits_for_resume() {
    let host = Host::start();
    host.publish("v1.0.0", Hooks::Good);
    host.wait_web("v1.0.0 deployed", |g| {
        g["current_revision"] == "v1.0.0" && g["rollout"]["step"] == "done"
    });
    host.publish("v2.0.0", Hooks::BlockBeforeInstall);
    host.wait_blocked("v2.0.0");

    // Under sudo, the user who ran it is recorded.
    let out = host.shoal_as(&["halt", "web", "--reason", "bad build"], "alice");
    let (stdout, stderr) = said(&out);
    assert!(out.status.success(), "{stderr}");
    let fleet = host.fleet();
    let id = fleet_web(&fleet)["deployment"].as_str().unwrap().to_owned();
    assert!(
        stdout.starts_with(&format!("halted web (deployment {id}) on this host")),
        "{stdout}"
    );
    let reason = "halted by alice@test-node: bad build";
    assert_eq!(fleet_web(&fleet)["target"], "v2.0.0", "{fleet}");
    assert_eq!(fleet_web(&fleet)["halted"]["reason"], reason, "{fleet}");
    assert_eq!(node_web(&fleet)["phase"], "running", "{fleet}");

    // v2.0.0 completes its lifecycle, then goes back to v1.0.0 for the halt.
    host.let_go();
    let web = host.wait_web("v2.0.0 reverted for the halt", |g| {
        g["current_revision"] == "v1.0.0" && g["rollout"]["step"] == "reverted"
    });
    assert_eq!(web["rollout"]["deployment"], id.as_str(), "{web}");
    assert_eq!(web["rollout"]["halted"]["host"], "test-node", "{web}");
    assert_eq!(web["rollout"]["halted"]["reason"], reason, "{web}");
    let fleet = host.fleet();
    assert_eq!(node_web(&fleet)["phase"], "reverted", "{fleet}");
    assert_eq!(node_web(&fleet)["revision"], "v1.0.0", "{fleet}");
    assert_eq!(fleet_web(&fleet)["done"], 0, "{fleet}");
    assert_eq!(fleet_web(&fleet)["halted"]["reason"], reason, "{fleet}");
    let out = host.shoal(&["fleet"]);
    let (stdout, _) = said(&out);
    assert!(
        stdout.contains("web  v2.0.0  [..........] 0/1 done, 1 failed; started ")
            && stdout.contains(&format!("\n  HALTED by test-node: {reason}\n")),
        "{stdout}"
    );
    // Halted, it does not start v2.0.0 again.
    assert_eq!(host.runs("v2.0.0", "BeforeInstall"), 1);
    assert_eq!(
        host.agent.status()["groups"][0]["rollout"]["step"],
        "reverted"
    );

    let out = host.shoal(&["resume", "web"]);
    let (stdout, stderr) = said(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!("resumed web (deployment {id}) on this host")),
        "{stdout}"
    );
    let web = host.wait_web("v2.0.0 deployed once resumed", |g| {
        g["current_revision"] == "v2.0.0" && g["rollout"]["step"] == "done"
    });
    assert!(web["rollout"]["halted"].is_null(), "{web}");
    assert_eq!(host.runs("v2.0.0", "BeforeInstall"), 2);
    let fleet = host.fleet();
    assert!(fleet_web(&fleet)["halted"].is_null(), "{fleet}");
    assert_eq!(fleet_web(&fleet)["done"], 1, "{fleet}");
}

/// A local user who holds the status port while the agent is down (a restart, an upgrade)
/// must not receive the admin token from `sudo shoal halt`: steering goes over the control
/// socket, which only root can reach, and sends no secret.
#[test]
fn a_squatter_on_the_status_port_gets_no_token_from_shoal_halt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // The token an earlier run of the agent made.
    let token = "5ec2e7".repeat(10);
    let token_file = data.join("admin.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "node: {{ id: test-node, data_dir: {data} }}\n\
             status: {{ listen: 127.0.0.1:{port} }}\n\
             groups:\n\
             \x20 - name: web\n\
             \x20   channel: {{ git: {{ url: {repo} }} }}\n\
             \x20   allowed_signers: {signers}\n",
            data = data.display(),
            repo = dir.path().join("repo").display(),
            signers = dir.path().join("allowed_signers").display(),
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("allowed_signers"), "").unwrap();
    // The squatter answers whatever comes, and keeps what it was sent.
    let heard = std::thread::spawn(move || {
        let mut heard = Vec::new();
        squatter.set_nonblocking(true).unwrap();
        let deadline = std::time::SystemTime::now() + Duration::from_secs(15);
        while std::time::SystemTime::now() < deadline {
            match squatter.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    heard.extend_from_slice(&buf[..n]);
                    let _ = stream.write_all(b"HTTP/1.1 500 Nope\r\ncontent-length: 0\r\n\r\n");
                    if n == 0 {
                        break; // the test's own knock: the command is over
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&heard).into_owned()
    });

    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["halt", "web", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    drop(std::net::TcpStream::connect(("127.0.0.1", port)));
    let heard = heard.join().unwrap();

    let (_, stderr) = said(&out);
    assert!(
        !heard.contains(&token),
        "the squatter received the admin token:\n{heard}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no shoal agent runs with this config (no control socket"),
        "{stderr}"
    );
}
