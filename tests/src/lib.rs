//! shoal's test harness: where the shared fixtures and the AppSpec corpus live, and the real
//! services and tools release-channel tests run against (moto S3, ssh-keygen and git signing, a
//! counting proxy), and the deterministic simulator of rollouts over gossip ([`sim`]). Multi-agent
//! and end-to-end tests of the mesh build on it.

pub mod agent;
pub mod browser;
pub mod command;
pub mod git_daemon;
pub mod http;
mod poll;
pub mod proxy;
pub mod receiver;
pub mod s3;
pub mod signing;
pub mod sim;
pub mod udp;
pub mod users;

use std::path::PathBuf;

pub use poll::poll_until;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `tests/fixtures/<name>` in this repository.
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

/// The AppSpec conformance corpus: `$SHOAL_APPSPEC_CORPUS`, or `../shared/corpus/appspec` relative
/// to the workspace root. `None`, after saying so loudly on stderr, when it is not there.
pub fn appspec_corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("SHOAL_APPSPEC_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/corpus/appspec"),
    };
    if dir.join("expected.tsv").is_file() {
        return Some(dir);
    }
    eprintln!(
        "\n!!! SKIPPED: the AppSpec corpus was not found at {} (set SHOAL_APPSPEC_CORPUS, or put \
         shared/corpus/appspec beside the repository) !!!\n",
        dir.display()
    );
    None
}

/// The corpus's expected outcomes: (file name, `ACCEPT` | `REJECT` | `CRASH`).
pub fn appspec_corpus_expectations(dir: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("expected.tsv")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .map(|(file, outcome)| (file.to_owned(), outcome.trim().to_owned()))
        .collect()
}

/// CPU time (user and system, in seconds) that process `pid` has used, from `/proc/<pid>/stat`;
/// `pid` may be `self`. Clock ticks are taken as 100 a second, as on every Linux build here.
pub fn cpu_seconds(pid: impl std::fmt::Display) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The fields after the command name (which may hold spaces) start past its ')'; utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let rest = &stat[stat.rfind(')').expect("a command name in /proc/<pid>/stat") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("a tick count");
    (ticks(11) + ticks(12)) as f64 / 100.0
}
