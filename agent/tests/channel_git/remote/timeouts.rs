//! A server that accepts the connection and then says nothing is cut off at the channel's
//! `timeout` and reported as a timeout, whatever the protocol; and while a fetch runs, no
//! secret is on any command line.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use shoal_agent::channel::git::{GitError, GitSource};
use shoal_tests::poll_until;

use super::servers;
use crate::fixture::{NOW, Scene};

/// One poll of `source` from a fresh scene: its error, and how long it took.
fn poll_failing(source: GitSource) -> (GitError, Duration) {
    let scene = Scene::new();
    let mut channel = scene.channel_for(source);
    let mut state = scene.state();
    let started = SystemTime::now();
    let error = channel
        .poll(&scene.signers(), &mut state, NOW)
        .expect_err("a silent server cannot be polled");
    (error, started.elapsed().unwrap_or_default())
}

#[test]
fn a_silent_server_is_cut_off_at_the_timeout_whatever_the_protocol() {
    let Some(servers) = servers::servers() else {
        return;
    };
    let port = servers.silent_port;
    let urls = [
        format!("https://127.0.0.1:{port}/app.git"),
        format!("ssh://root@127.0.0.1:{port}/app.git"),
        format!("git://127.0.0.1:{port}/app.git"),
    ];
    std::thread::scope(|s| {
        for url in &urls {
            s.spawn(move || {
                let mut source = GitSource::new(url);
                source.timeout = Duration::from_secs(1);
                let (error, took) = poll_failing(source);
                let said = format!("{error}: {}", std::error::Error::source(&error).unwrap());
                assert_eq!(error.kind(), "git_timeout", "{url}: {said}");
                assert!(
                    said.contains(&format!("127.0.0.1:{port}"))
                        && (said.contains("sent nothing for 1s")
                            || said.contains("did not answer in time")),
                    "{url}: {said}"
                );
                assert!(took < Duration::from_secs(5), "{url}: took {took:?}");
            });
        }
    });
}

/// The command lines of the processes whose command line mentions `needle`.
fn command_lines_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            found.push(line);
        }
    }
    found
}

/// A token or a url's password goes to git through its environment (readable by root only),
/// never through a command line, which every local user can read in `/proc`.
#[test]
fn no_secret_is_on_a_command_line_while_a_fetch_runs() {
    let Some(servers) = servers::servers() else {
        return;
    };
    let port = servers.silent_port;
    let scene = Scene::new();
    let token: PathBuf = scene.path("keys/token");
    std::fs::write(&token, "t0ken-in-a-file\n").unwrap();
    let mut with_token = GitSource::new(format!("https://127.0.0.1:{port}/token.git"));
    with_token.token_file = Some(token);
    let with_password = GitSource::new(format!(
        "https://bot:pa55word@127.0.0.1:{port}/password.git"
    ));
    let cases = [
        (with_token, "t0ken-in-a-file", "token.git"),
        (with_password, "pa55word", "password.git"),
    ];
    std::thread::scope(|s| {
        for (mut source, secret, marker) in cases {
            s.spawn(move || {
                source.timeout = Duration::from_secs(2);
                let fetch = std::thread::spawn(move || poll_failing(source));
                let lines = poll_until(Duration::from_secs(10), || {
                    let lines = command_lines_with(marker);
                    lines.iter().any(|l| l.contains("fetch")).then_some(lines)
                })
                .expect("git fetch shows up in /proc");
                for line in &lines {
                    assert!(!line.contains(secret), "a secret on a command line: {line}");
                }
                let (error, _) = fetch.join().unwrap();
                let said = format!("{error}: {}", std::error::Error::source(&error).unwrap());
                assert!(!said.contains(secret), "{said}");
            });
        }
    });
}
