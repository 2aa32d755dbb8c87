//! A real `shoal agent` whose git channel points at a server that accepts and never answers:
//! the poll is cut off at the channel's `timeout` and shows on status and in the metrics, and
//! SIGTERM stops the agent within `shutdown_grace` while a fetch hangs, its `git` killed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;

use super::servers;
use crate::fixture::Scene;

/// Writes an agent config with one group on `url` and returns its path.
fn config(scene: &Scene, url: &str, timeout: &str, shutdown_grace: &str) -> std::path::PathBuf {
    let path = scene.path("agent.yaml");
    std::fs::write(
        &path,
        format!(
            "node: {{ id: web-1, data_dir: {data}, shutdown_grace: {shutdown_grace} }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: debug }}\n\
             groups:\n\
             \x20 - name: web\n\
             \x20   channel: {{ git: {{ url: '{url}', poll: 1h, timeout: {timeout} }} }}\n\
             \x20   allowed_signers: {signers}\n",
            data = scene.data_dir().display(),
            signers = scene.signers_path.display(),
        ),
    )
    .unwrap();
    path
}

/// `(pid, ppid, process group, command name)` of every process.
fn processes() -> Vec<(i32, i32, i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
        let Ok(pid) = stat[..open].trim().parse() else {
            continue;
        };
        if fields.first() != Some(&"Z") {
            found.push((pid, number(1), number(2), name));
        }
    }
    found
}

#[test]
fn a_silent_server_is_a_timeout_on_status_and_in_the_metrics() {
    let Some(servers) = servers::servers() else {
        return;
    };
    let scene = Scene::new();
    let url = format!("https://127.0.0.1:{}/app.git", servers.silent_port);
    let config = config(&scene, &url, "1s", "5s");
    let agent = AgentProcess::start(
        Path::new(env!("CARGO_BIN_EXE_shoal")),
        &config,
        &scene.path("agent.log"),
        &[],
    );
    let status = agent.wait_status(Duration::from_secs(15), "the poll fails", |s| {
        s["groups"][0]["last_channel_error"]["message"].is_string()
    });
    let message = status["groups"][0]["last_channel_error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains(&format!(
            "127.0.0.1:{} sent nothing for 1s (the channel's timeout)",
            servers.silent_port
        )),
        "{message}"
    );
    let metrics = agent.get("/metrics").unwrap().body;
    assert!(
        metrics.contains("shoal_channel_poll_errors_total{group=\"web\"} 1"),
        "{metrics}"
    );
}

#[test]
fn sigterm_stops_the_agent_within_shutdown_grace_while_a_fetch_hangs() {
    let Some(servers) = servers::servers() else {
        return;
    };
    let scene = Scene::new();
    let url = format!("https://127.0.0.1:{}/app.git", servers.silent_port);
    let config = config(&scene, &url, "60s", "3s");
    let mut agent = AgentProcess::start(
        Path::new(env!("CARGO_BIN_EXE_shoal")),
        &config,
        &scene.path("agent.log"),
        &[],
    );
    let agent_pid = i32::try_from(agent.pid()).unwrap();
    // The fetch: a git that the agent started as the leader of a process group of its own.
    let git = poll_until(Duration::from_secs(15), || {
        processes()
            .into_iter()
            .find(|(pid, ppid, pgrp, name)| *ppid == agent_pid && name == "git" && pgrp == pid)
    })
    .unwrap_or_else(|| panic!("no git fetch started:\n{}", agent.log_text()));
    let group = git.2;
    // It hangs: the server never answers, and the timeout is a minute away.
    assert!(
        poll_until(Duration::from_millis(500), || {
            agent.status()["groups"][0]["last_channel_error"]
                .is_object()
                .then_some(())
        })
        .is_none()
    );

    let asked = SystemTime::now();
    agent.signal("TERM");
    let exited = agent.wait_exit(Duration::from_secs(3));
    let took = asked.elapsed().unwrap_or_default();
    assert!(
        exited.is_some_and(|s| s.success()),
        "the agent did not stop within shutdown_grace (3s): {exited:?}\n{}",
        agent.log_text()
    );
    eprintln!("stopped {took:?} after SIGTERM, mid-fetch");
    // SIGKILL was sent to the fetch's group before the agent exited; the kernel ends them.
    let in_group = || -> Vec<_> {
        processes()
            .into_iter()
            .filter(|(_, _, pgrp, _)| *pgrp == group)
            .collect()
    };
    let gone = poll_until(Duration::from_secs(5), || {
        in_group().is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "the fetch's processes outlived the agent: {:?}",
        in_group()
    );
}
