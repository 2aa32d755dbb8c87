//! The demo's story, chapter by chapter, and the checks that decide its exit code: each one
//! reads what the agents report (`/v1/status`, `/v1/fleet`), what they recorded of each
//! deployment (`shoal-deployment.json`, with millisecond times), and what the example serves.

use std::path::Path;
use std::time::Duration;

use shoal_shared::status::{Fleet, Phase};
use tokio::time::Instant;

use super::hosts::{self, Host, MESH};
use super::watch::{self, View, Watch};
use super::workspace::{BROKEN_HEALTH, Change, Workspace};
use super::{DemoError, HOSTS, bin_dir};
use crate::execute::deployment::{DeploymentRecord, Status};
use crate::runtime::HEALTH_CHECK;

/// How long each chapter may take before the demo gives up on it.
const CHAPTER: Duration = Duration::from_secs(90);
/// The example's `max_parallel` after its canary.
const MAX_PARALLEL: usize = 2;

/// The hosts, what is drawn, and what happened so far.
pub struct Story {
    watch: Watch,
    hosts: Vec<Host>,
    facts: Vec<String>,
}

impl Story {
    pub fn new(watch: Watch) -> Story {
        Story {
            watch,
            hosts: Vec::new(),
            facts: Vec::new(),
        }
    }

    /// Runs the whole story in the workspace at `root`.
    pub async fn tell(&mut self, root: &Path) -> Result<(), DemoError> {
        self.watch.chapter(&format!(
            "Starting {HOSTS} agents on 127.0.0.1 as the mesh `{MESH}` (workspace {})",
            root.display()
        ));
        let workspace = Workspace::create(root)?;
        let bin = bin_dir(root)?;
        // The first host alone, the others joining through it; each is kept as soon as it
        // runs, so a failure or Ctrl-C stops the ones started.
        for (i, port) in hosts::free_ports(HOSTS)?.into_iter().enumerate() {
            let seed = self.hosts.first().map(|h| h.gossip);
            let id = format!("host-{}", i + 1);
            let host = Host::start(&workspace, &id, seed, &bin, port).await?;
            self.hosts.push(host);
        }
        self.mesh_formed().await?;

        self.watch
            .chapter("v1.0.0, the first release: every host installs it, the canary first");
        workspace.release("v1.0.0", Change::Original)?;
        self.all_on("v1.0.0").await?;
        self.rolled_out("v1.0.0")?;

        self.watch.chapter(
            "v2.0.0: the canary first; once it has been healthy for 2 s, the rest two at a time",
        );
        workspace.release("v2.0.0", Change::NewGreeting)?;
        self.all_on("v2.0.0").await?;
        self.rolled_out("v2.0.0")?;

        self.watch
            .chapter("v3.0.0: its health endpoint reports an error, so its ValidateService fails");
        workspace.release("v3.0.0", Change::BrokenHealth)?;
        self.halted_and_back("v3.0.0", "v2.0.0").await?;
        self.serving("v2.0.0").await
    }

    /// Every agent sees every other one alive in its fleet view.
    async fn mesh_formed(&mut self) -> Result<(), DemoError> {
        let began = Instant::now();
        let deadline = began + CHAPTER;
        loop {
            let mut everyone = true;
            for host in &self.hosts {
                let fleet: Option<Fleet> = watch::fetch(host.status, "/v1/fleet").await;
                let alive = fleet.map_or(0, |f| f.nodes.iter().filter(|n| n.alive).count());
                everyone &= alive == HOSTS;
            }
            if everyone {
                let fact = format!(
                    "the mesh formed in {:.1} s: each of the {HOSTS} agents sees all {HOSTS} alive",
                    began.elapsed().as_secs_f64()
                );
                self.watch.note(&fact);
                self.facts.push(fact);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DemoError::Unmet(format!(
                    "the {HOSTS} agents did not all see each other within {} s",
                    CHAPTER.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every host runs `revision` and is done with it.
    async fn all_on(&mut self, revision: &str) -> Result<(), DemoError> {
        let what = format!("every host on {revision}");
        let result = self
            .watch
            .until(&self.hosts, &what, CHAPTER, |views| {
                if let Some(halt) = views.iter().find_map(|v| {
                    v.group
                        .as_ref()?
                        .rollout
                        .as_ref()
                        .filter(|r| r.revision == revision)?
                        .halted
                        .clone()
                }) {
                    return Err(DemoError::Unmet(format!(
                        "the rollout of {revision} halted: {} on {}",
                        halt.reason, halt.host
                    )));
                }
                Ok(views
                    .iter()
                    .all(|v| v.current() == Some(revision) && settled(v)))
            })
            .await;
        result.map(|_| ())
    }

    /// From the hosts' records of `revision`: the canary finished before any other host
    /// started, and no more than `MAX_PARALLEL` ran at once.
    fn rolled_out(&mut self, revision: &str) -> Result<(), DemoError> {
        let mut runs: Vec<(String, u64, u64)> = Vec::new();
        let mut healthy_ms = 0;
        for host in &self.hosts {
            let record = host
                .records()
                .into_iter()
                .rfind(|r| r.revision == revision && r.reverts.is_none())
                .ok_or_else(|| {
                    DemoError::Unmet(format!("{} has no record of deploying {revision}", host.id))
                })?;
            let finished = record
                .finished_at_ms
                .filter(|_| record.status == Status::Succeeded)
                .ok_or_else(|| {
                    DemoError::Unmet(format!(
                        "{}'s deployment of {revision} did not succeed",
                        host.id
                    ))
                })?;
            if runs.is_empty() || record.started_at_ms < runs[0].1 {
                healthy_ms = record
                    .events
                    .iter()
                    .find(|e| e.name == HEALTH_CHECK)
                    .map_or(0, |e| e.duration_ms);
            }
            runs.push((host.id.clone(), record.started_at_ms, finished));
        }
        runs.sort_by_key(|&(_, started, _)| started);
        let (canary, _, canary_done) = runs[0].clone();
        let next = runs[1..].iter().map(|&(_, started, _)| started).min();
        if let Some(next) = next.filter(|&next| next < canary_done) {
            return Err(DemoError::Unmet(format!(
                "a host started {revision} {} ms before the canary {canary} had finished",
                canary_done - next
            )));
        }
        let most = most_at_once(&runs[1..]);
        if most > MAX_PARALLEL {
            return Err(DemoError::Unmet(format!(
                "{most} hosts ran {revision} at once after the canary; the policy allows {MAX_PARALLEL}"
            )));
        }
        let gap = next.map_or(0, |next| next - canary_done);
        let fact = format!(
            "{revision}: the canary {canary} went first (hooks passed, then healthy for {:.1} s); the others began {:.1} s later, at most {most} at once; all {HOSTS} succeeded",
            healthy_ms as f64 / 1000.0,
            gap as f64 / 1000.0
        );
        self.watch.note(&fact);
        self.facts.push(fact);
        Ok(())
    }

    /// The broken release halts on every host, only its canary ran it, and the canary went
    /// back to `good`.
    async fn halted_and_back(&mut self, bad: &str, good: &str) -> Result<(), DemoError> {
        let (mut first_halt, mut all_halted) = (None, None);
        let started = Instant::now();
        let result = self
            .watch
            .until(
                &self.hosts,
                &format!("the halt of {bad}"),
                CHAPTER,
                |views| {
                    let halted = |v: &View| {
                        v.group
                            .as_ref()
                            .and_then(|g| g.rollout.as_ref())
                            .is_some_and(|r| r.revision == bad && r.halted.is_some())
                    };
                    let count = views.iter().filter(|v| halted(v)).count();
                    if count > 0 && first_halt.is_none() {
                        first_halt = Some(started.elapsed());
                    }
                    if count == views.len() && all_halted.is_none() {
                        all_halted = Some(started.elapsed());
                    }
                    let back = views
                        .iter()
                        .all(|v| v.current() == Some(good) && settled(v));
                    Ok(count == views.len() && back)
                },
            )
            .await;
        let views = result?;
        let halt = views
            .iter()
            .find_map(|v| v.group.as_ref()?.rollout.as_ref()?.halted.clone())
            .ok_or_else(|| DemoError::Unmet("no host shows the halt".to_owned()))?;
        if !halt.reason.contains("ValidateService") {
            return Err(DemoError::Unmet(format!(
                "the halt does not name ValidateService: {}",
                halt.reason
            )));
        }
        let mut ran_bad = Vec::new();
        let mut said = None;
        for host in &self.hosts {
            let records = host.records();
            if let Some(failed) = records.iter().find(|r| r.revision == bad) {
                ran_bad.push(host.id.clone());
                reverted(host, &records, failed, good)?;
                said = host.last_stderr(&failed.deployment_id);
            }
        }
        if ran_bad != [halt.host.clone()] {
            return Err(DemoError::Unmet(format!(
                "{bad} should have run on its canary {} alone, but ran on: {}",
                halt.host,
                ran_bad.join(", ")
            )));
        }
        let spread = match (first_halt, all_halted) {
            (Some(first), Some(all)) if all - first < Duration::from_millis(100) => {
                "; every host showed it in the same 100 ms poll".to_owned()
            }
            (Some(first), Some(all)) => format!(
                "; every host showed it within {:.1} s",
                (all - first).as_secs_f64()
            ),
            _ => String::new(),
        };
        let said = said.map_or_else(String::new, |line| format!(" (it said: {line})"));
        for fact in [
            format!("{bad}: {}{said}", halt.reason),
            format!(
                "{bad}: {} halted the rollout for the whole group{spread}; no other host started it",
                halt.host
            ),
            format!(
                "{bad}: {} went back to {good}, its last known good revision",
                halt.host
            ),
        ] {
            self.watch.note(&fact);
            self.facts.push(fact);
        }
        Ok(())
    }

    /// Every host's hello-app answers `GET /` with the page of `revision`.
    async fn serving(&mut self, revision: &str) -> Result<(), DemoError> {
        for host in &self.hosts {
            let (_, port) = host.hello().ok_or_else(|| {
                DemoError::Unmet(format!("{}'s hello-app is not running", host.id))
            })?;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let page = watch::fetch_text(addr, "/").await.unwrap_or_default();
            if !page.contains(revision) {
                return Err(DemoError::Unmet(format!(
                    "{}'s hello-app on port {port} does not serve {revision}: {page:?}",
                    host.id
                )));
            }
        }
        let fact = format!(
            "every host's hello-app serves {revision}; the broken release answered {:?} on the canary only",
            BROKEN_HEALTH.trim()
        );
        self.watch.note(&fact);
        self.facts.push(fact);
        Ok(())
    }

    /// What happened, for the end of the demo.
    pub fn summary(&self, elapsed: f64) {
        outln!();
        outln!("What happened, in {elapsed:.1} s (each line checked against the agents):");
        for fact in &self.facts {
            outln!("  ok  {fact}");
        }
    }

    /// Leaves the agents running and prints how to look at them, and how to stop them.
    pub fn keep(&mut self, root: &Path) {
        let exe = std::env::current_exe()
            .map_or_else(|_| "shoal".to_owned(), |p| p.display().to_string());
        outln!();
        outln!("The {HOSTS} agents are still running. Look around:");
        for host in &self.hosts {
            outln!(
                "  {}: {exe} fleet --addr {}  |  fleet page http://{}/  |  hello-app http://127.0.0.1:{}/",
                host.id,
                host.status,
                host.status,
                host.hello().map_or(0, |(_, port)| port)
            );
        }
        let first = &self.hosts[0];
        let config = first.config.display();
        outln!("  {exe} status --addr {}", first.status);
        outln!(
            "  {exe} logs --addr {} <deployment-id>      # a deployment's hook output",
            first.status
        );
        outln!(
            "  {exe} resume web --config {config}   # lift the halt: v3.0.0 goes on, and fails again"
        );
        outln!(
            "  Each host's config, data and log: {}/hosts/<host>/",
            root.display()
        );
        let pids: Vec<String> = self.hosts.iter().map(|h| h.pid().to_string()).collect();
        let script = root.join("stop.sh");
        let text = stop_script(&pids.join(" "), root);
        match std::fs::write(&script, text) {
            Ok(()) => outln!("Stop it all with: sh {}", script.display()),
            Err(e) => outln!("(cannot write {}: {e})", script.display()),
        }
        // Dropping a `Child` leaves the process running.
        self.hosts.clear();
    }

    /// Stops every agent and hello-app.
    pub async fn stop(&mut self) {
        for host in &self.hosts {
            host.terminate();
        }
        for host in self.hosts.drain(..) {
            host.stop().await;
        }
    }
}

/// A script that stops the agents `pids`, then the hello-apps they started (read at that
/// moment: a resumed rollout may have started new ones), and removes the workspace `root`.
fn stop_script(pids: &str, root: &Path) -> String {
    let root = root.display();
    format!(
        "#!/bin/sh\n\
         # Stops what `shoal demo --keep` left running, and removes its workspace.\n\
         kill {pids} 2>/dev/null\n\
         # Wait up to 15 s for them to end (a process that exited but is not reaped is gone).\n\
         for _ in $(seq 1 150); do\n\
         \x20 alive=0\n\
         \x20 for p in {pids}; do\n\
         \x20   kill -0 \"$p\" 2>/dev/null && ! grep -q '^State:.*Z' \"/proc/$p/status\" 2>/dev/null && alive=1\n\
         \x20 done\n\
         \x20 [ \"$alive\" = 0 ] && break\n\
         \x20 sleep 0.1\n\
         done\n\
         for pid in '{root}'/hosts/*/root/run/hello-app/pid; do\n\
         \x20 [ -s \"$pid\" ] && kill \"$(cat \"$pid\")\" 2>/dev/null\n\
         done\n\
         rm -rf '{root}'\n"
    )
}

/// Whether a host is at rest: not deploying, checking health or going back.
fn settled(view: &View) -> bool {
    view.group.as_ref().is_some_and(|g| {
        !matches!(
            g.phase,
            Phase::Deploying | Phase::CheckingHealth | Phase::Reverting | Phase::Starting
        )
    })
}

/// The canary's failed run of the bad release, then its revert to `good`, succeeded.
fn reverted(
    host: &Host,
    records: &[DeploymentRecord],
    failed: &DeploymentRecord,
    good: &str,
) -> Result<(), DemoError> {
    if failed.status != Status::Failed {
        return Err(DemoError::Unmet(format!(
            "{}'s run of {} did not fail as it should",
            host.id, failed.revision
        )));
    }
    let back = records
        .iter()
        .find(|r| r.reverts.as_deref() == Some(failed.deployment_id.as_str()));
    match back {
        Some(r) if r.revision == good && r.status == Status::Succeeded => Ok(()),
        Some(r) => Err(DemoError::Unmet(format!(
            "{}'s revert went to {} and ended {:?}",
            host.id, r.revision, r.status
        ))),
        None => Err(DemoError::Unmet(format!(
            "{} did not go back to {good}",
            host.id
        ))),
    }
}

/// The most runs (`(host, started, finished)`) in progress at one moment.
fn most_at_once(runs: &[(String, u64, u64)]) -> usize {
    let mut edges: Vec<(u64, i32)> = runs
        .iter()
        .flat_map(|&(_, started, finished)| [(started, 1), (finished, -1)])
        .collect();
    // An end and a start at the same millisecond do not overlap.
    edges.sort_by_key(|&(at, step)| (at, step));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_that_touch_do_not_overlap() {
        let run = |s, f| ("h".to_owned(), s, f);
        assert_eq!(most_at_once(&[]), 0);
        assert_eq!(most_at_once(&[run(0, 10), run(10, 20)]), 1);
        assert_eq!(most_at_once(&[run(0, 10), run(5, 20), run(6, 7)]), 3);
        assert_eq!(most_at_once(&[run(0, 10), run(5, 20), run(12, 30)]), 2);
    }
}
