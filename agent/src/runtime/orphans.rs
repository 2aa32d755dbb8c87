//! Scripts a killed agent left running. A hook runs in its own process group and outlives a
//! `kill -9` of the agent; before the restarted agent reverts, it stops them, so an old
//! BeforeInstall is not still writing while the revert installs. They are found by the
//! `DEPLOYMENT_ID` and `SHOAL_DEPLOYMENT_DIR` the hook runner put in their environment, which a
//! reused pid cannot fake; the directory tells this agent's hooks from those of another agent
//! on the same machine deploying the same release (tests, `shoal demo`).

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::time::{Instant, sleep};

use crate::execute::procs;

/// How long the groups get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// Stops every process group holding a hook of `deployment_id` run in this host's deployment
/// directory `dir`; returns their ids.
pub async fn stop_leftovers(deployment_id: &str, dir: &std::path::Path) -> Vec<i32> {
    let find = || find(deployment_id, dir);
    let groups = find();
    if groups.is_empty() {
        return Vec::new();
    }
    for pgid in &groups {
        let _ = killpg(Pid::from_raw(*pgid), Signal::SIGTERM);
    }
    let give_up = Instant::now() + GRACE;
    while Instant::now() < give_up && !find().is_empty() {
        sleep(Duration::from_millis(50)).await;
    }
    for pgid in find() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    groups.into_iter().collect()
}

/// The process groups of live processes whose environment has `DEPLOYMENT_ID=<id>`,
/// `SHOAL_DEPLOYMENT_DIR=<dir>` and a `LIFECYCLE_EVENT` (this agent excluded).
fn find(deployment_id: &str, dir: &std::path::Path) -> BTreeSet<i32> {
    let wanted = format!("DEPLOYMENT_ID={deployment_id}");
    let here = format!("SHOAL_DEPLOYMENT_DIR={}", dir.display());
    let me = std::process::id();
    procs::pids()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let mut vars = env.split(|b| *b == 0);
                let (mut id, mut ours, mut event) = (false, false, false);
                for var in vars.by_ref() {
                    id |= var == wanted.as_bytes();
                    ours |= var == here.as_bytes();
                    event |= var.starts_with(b"LIFECYCLE_EVENT=");
                }
                id && ours && event
            })
        })
        .filter_map(procs::live_group)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[tokio::test]
    async fn a_left_hook_is_found_by_its_deployment_and_directory_and_stopped() {
        let spawn = |dir: &str| {
            tokio::process::Command::new("/bin/sh")
                .args(["-c", "sleep 30 & wait"])
                .env("DEPLOYMENT_ID", "d-0123456789ab")
                .env("SHOAL_DEPLOYMENT_DIR", dir)
                .env("LIFECYCLE_EVENT", "BeforeInstall")
                .process_group(0)
                .spawn()
                .expect("spawn")
        };
        let (mine, theirs) = (Path::new("/a/web/d-0123456789ab"), "/b/web/d-0123456789ab");
        let mut child = spawn(&mine.display().to_string());
        // Another agent on this machine deploying the same release.
        let mut other = spawn(theirs);
        let pgid = i32::try_from(child.id().expect("pid")).expect("pid fits");
        let found = shoal_tests::poll_until(Duration::from_secs(5), || {
            find("d-0123456789ab", mine).contains(&pgid).then_some(())
        });
        assert!(found.is_some(), "the hook's group is found");
        assert_eq!(
            find("d-0123456789ab", mine).len(),
            1,
            "not the other agent's"
        );
        assert!(
            find("d-ffffffffffff", mine).is_empty(),
            "no other deployment matches"
        );
        let stopped = stop_leftovers("d-0123456789ab", mine).await;
        assert_eq!(stopped, vec![pgid]);
        let status = child.wait().await.expect("reaped");
        assert!(!status.success());
        assert!(
            find("d-0123456789ab", mine).is_empty(),
            "nothing of it is left"
        );
        assert!(
            other.try_wait().expect("status").is_none(),
            "the other agent's hook runs on"
        );
        let _ = other.kill().await;
    }
}
