//! `shoal status` and `shoal logs` as the real binary, against the in-process endpoint: the
//! table, the JSON as served, a log and a followed log, and the exit codes when no agent answers
//! (1) or the config is bad (2).

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use shoal_agent::execute::deployment::Status;

use crate::{Agent, DEADLINE, append_log, record};

const ID: &str = "d-0123456789ab";

fn shoal() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shoal"));
    command.env("RUST_LOG", "warn").env_remove("NOTIFY_SOCKET");
    command
}

fn run(args: &[&str]) -> Output {
    shoal().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An agent whose `web` group ran deployment `ID` (failed) and whose `db` group refused one.
fn busy_agent() -> Agent {
    let agent = Agent::start();
    let failed = record("web", ID, Status::Failed, 1_000);
    agent.deployment(ID, &failed, Some("[AfterInstall] [stderr] boom\n"));
    let summary = shoal_agent::report::board::summarize(ID, &failed);
    agent.board.update("web", |g| {
        g.current_revision = Some("v1.2.0".into());
        g.floor = Some("v1.3.0".into());
        g.phase = shoal_shared::status::Phase::Idle;
        g.last_check = Some("2026-05-01T10:00:05Z".into());
        g.last_deployment = Some(summary);
    });
    agent.board.update("db", |g| {
        g.last_refusal = Some(shoal_shared::status::Refusal {
            name: "v0.9.0".into(),
            kind: "below_floor".into(),
            reason: "v0.9.0 is below the floor v1.0.0".into(),
            when: "2026-05-01T10:00:07Z".into(),
        });
    });
    agent
}

#[test]
fn status_prints_a_table_of_the_groups() {
    let agent = busy_agent();
    let out = run(&["status", "--addr", &agent.addr.to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("node web-1  shoal 0.1.0"), "{stdout}");
    assert!(lines[0].ends_with("not ready"), "{stdout}");
    assert!(
        stdout.contains("GROUP  CURRENT  TARGET  PHASE     FLOOR   HEALTH  LAST DEPLOYMENT"),
        "{stdout}"
    );
    let web = lines.iter().find(|l| l.starts_with("web ")).unwrap();
    for cell in ["v1.2.0", "idle", "v1.3.0", ID, "failed"] {
        assert!(web.contains(cell), "{cell} missing from {web}");
    }
    assert!(stdout.contains("    AfterInstall   failed"), "{stdout}");
    assert!(stdout.contains("exit 1"), "{stdout}");
    assert!(
        stdout.contains("    error: AfterInstall failed: exit code 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "    refused v0.9.0: v0.9.0 is below the floor v1.0.0 (2026-05-01T10:00:07Z)"
        ),
        "{stdout}"
    );
}

#[test]
fn status_json_is_the_body_as_served() {
    let agent = busy_agent();
    let served = agent.get("/v1/status").body;
    let out = run(&["status", "--json", "--addr", &agent.addr.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&served));
}

#[test]
fn status_reads_the_address_from_the_config() {
    let agent = busy_agent();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("0.0.0.0:{}", agent.addr.port()));
    let out = run(&["status", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("node web-1"));
}

#[test]
fn logs_prints_the_hook_output() {
    let agent = busy_agent();
    let token = agent.token_file();
    let out = run(&[
        "logs",
        ID,
        "--addr",
        &agent.addr.to_string(),
        "--token-file",
        &token,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[AfterInstall] [stderr] boom\n");
}

#[test]
fn logs_of_an_unknown_deployment_exit_1_with_the_agents_error() {
    let agent = busy_agent();
    let token = agent.token_file();
    let addr = agent.addr.to_string();
    let out = run(&[
        "logs",
        "d-ffffffffffff",
        "--addr",
        &addr,
        "--token-file",
        &token,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no deployment `d-ffffffffffff` on this host"),
        "{}",
        text(&out.stderr)
    );
    let bad = run(&["logs", "../../etc", "--addr", &agent.addr.to_string()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("is not a deployment id"));
}

#[test]
fn logs_follow_prints_new_output_until_the_deployment_ends() {
    let agent = Agent::start();
    let dir = agent.deployment(ID, &record("web", ID, Status::InProgress, 1), Some("one\n"));
    let mut child = shoal()
        .args(["logs", ID, "--follow", "--addr", &agent.addr.to_string()])
        .args(["--token-file", &agent.token_file()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let shows = |want: &str| {
        shoal_tests::poll_until(DEADLINE, || {
            seen.lock().unwrap().contains(want).then_some(())
        })
        .is_some()
    };
    assert!(shows("one\n"), "the log so far was not printed");
    append_log(&dir, "two\n");
    assert!(shows("two\n"), "new output was not followed");
    append_log(&dir, "three\n");
    record("web", ID, Status::Succeeded, 1).save(&dir).unwrap();
    let status = shoal_tests::poll_until(DEADLINE, || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("shoal logs --follow went on after the deployment ended");
    };
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(*seen.lock().unwrap(), "one\ntwo\nthree\n");
    assert!(
        stderr.contains(&format!("deployment {ID} ended: succeeded")),
        "{stderr}"
    );
}

#[test]
fn no_agent_answering_exits_1_with_what_to_check() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    for args in [vec!["status"], vec!["status", "--json"], vec!["logs", ID]] {
        let out = shoal()
            .args(&args)
            .args(["--addr", &addr.to_string()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "no shoal agent answers at {addr} (connection refused): is `shoal agent` running"
            )),
            "{args:?}: {stderr}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &addr.to_string());
    let out = run(&["status", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "is status.listen in {} this address?",
            config.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_config_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agent.yaml");
    std::fs::write(&bad, "status:\n  listen: not-an-address\n").unwrap();
    let missing = dir.path().join("missing.yaml");
    for config in [&bad, &missing] {
        for command in ["status", "logs"] {
            let mut args = vec![command, "--config", config.to_str().unwrap()];
            if command == "logs" {
                args.push(ID);
            }
            let out = run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let stderr = text(&out.stderr);
            assert!(stderr.contains(&config.display().to_string()), "{stderr}");
        }
    }
}

/// A valid agent config whose status endpoint listens on `listen`.
fn write_config(dir: &Path, listen: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("allowed_signers"), "").unwrap();
    let config = dir.join("agent.yaml");
    let text = format!(
        "status:\n  listen: \"{listen}\"\ngroups:\n  - name: web\n    channel:\n      store:\n        \
         url: file:///srv/releases\n    allowed_signers: allowed_signers\n"
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// What an agent reports can hold text from elsewhere (an object or tag name in an error, a
/// peer's reason, a hook's output): `shoal status` and `shoal logs` show control characters as
/// escapes, so such text cannot retitle the window (`ESC ]0;…BEL`) or clear the screen.
#[test]
fn control_characters_from_the_agent_are_shown_escaped() {
    let agent = Agent::start();
    let failed = record("web", ID, Status::Failed, 1_000);
    agent.deployment(
        ID,
        &failed,
        Some("[AfterInstall] [stdout] \u{1b}]0;pwned\u{7}done\u{9b}2J\n\tok\n"),
    );
    agent.board.update("web", |g| {
        g.current_revision = Some("v1.2.0\u{1b}[2J".into());
        g.last_channel_error = Some(shoal_shared::status::Notice {
            message: "cannot list s3://b/apps/\u{1b}]0;pwned\u{7}/".into(),
            when: "2026-05-01T10:00:05Z".into(),
        });
        g.last_refusal = Some(shoal_shared::status::Refusal {
            name: "v0.9.0\u{1b}[31m".into(),
            kind: "below_floor".into(),
            reason: "below\u{7f} the floor".into(),
            when: "2026-05-01T10:00:07Z".into(),
        });
    });
    let addr = agent.addr.to_string();
    let out = run(&["status", "--addr", &addr]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        !stdout.contains(['\u{1b}', '\u{7}', '\u{7f}']),
        "raw control characters in {stdout:?}"
    );
    for shown in [
        "cannot list s3://b/apps/\\u{1b}]0;pwned\\u{7}/",
        "v1.2.0\\u{1b}[2J",
        "refused v0.9.0\\u{1b}[31m: below\\u{7f} the floor",
    ] {
        assert!(stdout.contains(shown), "{shown} missing from {stdout}");
    }

    let token = agent.token_file();
    let out = run(&["logs", ID, "--addr", &addr, "--token-file", &token]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "[AfterInstall] [stdout] \\u{1b}]0;pwned\\u{7}done\\u{9b}2J\n\tok\n"
    );
}

/// On a packaged host the config is world-readable and the mesh key root's alone: a user who
/// may not read the key still gets `shoal status` and `shoal fleet`, which read only where the
/// agent listens.
#[test]
fn status_fleet_and_history_work_for_a_user_who_cannot_read_the_mesh_key() {
    use std::os::unix::fs::PermissionsExt as _;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to create a user and a root-only key");
        return;
    }
    let user = shoal_tests::users::ThrowawayUser::create();
    let agent = busy_agent();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = dir.path().join("gossip.key");
    let made = shoal()
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::write(dir.path().join("allowed_signers"), "").unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "status:\n  listen: \"127.0.0.1:{}\"\nmesh:\n  name: prod\n  key_file: gossip.key\n\
             groups:\n  - name: web\n    channel:\n      store:\n        url: file:///srv/releases\n\
             \x20   allowed_signers: allowed_signers\n",
            agent.addr.port()
        ),
    )
    .unwrap();
    // The user must be able to run the binary, wherever the checkout is.
    let bin = dir.path().join("shoal");
    std::fs::copy(env!("CARGO_BIN_EXE_shoal"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    for command in ["status", "fleet"] {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .args(["--clear-groups", "--"])
            .arg(&bin)
            .args([command, "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`shoal {command}` as {}: {}",
            user.name,
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("web-1"), "{}", text(&out.stdout));
    }
    let as_user = Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .args(["--clear-groups", "--"])
        .arg(&bin)
        .args(["history", "--json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(as_user.status.success(), "{}", text(&as_user.stderr));
    assert_eq!(text(&as_user.stdout), agent.get("/v1/history").text());
}
