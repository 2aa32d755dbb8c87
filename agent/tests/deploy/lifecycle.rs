//! Event order, environment, the previous revision's hooks, failures and timeouts.

use std::fs;
use std::path::Path;

use crate::common::{Bundle, DEPLOYMENT_EVENTS, assert_exit, deploy, stderr, stdout};

/// A bundle whose every hook appends `<revision> <event> <env…>` to `trace`, and which
/// installs `app/` into `dest`.
fn traced_bundle(dir: &Path, revision: &str, trace: &Path, dest: &Path) -> Bundle {
    let bundle = Bundle::new(dir);
    let mut hooks = String::new();
    for event in DEPLOYMENT_EVENTS {
        bundle.script(
            &format!("scripts/{event}.sh"),
            &format!(
                "echo \"{revision} $LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME \
                 $DEPLOYMENT_GROUP_ID $SHOAL_REVISION prev=$SHOAL_PREVIOUS_REVISION\" >> {}\necho {event} says hi",
                trace.display()
            ),
        );
        hooks.push_str(&format!(
            "  {event}:\n    - location: scripts/{event}.sh\n      timeout: 30\n"
        ));
    }
    bundle.file("app/common.txt", &format!("common {revision}\n"));
    bundle.file(&format!("app/only-{revision}.txt"), revision);
    bundle.file("app/sub/deep.txt", "deep");
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\nhooks:\n{hooks}",
        dest.display()
    ));
    bundle
}

fn trace_lines(trace: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn events_run_in_order_with_their_environment_and_the_previous_revision_stops_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, dest, trace) = (
        tmp.path().join("root"),
        tmp.path().join("srv/app"),
        tmp.path().join("trace"),
    );
    let v1 = traced_bundle(&tmp.path().join("v1"), "v1", &trace, &dest);
    let out = deploy(&v1.dir, &root, "web", "v1", &["--application", "shop"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));

    let first = trace_lines(&trace);
    let events: Vec<&str> = first.iter().map(|l| l[1].as_str()).collect();
    assert_eq!(
        events,
        [
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
            "BeforeAllowTraffic",
            "AfterAllowTraffic"
        ],
        "a first deployment has no previous revision to stop or block"
    );
    for line in &first {
        assert_eq!(line[0], "v1");
        assert!(line[2].starts_with("d-"), "DEPLOYMENT_ID {}", line[2]);
        assert_eq!(&line[3..8], ["shop", "web", "web", "v1", "prev="]);
    }
    assert_eq!(
        fs::read_to_string(dest.join("common.txt")).expect("installed"),
        "common v1\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("sub/deep.txt")).expect("installed"),
        "deep"
    );

    fs::remove_file(&trace).expect("reset trace");
    let v2 = traced_bundle(&tmp.path().join("v2"), "v2", &trace, &dest);
    let out = deploy(&v2.dir, &root, "web", "v2", &["--application", "shop"]);
    assert_exit(&out, 0);
    let second = trace_lines(&trace);
    let seen: Vec<(&str, &str)> = second
        .iter()
        .map(|l| (l[0].as_str(), l[1].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("v1", "BeforeBlockTraffic"),
            ("v1", "AfterBlockTraffic"),
            ("v1", "ApplicationStop"),
            ("v2", "BeforeInstall"),
            ("v2", "AfterInstall"),
            ("v2", "ApplicationStart"),
            ("v2", "ValidateService"),
            ("v2", "BeforeAllowTraffic"),
            ("v2", "AfterAllowTraffic"),
        ],
        "the previous revision's scripts stop and block; the new one's do the rest"
    );
    let ids: std::collections::HashSet<&str> = second.iter().map(|l| l[2].as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one DEPLOYMENT_ID for the whole second deployment, also in v1's scripts"
    );
    assert!(
        second.iter().all(|l| l[7] == "prev=v1"),
        "SHOAL_PREVIOUS_REVISION is v1: {second:?}"
    );
    assert!(
        !dest.join("only-v1.txt").exists(),
        "the previous revision's files are cleaned up"
    );
    assert_eq!(
        fs::read_to_string(dest.join("only-v2.txt")).expect("installed"),
        "v2"
    );
    assert_eq!(
        fs::read_to_string(dest.join("common.txt")).expect("installed"),
        "common v2\n"
    );

    let instructions = root.join("deployment-instructions");
    let last =
        fs::read_to_string(instructions.join("web_last_successful_install")).expect("pointer");
    assert!(
        Path::new(last.trim())
            .join("deployment-archive/appspec.yml")
            .is_file(),
        "{last}"
    );
    let cleanup = fs::read_to_string(instructions.join("web-cleanup")).expect("cleanup file");
    assert!(
        cleanup
            .lines()
            .any(|l| l == dest.join("only-v2.txt").to_str().expect("utf-8")),
        "{cleanup}"
    );
    let log =
        fs::read_to_string(Path::new(last.trim()).join("logs/scripts.log")).expect("scripts.log");
    assert!(
        log.contains("[ApplicationStop]") && log.contains("ApplicationStop says hi"),
        "{log}"
    );
    assert!(log.contains("[stdout]"), "{log}");
}

/// Hook output also goes to `<root>/deployment-logs/codedeploy-agent-deployments.log`, in the
/// CodeDeploy agent's lines: `[time] [deployment id]` then `LifecycleEvent - …`,
/// `Script - …`, `[stdout]…`, `[stderr]…`; deployments add to it.
#[test]
fn hook_output_goes_to_the_agent_wide_deployments_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.script("a.sh", "echo hello\necho oops >&2");
    bundle.script("b.sh", "echo second");
    bundle.appspec(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n    - location: b.sh\n",
    );
    let root = tmp.path().join("root");
    let out = deploy(&bundle.dir, &root, "g", "r1", &[]);
    assert_exit(&out, 0);
    let ids: Vec<String> = fs::read_dir(root.join("g"))
        .expect("group dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("d-"))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let log = root.join("deployment-logs/codedeploy-agent-deployments.log");
    let messages = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                let (stamp, rest) = line.split_once("] ").expect("a stamp");
                assert_eq!(stamp.len(), "[2026-12-07 05:41:39.123".len(), "{line}");
                rest.strip_prefix(&format!("[{id}]"))
                    .unwrap_or_else(|| panic!("no deployment id in {line}"))
                    .to_owned()
            })
            .collect()
    };
    let first = fs::read_to_string(&log).expect("the deployments log");
    let mut got = messages(&first);
    // stdout and stderr are two pipes: within a.sh their lines may come in either order.
    got[2..4].sort();
    assert_eq!(
        got,
        [
            "LifecycleEvent - AfterInstall",
            "Script - a.sh",
            "[stderr]oops",
            "[stdout]hello",
            "Script - b.sh",
            "[stdout]second",
        ]
    );
    let out = deploy(&bundle.dir, &root, "g", "r2", &[]);
    assert_exit(&out, 0);
    let both = fs::read_to_string(&log).expect("the deployments log");
    assert!(both.starts_with(&first), "appended, not replaced");
    assert_eq!(both.lines().count(), 12, "{both}");
}

/// A hook whose script is not in the bundle fails the deployment with one sentence that
/// names the script once.
#[test]
fn a_missing_script_fails_with_one_sentence_naming_it_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.appspec(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/missing.sh\n",
    );
    let out = deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("AfterInstall: script scripts/missing.sh is not in the bundle (looked for "),
        "{err}"
    );
    assert!(!err.contains("script at"), "the script named twice: {err}");
}

#[test]
fn a_failing_hook_fails_the_deployment_and_skips_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.script("fail.sh", "echo about to fail >&2\nexit 3");
    bundle.script(
        "start.sh",
        &format!("touch {}", tmp.path().join("started").display()),
    );
    bundle.appspec(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: fail.sh\n  ApplicationStart:\n    - location: start.sh\n",
    );
    let out = deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 1);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("AfterInstall") && l.ends_with("failed")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ApplicationStart") && l.ends_with("skipped")),
        "{table}"
    );
    assert!(
        stderr(&out).contains("script at fail.sh failed with exit code 3"),
        "{}",
        stderr(&out)
    );
    assert!(
        !tmp.path().join("started").exists(),
        "ApplicationStart must not run"
    );
}

#[test]
fn a_script_past_its_timeout_fails_the_deployment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.script("slow.sh", "sleep 60");
    bundle.appspec("version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: slow.sh\n      timeout: 1\n");
    let out = deploy(
        &bundle.dir,
        &tmp.path().join("root"),
        "g",
        "r1",
        &["--kill-grace", "1"],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("did not finish within its timeout of 1 s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_appspec_is_a_usage_error_and_the_running_revision_is_not_stopped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let stopped = tmp.path().join("stopped");
    let good = Bundle::new(tmp.path().join("good"));
    good.script("stop.sh", &format!("touch {}", stopped.display()));
    good.appspec("version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n");
    assert_exit(&deploy(&good.dir, &root, "g", "r1", &[]), 0);

    let bad = Bundle::new(tmp.path().join("bad"));
    bad.appspec("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 12a\n");
    let out = deploy(&bad.dir, &root, "g", "r2", &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("appspec.yml: line 5: permissions[0].mode: `12a` contains `a`"),
        "{err}"
    );
    assert!(
        !stopped.exists(),
        "ApplicationStop of the running revision must not run for a bad bundle"
    );

    let unknown = Bundle::new(tmp.path().join("unknown"));
    unknown.script("x.sh", "true");
    unknown.appspec("version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n");
    let out = deploy(&unknown.dir, &root, "g", "r3", &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("AfterInstal are not lifecycle events"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_application_stop_blocks_deploys_until_it_is_ignored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let broken = Bundle::new(tmp.path().join("v1"));
    broken.script("stop.sh", "echo typo-in-stop >&2\nexit 127");
    broken
        .appspec("version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n");
    assert_exit(&deploy(&broken.dir, &root, "g", "v1", &[]), 0);

    let fixed = Bundle::new(tmp.path().join("v2"));
    fixed.script("stop.sh", "exit 0");
    fixed.appspec("version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n");
    let out = deploy(&fixed.dir, &root, "g", "v2", &[]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("ApplicationStop") && l.ends_with("failed"))
    );

    let out = deploy(
        &fixed.dir,
        &root,
        "g",
        "v2",
        &["--ignore-application-stop-failures"],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("ApplicationStop") && l.ends_with("failed-ignored")),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("ApplicationStop failed and was ignored"),
        "{}",
        stderr(&out)
    );
    assert_exit(&deploy(&fixed.dir, &root, "g", "v3", &[]), 0);
}

#[test]
fn events_runs_the_listed_events_custom_ones_included_as_codedeploy_local_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, dest, trace) = (
        tmp.path().join("root"),
        tmp.path().join("srv/app"),
        tmp.path().join("trace"),
    );
    let v1 = traced_bundle(&tmp.path().join("v1"), "v1", &trace, &dest);
    assert_exit(&deploy(&v1.dir, &root, "web", "v1", &[]), 0);
    fs::remove_file(&trace).expect("reset the trace");

    let v2 = traced_bundle(&tmp.path().join("v2"), "v2", &trace, &dest);
    v2.script(
        "scripts/Warmup.sh",
        &format!("echo \"v2 $LIFECYCLE_EVENT\" >> {}", trace.display()),
    );
    let appspec = fs::read_to_string(v2.dir.join("appspec.yml")).expect("appspec");
    v2.appspec(&format!(
        "{appspec}  Warmup:\n    - location: scripts/Warmup.sh\n"
    ));
    let without = deploy(&v2.dir, &root, "web", "v2-refused", &[]);
    assert_exit(&without, 2);
    assert!(
        stderr(&without).contains("hooks for Warmup"),
        "{}",
        stderr(&without)
    );

    let events = ["--events", "ApplicationStop,Warmup,ApplicationStart"];
    let out = deploy(&v2.dir, &root, "web", "v2", &events);
    assert_exit(&out, 0);
    let ran: Vec<String> = trace_lines(&trace)
        .iter()
        .map(|l| format!("{} {}", l[0], l[1]))
        .collect();
    assert_eq!(
        ran,
        ["v1 ApplicationStop", "v2 Warmup", "v2 ApplicationStart"],
        "only the listed events, the previous revision's stop included"
    );
    let shown = stdout(&out);
    let table: Vec<&str> = shown
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|e| e.chars().next().is_some_and(char::is_uppercase))
        .collect();
    assert_eq!(
        table,
        [
            "DownloadBundle",
            "Install",
            "ApplicationStop",
            "Warmup",
            "ApplicationStart"
        ],
        "{}",
        stdout(&out)
    );
    assert!(dest.join("only-v2.txt").exists(), "Install ran");
    assert!(
        !stderr(&out).contains("Warmup"),
        "no warning: {}",
        stderr(&out)
    );

    let out = deploy(
        &v2.dir,
        &root,
        "web",
        "v3",
        &["--events", "ValidateService,Install"],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--events puts `ValidateService` before Install"),
        "{}",
        stderr(&out)
    );
}
