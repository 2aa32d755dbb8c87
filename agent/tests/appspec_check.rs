//! `shoal appspec check` on the shared corpus and the rule fixtures: the exit code a user sees
//! (0 accepted, 2 rejected), one clear sentence on stderr, and never a panic.

mod common;

use common::{DEPLOYMENT_EVENTS, assert_exit, deploy, shoal, stderr, stdout};

#[test]
fn the_corpus_gets_the_reference_outcomes_through_the_command() {
    let Some(dir) = shoal_tests::appspec_corpus() else {
        return;
    };
    let mut wrong = Vec::new();
    for (file, outcome) in shoal_tests::appspec_corpus_expectations(&dir) {
        let path = dir.join(&file);
        let out = shoal(&["appspec", "check", path.to_str().expect("utf-8")]);
        let code = out.status.code();
        let ok = match outcome.as_str() {
            // Accepted by the reference agent's parser, then refused by its Install step.
            "ACCEPT" if has_hooks_a_deployment_refuses(&path) => {
                code == Some(2)
                    && stderr(&out).lines().count() == 1
                    && stderr(&out).contains("are not lifecycle events of an in-place deployment")
            }
            "ACCEPT" => code == Some(0) && stdout(&out).trim() == "ok",
            "REJECT" => code == Some(2) && stderr(&out).lines().count() == 1,
            _ => matches!(code, Some(0) | Some(2)),
        };
        if !ok {
            wrong.push(format!(
                "{file}: expected {outcome}, exit {code:?}: {}",
                stderr(&out)
            ));
        }
        if code == Some(2) {
            let err = stderr(&out);
            assert!(
                err.starts_with(&format!("error: {}: ", path.display())),
                "names the file: {err}"
            );
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// Whether the AppSpec at `path` parses and has a hook for an event outside
/// [`DEPLOYMENT_EVENTS`].
fn has_hooks_a_deployment_refuses(path: &std::path::Path) -> bool {
    let source = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
    shoal_shared::appspec::parse(&source).is_ok_and(|parsed| {
        parsed
            .spec
            .hooks
            .iter()
            .any(|h| !DEPLOYMENT_EVENTS.contains(&h.event.as_str()))
    })
}

/// A hook a deployment refuses (a misspelt event) fails the check too, with exit 2 and the
/// sentence the deployment stops with, so a CI gate on the check catches it before a canary.
#[test]
fn hooks_a_deployment_refuses_fail_the_check_in_the_deployment_s_words() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(bundle.join("scripts")).expect("mkdir");
    std::fs::write(bundle.join("scripts/start.sh"), "#!/bin/sh\ntrue\n").expect("script");
    let appspec = bundle.join("appspec.yml");
    std::fs::write(
        &appspec,
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStrat:\n    - location: scripts/start.sh\n",
    )
    .expect("appspec");
    let sentence = "hooks for ApplicationStrat are not lifecycle events of an in-place deployment";

    let check = shoal(&["appspec", "check", appspec.to_str().expect("utf-8")]);
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert_eq!(stdout(&check), "");
    let said = stderr(&check);
    assert_eq!(said.lines().count(), 1, "one sentence: {said}");
    assert!(
        said.starts_with(&format!("error: {}: {sentence}", appspec.display())),
        "{said}"
    );

    let deploy = deploy(&bundle, &tmp.path().join("root"), "g", "r1", &[]);
    assert_ne!(deploy.status.code(), Some(0));
    let check_words = said.split_once("appspec.yml: ").expect("file named").1;
    assert!(
        stderr(&deploy).contains(check_words.trim_end()),
        "the deployment says: {}",
        stderr(&deploy)
    );
}

#[test]
fn warnings_go_to_stderr_and_the_verdict_to_stdout() {
    let dir = shoal_tests::fixture("appspec");
    let out = shoal(&[
        "appspec",
        "check",
        dir.join("mode-unquoted-leading-zero.yml")
            .to_str()
            .expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "ok\n");
    assert!(stderr(&out).contains("warning: "), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 9: permissions[0].mode"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_file_and_bad_usage_exit_2() {
    let out = shoal(&["appspec", "check", "/nonexistent/appspec.yml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/appspec.yml"),
        "{}",
        stderr(&out)
    );
    let out = shoal(&["deploy"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --bundle is a usage error"
    );
    let out = shoal(&["deploy", "--bundle", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn events_lets_the_check_accept_hooks_for_the_custom_events_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("appspec.yml");
    std::fs::write(
        &file,
        "version: 0.0\nos: linux\nhooks:\n  Warmup:\n    - location: w.sh\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8");
    let refused = shoal(&["appspec", "check", path]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("hooks for Warmup"),
        "{}",
        stderr(&refused)
    );
    let accepted = shoal(&[
        "appspec",
        "check",
        path,
        "--events",
        "ApplicationStop,Warmup",
    ]);
    assert_exit(&accepted, 0);
    assert_eq!(stdout(&accepted).trim(), "ok");
    assert!(stderr(&accepted).is_empty(), "{}", stderr(&accepted));
    let bad = shoal(&["appspec", "check", path, "--events", "AllowTraffic"]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("`AllowTraffic`"), "{}", stderr(&bad));
}
