//! What the agent writes on stderr as journald and a pipe receive it. The test makes the pipe
//! itself and, as systemd does for a unit whose stderr is the journal, names it in
//! `JOURNAL_STREAM` (`<device>:<inode>`): each line then starts with its syslog priority
//! (`<3>` error, `<4>` warning, `<6>` info) and has no time, level or escape codes of its own.
//! Without `JOURNAL_STREAM`, or with one naming another file, the lines are the usual ones,
//! without colour.

use std::io::{PipeReader, Read as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use shoal_tests::poll_until;

use crate::world::World;

/// What `JOURNAL_STREAM` says about the agent's stderr.
#[derive(Clone, Copy)]
enum Stream {
    /// Names the pipe the agent writes to: as under systemd with `StandardError=journal`.
    Journal,
    /// Names another file: inherited from a parent whose stderr was the journal.
    Elsewhere,
    /// Unset.
    Unset,
}

/// An agent whose stderr is a pipe this test reads.
struct Piped {
    child: Child,
    text: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Piped {
    fn start(world: &World, stream: Stream) -> Piped {
        let (reader, writer) = std::io::pipe().unwrap();
        let id = |fd: OwnedFd| {
            let meta = std::fs::File::from(fd).metadata().unwrap();
            format!("{}:{}", meta.dev(), meta.ino())
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_shoal"));
        command
            .arg("agent")
            .arg("--config")
            .arg(&world.config)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match stream {
            Stream::Journal => {
                command.env("JOURNAL_STREAM", id(writer.try_clone().unwrap().into()));
            }
            Stream::Elsewhere => {
                let (_, other) = std::io::pipe().unwrap();
                command.env("JOURNAL_STREAM", id(other.into()));
            }
            Stream::Unset => {}
        }
        command.stderr(writer);
        let child = command.spawn().unwrap();
        // The command holds the pipe's write end; the reader sees its end only once it is gone.
        drop(command);
        let text = Arc::new(Mutex::new(String::new()));
        let reader = Some(spawn_reader(reader, Arc::clone(&text)));
        Piped {
            child,
            text,
            reader,
        }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until a line holds every one of `words`.
    fn wait_for_line(&self, words: &[&str]) {
        let found = poll_until(Duration::from_secs(30), || {
            self.text()
                .lines()
                .any(|line| words.iter().all(|w| line.contains(w)))
                .then_some(())
        });
        found.unwrap_or_else(|| panic!("no line with {words:?} within 30 s:\n{}", self.text()));
    }

    /// Sends SIGTERM and returns the exit code and everything written to stderr.
    fn stop(self) -> (Option<i32>, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.finish()
    }

    /// Waits for the agent to exit and its stderr to close.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = poll_until(Duration::from_secs(30), || self.child.try_wait().unwrap());
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!("the agent did not exit within 30 s:\n{}", self.text());
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status.code(), self.text())
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_reader(mut reader: PipeReader, text: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => text
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// A world whose agent logs `format` and warns at start: its channel names a repository that
/// does not exist.
fn world(format: &str) -> World {
    let world = World::new();
    let repo = world.dir.path().join("no-repo");
    world.write_config(&format!("{{ git: {{ url: {} }} }}", repo.display()), "5s");
    set_config(&world, "format: json", &format!("format: {format}"));
    world
}

fn set_config(world: &World, from: &str, to: &str) {
    let text = std::fs::read_to_string(&world.config).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&world.config, text.replace(from, to)).unwrap();
}

/// Whether `line` holds an RFC 3339 time such as `2026-01-31T12:00:00`.
fn has_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.windows(19).any(|w| {
        let digits = |range: std::ops::Range<usize>| w[range].iter().all(u8::is_ascii_digit);
        digits(0..4)
            && w[4] == b'-'
            && digits(5..7)
            && w[7] == b'-'
            && digits(8..10)
            && w[10] == b'T'
            && digits(11..13)
            && w[13] == b':'
    })
}

/// The priority in front of `line`, and the rest.
fn priority(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let (digit, rest) = rest.split_once('>')?;
    Some((digit.parse().ok().filter(|p| *p <= 7)?, rest))
}

#[test]
fn in_the_journal_each_line_carries_its_priority_and_no_time_level_or_colour() {
    // Pretty: info and warnings while it runs, then SIGTERM.
    let world = world("pretty");
    let agent = Piped::start(&world, Stream::Journal);
    agent.wait_for_line(&["<6>", "status endpoint listening"]);
    agent.wait_for_line(&["<4>", "channel check failed"]);
    let (code, pretty) = agent.stop();
    assert_eq!(code, Some(0), "{pretty}");
    assert!(
        pretty
            .lines()
            .any(|l| l.starts_with("<6>") && l.ends_with("stopped")),
        "{pretty}"
    );
    for line in pretty.lines() {
        let (_, rest) = priority(line).unwrap_or_else(|| panic!("no priority: {line:?}"));
        assert!(!line.contains("\x1b["), "escape codes: {line:?}");
        assert!(!has_timestamp(line), "a time of its own: {line:?}");
        for level in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
            assert!(!rest.trim_start().starts_with(level), "a level: {line:?}");
        }
    }

    // JSON, and an error: the status address is taken, so the agent stops with exit 1. Every
    // line is filed as an error, the last words the agent prints itself included.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    set_config(&world, "format: pretty", "format: json");
    let addr = taken.local_addr().unwrap();
    set_config(&world, "listen: 127.0.0.1:0", &format!("listen: {addr}"));
    let (code, json) = Piped::start(&world, Stream::Journal).finish();
    assert_eq!(code, Some(1), "{json}");
    let lines: Vec<&str> = json.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("<3>error: ")
            && l.contains(&format!("cannot listen on {addr} (status.listen)"))),
        "{json}"
    );
    let logged: Vec<Value> = lines
        .iter()
        .filter_map(|l| priority(l))
        .filter_map(|(p, rest)| Some((p, serde_json::from_str::<Value>(rest).ok()?)))
        .map(|(p, entry)| {
            assert_eq!(p, 3, "{entry}");
            assert_eq!(entry["level"], "ERROR", "{entry}");
            entry
        })
        .collect();
    assert!(
        logged
            .iter()
            .any(|e| e["fields"]["message"] == "agent stopped"),
        "a JSON line after the prefix: {json}"
    );
    for line in &lines {
        assert!(priority(line).is_some_and(|(p, _)| p == 3), "{line:?}");
        assert!(!line.contains("\x1b["), "{line:?}");
    }
}

#[test]
fn off_the_journal_lines_have_no_priority_and_no_colour() {
    for stream in [Stream::Unset, Stream::Elsewhere] {
        let world = world("pretty");
        let agent = Piped::start(&world, stream);
        agent.wait_for_line(&["WARN", "channel check failed"]);
        let (code, text) = agent.stop();
        assert_eq!(code, Some(0), "{text}");
        assert!(
            text.lines()
                .any(|l| has_timestamp(l) && l.contains(" INFO ") && l.ends_with("stopped")),
            "the usual lines, with time and level: {text}"
        );
        for line in text.lines() {
            assert!(priority(line).is_none(), "a priority: {line:?}");
            assert!(!line.contains("\x1b["), "escape codes: {line:?}");
        }
    }
}

/// On a terminal (a pty that `script` from util-linux makes), the lines are coloured as before,
/// unless `NO_COLOR` is set. The agent stops at once: its status address is taken.
#[test]
fn on_a_terminal_lines_are_coloured_unless_no_color_is_set() {
    let have_script = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_script {
        eprintln!("\n!!! SKIPPED: `script` (util-linux) is not installed, so no terminal !!!\n");
        return;
    }
    let world = world("pretty");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    set_config(&world, "listen: 127.0.0.1:0", &format!("listen: {addr}"));
    let on_a_terminal = |no_color: Option<&str>| {
        let line = format!(
            "'{}' agent --config '{}'",
            env!("CARGO_BIN_EXE_shoal"),
            world.config.display()
        );
        let mut command = Command::new("script");
        command
            .args(["--quiet", "--return", "--command", &line, "/dev/null"])
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("agent stopped"), "{text}");
        text
    };
    let coloured = on_a_terminal(None);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    let plain = on_a_terminal(Some("1"));
    assert!(!plain.contains("\x1b["), "{plain:?}");
}

/// `shoal deploy`'s own warnings (a script past its timeout) follow the same rules: on a pipe,
/// no colour and no priority; with `JOURNAL_STREAM` naming the pipe, `<4>` and no time.
#[test]
fn shoal_deploy_warnings_follow_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: slow.sh\n      timeout: 1\n",
    )
    .unwrap();
    std::fs::write(bundle.join("slow.sh"), "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(
        bundle.join("slow.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let deploy = |stream: Stream| {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_shoal"));
        command
            .arg("deploy")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(["--group", "g", "--revision", "r1", "--kill-grace", "1"])
            .env("RUST_LOG", "warn")
            .env_remove("NO_COLOR")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Stream::Journal = stream {
            let meta = std::fs::File::from(OwnedFd::from(writer.try_clone().unwrap()))
                .metadata()
                .unwrap();
            command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        command.stderr(writer);
        let mut child = command.spawn().unwrap();
        drop(command);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(1), "{text}");
        text
    };
    let piped = deploy(Stream::Unset);
    let warning = piped
        .lines()
        .find(|l| l.contains("script timed out"))
        .unwrap_or_else(|| panic!("no warning: {piped}"));
    assert!(
        warning.contains(" WARN ") && has_timestamp(warning),
        "{warning:?}"
    );
    assert!(!piped.contains("\x1b["), "{piped:?}");
    assert!(piped.lines().all(|l| priority(l).is_none()), "{piped}");

    let journal = deploy(Stream::Journal);
    let warning = journal
        .lines()
        .find(|l| l.contains("script timed out"))
        .unwrap_or_else(|| panic!("no warning: {journal}"));
    assert!(
        warning.starts_with("<4>") && !has_timestamp(warning),
        "{warning:?}"
    );
    assert!(!journal.contains("\x1b["), "{journal:?}");
}
