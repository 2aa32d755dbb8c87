//! `shoal appspec check` on the shared corpus and the rule fixtures: the exit code a user sees
//! (0 accepted, 2 rejected), one clear sentence on stderr, and never a panic.

mod common;

use common::{shoal, stderr, stdout};

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
