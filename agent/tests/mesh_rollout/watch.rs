//! What an operator watching a rollout sees, on real agents: `shoal fleet`, `shoal status`,
//! `/v1/fleet` and the fleet page in a real headless Chromium, during a canary, while it waits
//! for `shoal promote`, and after a canary failed and halted the rollout.
//! `SHOAL_SCREENSHOTS=DIR` (an absolute path: tests run in `agent/`) keeps the page's
//! screenshots in DIR; the ones in `docs/images` come from there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use shoal_tests::browser::Browser;
use shoal_tests::poll_until;

use crate::fleet::{Fleet, Hooks};

const WAIT: Duration = Duration::from_secs(90);

/// Host `i`'s `/v1/fleet`.
/// Host `i`'s `/v1/fleet`.
pub(super) fn view(fleet: &Fleet, i: usize) -> Value {
    serde_json::from_str(&fleet.get(i, "/v1/fleet").body).unwrap_or(Value::Null)
}

/// The group `web` in a fleet view.
pub(super) fn web(view: &Value) -> Value {
    view["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "web"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Each node's row for the group in `view`, with its id.
fn rows(view: &Value) -> Vec<(String, Value)> {
    view["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| {
                    let group = n["groups"]
                        .as_array()?
                        .iter()
                        .find(|g| g["name"] == "web")?;
                    Some((n["id"].as_str()?.to_owned(), group.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls host `i`'s fleet view until `done` holds; returns the view.
pub(super) fn wait_view(
    fleet: &Fleet,
    i: usize,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll_until(WAIT, || Some(view(fleet, i)).filter(|v| done(v))).unwrap_or_else(|| {
        panic!(
            "host {i}'s fleet never showed {what}:\n{:#}\n{}",
            view(fleet, i),
            fleet.log(i)
        )
    })
}

fn text(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Where the screenshots go.
fn shots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("SHOAL_SCREENSHOTS") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (PathBuf::from(dir), None)
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            (dir.path().to_owned(), Some(dir))
        }
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is no screenshot of a page ({} bytes)",
        path.display(),
        bytes.len()
    );
}

/// Text of the page's element matching `selector` (an empty string when there is none).
fn text_of(selector: &str) -> String {
    format!(
        "(function () {{ var e = document.querySelector({selector:?}); return e ? e.innerText : \"\"; }})()"
    )
}

/// During a canary every view shows the canary, its event and for how long, and the
/// rollout's start and deadline; once the canaries are done and the policy waits for a promote,
/// every view says so with the command; after a canary fails, the halt comes with its host
/// and the failed script's last lines. The page, opened once in Chromium, follows all of it
/// by itself.
#[test]
fn an_operator_watches_a_canary_run_wait_for_a_promote_and_halt_with_its_output() {
    let fleet = Fleet::start_with_public_logs(
        3,
        "{ strategy: canary, canary: 1, max_parallel: 2, auto_promote: false, min_healthy_time: 1s }",
    );
    let (dir, _keep) = shots();
    let mut browser = Browser::start(1200, 800);
    browser.open(&format!("http://{}/", fleet.addr(2)));
    // A mark on the page's window: a reload would wipe it.
    browser.eval("window.shoalOpened = 1");

    // 1. The canary holds in BeforeInstall.
    fleet.hold(true);
    fleet.publish("v1.0.0", Hooks::HoldBeforeInstall);
    let seen = wait_view(
        &fleet,
        2,
        "a canary in BeforeInstall, the others waiting",
        |v| {
            let rows = rows(v);
            let canary = |g: &Value| {
                g["canary"] == true && g["event"] == "BeforeInstall" && g["event_since"].is_string()
            };
            let waits = |g: &Value| {
                g["phase"] == "waiting"
                    && g["waiting_for"]
                        .as_str()
                        .is_some_and(|w| w.contains("canaries"))
            };
            rows.iter().filter(|(_, g)| canary(g)).count() == 1
                && rows.iter().filter(|(_, g)| waits(g)).count() == 2
        },
    );
    let (canary, _) = rows(&seen)
        .into_iter()
        .find(|(_, g)| g["canary"] == true)
        .unwrap();
    // Every host shows it: the canary's own view, and the others' through gossip.
    for i in 0..fleet.len() {
        wait_view(&fleet, i, "the canary's event", |v| {
            rows(v).iter().any(|(id, g)| {
                *id == canary && g["canary"] == true && g["event"] == "BeforeInstall"
            }) && web(v)["started"].is_string()
        });
    }
    let group = web(&seen);
    assert_eq!(group["running"], 1, "{group}");
    assert!(group["started"].is_string(), "{group}");
    assert!(
        group["deadline"].is_string(),
        "a rollout that goes on has a deadline: {group}"
    );
    for (id, g) in rows(&seen).iter().filter(|(id, _)| *id != canary) {
        assert_eq!(g["target"], "v1.0.0", "{id} moves to v1.0.0: {g}");
        assert_eq!(g["canary"], Value::Null, "{id} is no canary: {g}");
    }
    let cli = text(&fleet.shoal(2, &["fleet"]));
    assert!(
        cli.lines().any(|l| l.starts_with(&canary)
            && l.contains("running BeforeInstall")
            && l.contains("canary")),
        "{cli}"
    );
    assert!(cli.contains("0/3 done, 1 running; started "), "{cli}");
    let own = text(&fleet.shoal(fleet.index_of(&canary), &["status"]));
    assert!(
        own.contains("deploying (BeforeInstall, ") && own.contains("running, canary, turn 1 of 3"),
        "{own}"
    );
    // The page, never reloaded: the canary's row shows its event, and the time ticks.
    let cell = format!(
        "(function () {{ var rows = document.querySelectorAll('#fleet tbody tr'); \
           for (var i = 0; i < rows.length; i++) {{ \
             if (rows[i].cells[0].innerText.indexOf({canary:?}) === 0) return rows[i].cells[2].innerText; }} \
           return ''; }})()"
    );
    let shown = browser.wait_for(
        WAIT,
        "the canary in BeforeInstall",
        &format!("(function () {{ var t = {cell}; return /running BeforeInstall \\d+s canary/.test(t) ? t : ''; }})()"),
    );
    let first = shown.as_str().unwrap_or_default().to_owned();
    browser.wait_for(
        Duration::from_secs(10),
        "the event's time moving on",
        &format!("{cell} !== {first:?} && /BeforeInstall/.test({cell})"),
    );
    assert_eq!(browser.eval("window.shoalOpened"), 1, "the page reloaded");
    assert!(
        browser
            .eval(&text_of("#fleet .group"))
            .as_str()
            .is_some_and(|t| t.contains("0/3 done, 1 running") && t.contains("deadline in")),
        "{}",
        browser.eval(&text_of("#fleet .group"))
    );
    browser.screenshot(&dir.join("fleet-page-canary.png"));

    // 2. The canary is done; the rest wait for `shoal promote`.
    fleet.hold(false);
    for i in 0..fleet.len() {
        wait_view(&fleet, i, "a promote pending", |v| {
            web(v)["promote_pending"] == true
        });
    }
    let seen = view(&fleet, 2);
    assert!(
        web(&seen)["deadline"].is_null(),
        "waiting on a person is no deadline: {seen}"
    );
    let cli = text(&fleet.shoal(2, &["fleet"]));
    assert!(cli.contains("waiting for `shoal promote web`"), "{cli}");
    let waiting = (0..fleet.len()).find(|i| fleet.id(*i) != canary).unwrap();
    let own = text(&fleet.shoal(waiting, &["status"]));
    assert!(
        own.contains("canaries healthy: waiting for `shoal promote web`"),
        "{own}"
    );
    browser.wait_for(
        WAIT,
        "the promote banner",
        &format!(
            "{}.indexOf('shoal promote web') >= 0",
            text_of("#fleet .promote")
        ),
    );
    assert_eq!(browser.eval("window.shoalOpened"), 1, "the page reloaded");
    browser.screenshot(&dir.join("fleet-page-promote.png"));

    // 3. Promoted, the rollout completes; then the next release's canary fails.
    let promote = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["promote", "web", "--config"])
        .arg(fleet.config(waiting))
        .env("SUDO_USER", "alice")
        .output()
        .unwrap();
    text(&promote);
    fleet.wait_all_on("v1.0.0");
    let seen = wait_view(&fleet, 2, "the rollout finished", |v| {
        web(v)["finished"].is_string()
    });
    assert_eq!(web(&seen)["done"], 3, "{seen}");
    // Every host's history has it completed, with how long it took.
    for i in 0..fleet.len() {
        poll_until(WAIT, || {
            let out = fleet.shoal(i, &["history", "web", "--json"]);
            let history: Value = serde_json::from_slice(&out.stdout).ok()?;
            let entry = &history[0]["entries"][0];
            (entry["revision"] == "v1.0.0"
                && entry["result"] == "completed"
                && entry["started"].is_string()
                && entry["finished"].is_string())
            .then_some(())
        })
        .unwrap_or_else(|| {
            let out = fleet.shoal(i, &["history", "web", "--json"]);
            panic!(
                "host {i}'s history: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    }
    fleet.publish("v2.0.0", Hooks::FailValidate);
    let failed = |v: &Value| {
        web(v)["halted"]["output"].as_array().is_some_and(|o| {
            o.iter().any(|l| {
                l.as_str()
                    .is_some_and(|l| l.contains("service answers 500"))
            })
        })
    };
    for i in 0..fleet.len() {
        wait_view(&fleet, i, "the halt with the script's output", failed);
    }
    let seen = view(&fleet, 2);
    let halt = &web(&seen)["halted"];
    let failed = halt["host"].as_str().unwrap().to_owned();
    assert!(halt["at"].is_string(), "{halt}");
    assert!(
        halt["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ValidateService")),
        "{halt}"
    );
    let cli = text(&fleet.shoal(2, &["fleet"]));
    assert!(cli.contains("  HALTED by "), "{cli}");
    assert!(
        cli.lines()
            .any(|l| l.starts_with("  | ") && l.contains("service answers 500")),
        "{cli}"
    );
    let banner = browser.wait_for(
        WAIT,
        "the halt with the failed script's output",
        &format!(
            "(function () {{ var t = {}; return t.indexOf('HALTED by') >= 0 && t.indexOf('service answers 500') >= 0 ? t : ''; }})()",
            text_of("#fleet .halt")
        ),
    );
    assert!(
        banner
            .as_str()
            .is_some_and(|b| b.contains("[ValidateService]")),
        "{banner}"
    );
    assert_eq!(browser.eval("window.shoalOpened"), 1, "the page reloaded");
    browser.screenshot(&dir.join("fleet-page-halted.png"));

    // Every host's history: v2.0.0 halted by its canary, v1.0.0 completed after alice's
    // promote on the host she ran it on; each signed by the release key.
    let promoter = format!("promoted by alice@{}", fleet.id(waiting));
    for i in 0..fleet.len() {
        let shown = poll_until(WAIT, || {
            let out = fleet.shoal(i, &["history", "web"]);
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.success()
                && said.contains(&format!("{failed} failed: "))
                && said.contains(&promoter))
            .then_some(said)
        })
        .unwrap_or_else(|| {
            let out = fleet.shoal(i, &["history", "web"]);
            panic!(
                "host {i}'s history: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let rows: Vec<&str> = shown.lines().filter(|l| l.starts_with("  v")).collect();
        assert_eq!(rows.len(), 2, "{shown}");
        assert!(rows[0].starts_with("  v2.0.0    halted"), "{shown}");
        assert!(rows[1].starts_with("  v1.0.0    completed"), "{shown}");
        assert!(
            !rows[1].contains(" -  "),
            "it says how long it took: {shown}"
        );
        assert!(
            rows.iter().all(|r| !r.ends_with(" -")),
            "each names its signer: {shown}"
        );
    }
    browser.wait_for(
        WAIT,
        "the history",
        &format!(
            "{}.indexOf({promoter:?}) >= 0",
            text_of("#fleet table:last-of-type")
        ),
    );
    for name in [
        "fleet-page-canary.png",
        "fleet-page-promote.png",
        "fleet-page-halted.png",
    ] {
        assert_png(&dir.join(name));
    }
}
