//! `shoal demo` run as a user runs it (not on a terminal, so in plain lines), and
//! `examples/hello-app` deployed with `shoal deploy`: a real server started by its
//! ApplicationStart, checked by its ValidateService, stopped by the next ApplicationStop.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use shoal_tests::http::request;
use shoal_tests::poll_until;

fn shoal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Processes whose command line mentions `needle` (the demo's servers carry their workspace).
fn processes_mentioning(needle: &str) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let status = fs::read_to_string(entry.path().join("status")).ok()?;
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (!zombie && cmdline.contains(needle)).then_some(cmdline)
        })
        .collect()
}

/// The whole story passes its own checks, prints plain lines off a terminal, and leaves
/// nothing running or on disk.
#[test]
fn the_demo_tells_its_story_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("demo");
    let output = shoal()
        .arg("demo")
        .arg("--dir")
        .arg(&workspace)
        .output()
        .unwrap();
    let out = text(&output);
    assert!(output.status.success(), "shoal demo failed:\n{out}");
    assert!(
        !out.contains('\x1b'),
        "no terminal codes off a terminal:\n{out}"
    );
    let checked: Vec<&str> = out.lines().filter(|l| l.starts_with("  ok  ")).collect();
    assert_eq!(checked.len(), 7, "seven checked facts:\n{out}");
    for expected in [
        "v1.0.0: the canary",
        "v2.0.0: the canary",
        "ValidateService",
        "halted the rollout for the whole group",
        "went back to v2.0.0",
        "every host's hello-app serves v2.0.0",
    ] {
        assert!(
            checked.iter().any(|l| l.contains(expected)),
            "a fact saying {expected:?}:\n{out}"
        );
    }
    // Plain progress lines name hosts as they change.
    assert!(
        out.lines()
            .any(|l| l.contains("host-1") && l.contains("deploying")),
        "{out}"
    );
    assert!(!workspace.exists(), "the workspace is removed");
    let left = poll_until(Duration::from_secs(10), || {
        let left = processes_mentioning(&workspace.display().to_string());
        left.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "nothing of the demo keeps running: {:?}",
        processes_mentioning(&workspace.display().to_string())
    );
}

/// `--keep` leaves the mesh up: the printed fleet command works and shows the halted rollout,
/// and the printed stop script ends every process and removes the workspace.
#[test]
fn the_demo_kept_running_can_be_explored_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("demo");
    let output = shoal()
        .args(["demo", "--keep", "--dir"])
        .arg(&workspace)
        .output()
        .unwrap();
    let out = text(&output);
    assert!(output.status.success(), "shoal demo --keep failed:\n{out}");
    let stop = workspace.join("stop.sh");
    let _stop_at_end = StopOnDrop(stop.clone());
    let addr: SocketAddr = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("host-1: ")?.split("--addr ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the fleet command of host-1:\n{out}"));

    let fleet = shoal()
        .args(["fleet", "--json", "--addr", &addr.to_string()])
        .output()
        .unwrap();
    assert!(fleet.status.success(), "{}", text(&fleet));
    let fleet: serde_json::Value = serde_json::from_slice(&fleet.stdout).unwrap();
    let alive = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["alive"] == true)
        .count();
    assert_eq!(alive, 5, "{fleet}");
    assert!(!fleet["groups"][0]["halted"].is_null(), "{fleet}");

    let stopped = Command::new("sh").arg(&stop).output().unwrap();
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert!(!workspace.exists(), "stop.sh removes the workspace");
    let quiet = poll_until(Duration::from_secs(10), || {
        let left = processes_mentioning(&workspace.display().to_string());
        let refused = std::net::TcpStream::connect(addr).is_err();
        (left.is_empty() && refused).then_some(())
    });
    assert!(quiet.is_some(), "the agents and their hello-apps are gone");
}

/// Runs a kept demo's stop script if the test ends early.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = Command::new("sh").arg(&self.0).output();
        }
    }
}

fn hello_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-app")
}

/// `shoal deploy` of the example, with its files under `files_root` and `shoal` on PATH for
/// its `shoal hello-server`.
fn deploy(files_root: &Path, deployments: &Path, revision: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_shoal")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    shoal()
        .arg("deploy")
        .arg("--bundle")
        .arg(hello_app())
        .arg("--root")
        .arg(deployments)
        .arg("--files-root")
        .arg(files_root)
        .args(["--revision", revision])
        .env("PATH", path)
        .env("HELLO_PORT", "0")
        .output()
        .unwrap()
}

fn server(files_root: &Path) -> (u32, SocketAddr) {
    let run = files_root.join("run/hello-app");
    let read = |name: &str| {
        fs::read_to_string(run.join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let port: u16 = read("port").parse().unwrap();
    (
        read("pid").parse().unwrap(),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// The example as a user first meets it: installed with its permissions, serving its page,
/// healthy; the next deployment's ApplicationStop stops the old server before a new one starts.
#[test]
fn hello_app_deploys_serves_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let files_root = dir.path().join("root");
    let deployments = dir.path().join("deployments");

    let first = deploy(&files_root, &deployments, "hello-1");
    assert!(first.status.success(), "{}", text(&first));
    let index = files_root.join("opt/hello-app/www/index.html");
    let mode = fs::metadata(&index).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the permissions section applied");
    let (old_pid, addr) = server(&files_root);
    let page = request(addr, "GET", "/", b"").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Hello from hello-app"), "{}", page.body);
    let health = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(health.body.trim(), "ok");
    assert_eq!(
        request(addr, "GET", "/../etc/passwd", b"").unwrap().status,
        404
    );

    let second = deploy(&files_root, &deployments, "hello-2");
    assert!(second.status.success(), "{}", text(&second));
    let (new_pid, _) = server(&files_root);
    assert_ne!(old_pid, new_pid, "a new server runs");
    assert!(!running(old_pid), "ApplicationStop stopped the old server");

    let stop = Command::new("sh")
        .arg(hello_app().join("scripts/stop.sh"))
        .env("SHOAL_FILES_ROOT", &files_root)
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(!running(new_pid), "stop.sh stops the server");
}
