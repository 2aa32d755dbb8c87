//! A host whose disk has no room for a release: it says so in its status, blames no peer, and
//! fetches nothing more that round; once room is made, it takes the release at its next look.
//! The full disk is a small tmpfs mounted over the host's release cache (a store) or git
//! mirrors (git), so these tests run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::unistd::Uid;
use shoal_tests::command::stdout;

use super::fleet::{Fleet, Hooks};
use super::pollers::wait_pollers;
use super::share::counter;

const WAIT: Duration = Duration::from_secs(120);
/// The release's filler: more than the small disk holds.
const SIZE: usize = 8 << 20;

/// A tmpfs mounted at a path until dropped (then detached lazily, so the agent still using it
/// may die afterwards).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let options = format!("size={size},mode=0700");
        stdout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
                .arg(at),
        );
        Tmpfs(at.to_path_buf())
    }

    fn grow(&self, size: &str) {
        let options = format!("remount,size={size}");
        stdout(Command::new("mount").args(["-o", &options]).arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Publishes with `publish` while host `full` has `dir` (under its data dir) on a 2 MB disk,
/// then checks that the others deploy, that `full` says why it cannot (its status holds each
/// of `says`) and blames no peer, and that it deploys once the disk grows.
fn a_full_disk(
    mut fleet: Fleet,
    full: usize,
    dir: &str,
    publish: impl FnOnce(&Fleet),
    says: &[&str],
) {
    fleet.stop(full);
    let disk = Tmpfs::mount(&fleet.data_dir(full).join(dir), "2m");
    fleet.restart(full);
    publish(&fleet);

    let others: Vec<usize> = (0..fleet.len()).filter(|&i| i != full).collect();
    for &i in &others {
        fleet
            .agent(i)
            .wait_status(WAIT, "the release deployed", |s| {
                s["groups"][0]["current_revision"] == "v1.0.0"
            });
    }
    let status = fleet
        .agent(full)
        .wait_status(WAIT, "a fetch that failed for the disk", |s| {
            s["groups"][0]["last_channel_error"]["message"]
                .as_str()
                .is_some_and(|m| says.iter().all(|s| m.contains(s)))
        });
    let group = &status["groups"][0];
    assert_eq!(
        group["current_revision"],
        serde_json::Value::Null,
        "{group}"
    );
    let log = fleet.log(full);
    assert_eq!(
        counter(&fleet, full, "shoal_share_bad_peers_total", ""),
        0,
        "peers blamed for this host's disk:\n{log}"
    );
    assert!(!log.contains("a peer's release bytes failed"), "{log}");
    let cli = fleet.shoal(full, &["status"]);
    let cli = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.contains("    channel error: ") && says.iter().all(|s| cli.contains(s)),
        "{cli}"
    );

    disk.grow("64m");
    fleet
        .agent(full)
        .wait_status(WAIT, "the release deployed once the disk grew", |s| {
            s["groups"][0]["current_revision"] == "v1.0.0"
                && s["groups"][0]["last_channel_error"].is_null()
        });
    assert_eq!(counter(&fleet, full, "shoal_share_bad_peers_total", ""), 0);
    let left = temporaries(&fleet.data_dir(full).join(dir));
    assert!(left.is_empty(), "left behind: {left:?}");
    // The agents stop before the disk goes.
    for i in 0..fleet.len() {
        fleet.stop(i);
    }
    drop(disk);
}

/// Files under `dir` that a cut-short write leaves: git's `tmp_*` and what is in a `tmp` folder.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().starts_with("tmp_")
                || at.file_name().is_some_and(|n| n == "tmp")
            {
                found.push(path);
            }
        }
    }
    found
}

fn skipped() -> bool {
    let skip = !Uid::effective().is_root();
    if skip {
        eprintln!("skipped: mounting a small disk needs the tests to run as root");
    }
    skip
}

#[test]
fn a_store_host_with_no_room_for_the_bundle_says_so_blames_no_peer_and_takes_it_later() {
    if skipped() {
        return;
    }
    let fleet = Fleet::start_store(4, "{ strategy: all-at-once, min_healthy_time: 0s }");
    let cache = fleet.data_dir(3).join("releases").display().to_string();
    a_full_disk(
        fleet,
        3,
        "releases",
        |f| f.publish_store("v1.0.0", Hooks::Good, SIZE),
        &[
            "cannot fetch v1.0.0: cannot fetch into ",
            &cache,
            " is free there, and the bundle takes 8.4 MB",
        ],
    );
}

#[test]
fn a_git_host_with_no_room_for_peers_packs_says_so_blames_no_peer_and_takes_it_later() {
    if skipped() {
        return;
    }
    let fleet = Fleet::start_remote(4, "{ strategy: all-at-once, min_healthy_time: 0s }");
    // A host that leaves polling to others takes the release from its peers' packs.
    let all: Vec<usize> = (0..fleet.len()).collect();
    let pollers = wait_pollers(&fleet, &all, 3);
    let quiet = all
        .into_iter()
        .find(|i| !pollers.contains(i))
        .expect("a host that does not poll");
    // Each holder's pack is too large to index and drops out unblamed (a holder chooses a
    // pack's size); the origin's fetch then fails for the disk too.
    a_full_disk(
        fleet,
        quiet,
        "mirrors",
        |f| f.publish_large("v1.0.0", Hooks::Good, SIZE),
        &["this host's disk is full (write error: No space left on device)"],
    );
}
