//! Hook output may carry secrets (a hook that prints its environment prints the agent's
//! credentials): a local user who is not root must not read it back through the status
//! endpoint, while root (who can read the admin token) still does, with `shoal logs`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use nix::unistd::Uid;
use shoal_agent::execute::deployment::Status;
use shoal_tests::users::ThrowawayUser;

use crate::{Agent, TOKEN, record, wire};

const ID: &str = "d-0123456789ab";
const SECRET: &str = "wJalrXUtnFEMI-shoal-test-secret";

/// An agent whose deployment `ID` logged a hook printing the agent's secret.
fn agent_with_a_secret_in_a_log() -> Agent {
    with_a_secret_in_a_log(Agent::start())
}

fn with_a_secret_in_a_log(agent: Agent) -> Agent {
    let log = format!(
        "2026-05-01T10:00:00.000Z [BeforeInstall] [scripts/env.sh] [stdout] \
         AWS_SECRET_ACCESS_KEY={SECRET}\n"
    );
    agent.deployment(ID, &record("web", ID, Status::Succeeded, 1), Some(&log));
    agent
}

fn shoal_logs(agent: &Agent, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shoal"));
    command
        .args(["logs", ID, "--addr", &agent.addr.to_string()])
        .args(extra)
        .env_clear()
        .env("RUST_LOG", "warn")
        // No config on this path: the address comes from --addr, and no token file is found.
        .current_dir("/");
    command
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_local_user_cannot_read_hook_output_through_the_status_endpoint() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs root to create a throwaway user");
        return;
    }
    let agent = agent_with_a_secret_in_a_log();
    let user = ThrowawayUser::create();

    let out = shoal_logs(&agent, &["--config", "/nonexistent/agent.yaml"])
        .uid(user.uid)
        .gid(user.gid)
        .output()
        .unwrap();

    let (stdout, stderr) = text(&out);
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "user {} read the hook output through `shoal logs`:\n{stdout}{stderr}",
        user.name
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(
        stderr.contains("admin token") && stderr.contains("root"),
        "{stderr}"
    );

    // Nor by asking the endpoint directly, for the log or the tail a deployment carries.
    let log = agent.get(&format!("/v1/deployments/{ID}/log"));
    assert_eq!(log.status, 401, "{}", log.text());
    assert!(!log.text().contains(SECRET));
    assert!(log.error().contains("admin token"), "{}", log.error());
    let detail = agent.get(&format!("/v1/deployments/{ID}"));
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert!(
        !detail.text().contains(SECRET),
        "the log tail of /v1/deployments/{ID} carries the hook output: {}",
        detail.text()
    );
}

#[test]
fn root_reads_hook_output_with_the_admin_token() {
    let agent = agent_with_a_secret_in_a_log();
    let token_file = agent.dir().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = shoal_logs(&agent, &["--token-file", &token_file.display().to_string()])
        .output()
        .unwrap();

    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(SECRET), "{stdout}");
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let detail = wire::request(
        agent.addr,
        "GET",
        &format!("/v1/deployments/{ID}"),
        &[&bearer],
    );
    assert!(detail.text().contains(SECRET), "{}", detail.text());
}

#[test]
fn public_logs_serve_hook_output_without_the_token() {
    let agent = with_a_secret_in_a_log(Agent::start_with_public_logs());
    let log = agent.get(&format!("/v1/deployments/{ID}/log"));
    assert_eq!(log.status, 200, "{}", log.text());
    assert!(log.text().contains(SECRET));
    let detail: shoal_shared::status::DeploymentDetail =
        agent.get(&format!("/v1/deployments/{ID}")).json();
    assert!(detail.log_tail.contains(SECRET) && !detail.log_hidden);
    let out = shoal_logs(&agent, &["--config", "/nonexistent/agent.yaml"])
        .output()
        .unwrap();
    assert!(text(&out).0.contains(SECRET), "{:?}", text(&out));
}

#[test]
fn a_wrong_token_is_refused_and_the_tail_hidden() {
    let agent = agent_with_a_secret_in_a_log();
    let wrong = "Authorization: Bearer 0123456789abcdee\r\n";
    let log = wire::request(
        agent.addr,
        "GET",
        &format!("/v1/deployments/{ID}/log"),
        &[wrong],
    );
    assert_eq!(log.status, 401);
    assert!(
        log.error().contains("the admin token is wrong"),
        "{}",
        log.error()
    );
    let detail: shoal_shared::status::DeploymentDetail = wire::request(
        agent.addr,
        "GET",
        &format!("/v1/deployments/{ID}"),
        &[wrong],
    )
    .json();
    assert!(
        detail.log_tail.is_empty() && detail.log_hidden,
        "{detail:?}"
    );
    assert!(detail.log_size > 0, "the size still says there is output");
}
