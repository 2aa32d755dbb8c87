//! Output, environment, exit codes and the script file itself.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use shoal_agent::execute::hooks::{ErrorCode, HookError, ScriptResult, ScriptRun};
use shoal_agent::execute::scripts_log::{self, ScriptsLog};
use shoal_shared::appspec::Script;

use super::helpers::*;

#[tokio::test]
async fn stdout_and_stderr_lines_land_in_scripts_log_tagged_by_stream() {
    let deployment = Deployment::new();
    let script = deployment.script(
        "scripts/output.sh",
        "#!/bin/sh\n\
         echo 'first out'\n\
         echo 'first err' >&2\n\
         echo 'second out'\n\
         printf 'bad \\377 byte\\n'\n\
         head -c 70000 /dev/zero | tr '\\0' a\n\
         echo\n\
         printf 'no newline' >&2\n",
    );

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let stdout = deployment.texts("scripts/output.sh", "stdout");
    assert_eq!(
        stdout[..3],
        ["first out", "second out", "bad \u{fffd} byte"]
    );
    let pieces: Vec<usize> = stdout[3..].iter().map(String::len).collect();
    assert_eq!(
        pieces,
        [65_536, 70_000 - 65_536],
        "a long line is split, not cut"
    );
    assert!(
        stdout[3..]
            .iter()
            .all(|piece| piece.bytes().all(|b| b == b'a'))
    );
    assert_eq!(
        deployment.texts("scripts/output.sh", "stderr"),
        ["first err", "no newline"]
    );
    let shoal = deployment.texts("scripts/output.sh", "shoal");
    assert!(shoal[0].starts_with("script started: "), "{shoal:?}");
    assert!(
        shoal[0].ends_with("deployment-archive/scripts/output.sh"),
        "{shoal:?}"
    );
    assert_eq!(
        shoal.last().map(String::as_str),
        Some("script exited with code 0")
    );

    let tail = scripts_log::read_tail(deployment.log.path(), 1).expect("tail");
    assert!(
        tail[0].ends_with("[shoal] script exited with code 0"),
        "{tail:?}"
    );
}

/// A script without a `#!` line runs with /bin/sh, as the CodeDeploy agent (through execvp)
/// runs it; it gets its path as `$0` and the deployment's environment.
#[tokio::test]
async fn a_script_without_a_shebang_line_runs_with_bin_sh() {
    let deployment = Deployment::new();
    let script = deployment.script(
        "scripts/plain.sh",
        "# no interpreter line\n\
         echo \"ran as $0 in $DEPLOYMENT_GROUP_NAME\"\n",
    );
    let env = env(&[("DEPLOYMENT_GROUP_NAME", "web")]);

    let outcome = run_to_end(deployment.run(&script, &env))
        .await
        .expect("ran");

    assert_succeeded(&outcome);
    let path = deployment.archive.join("scripts/plain.sh");
    assert_eq!(
        deployment.texts("scripts/plain.sh", "stdout"),
        [format!("ran as {} in web", path.display())]
    );
    let shoal = deployment.texts("scripts/plain.sh", "shoal");
    assert!(
        shoal.iter().any(|t| t
            == "the script has no #! line: it runs with /bin/sh, as execvp(3) runs such scripts"),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_script_printing_without_end_keeps_its_start_and_end_within_the_cap() {
    let deployment = Deployment::new();
    let cap = scripts_log::MAX_LOG_BYTES;
    // 1.5 × the cap in lines of 1,000 bytes, between a first and a last line.
    let script = deployment.script(
        "scripts/chatty.sh",
        &format!(
            "#!/bin/sh\n\
             echo first\n\
             head -c {} /dev/zero | tr '\\0' x | fold -w 1000\n\
             echo\n\
             echo last\n",
            cap * 3 / 2
        ),
    );

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    let size = fs::metadata(deployment.log.path()).expect("stat").len();
    assert!(
        size <= cap + scripts_log::HELD_BYTES as u64 + 4096,
        "the log grew to {size} bytes, past its cap of {cap}"
    );
    let stdout = deployment.texts("scripts/chatty.sh", "stdout");
    assert_eq!(stdout.first().map(String::as_str), Some("first"));
    assert_eq!(stdout.last().map(String::as_str), Some("last"));
    let shoal = deployment.texts("scripts/chatty.sh", "shoal");
    let notice = shoal
        .iter()
        .find(|text| text.starts_with("this deployment's log passed its 64 MiB cap: "))
        .unwrap_or_else(|| panic!("no line says what was left out: {shoal:?}"));
    let left_out: usize = notice
        .split_once(": ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {notice:?}"));
    let printed = 2 + (cap * 3 / 2).div_ceil(1000) as usize;
    assert_eq!(
        left_out + stdout.len(),
        printed,
        "every line is either kept or counted as left out"
    );
    assert_eq!(
        shoal.last().map(String::as_str),
        Some("script exited with code 0")
    );
}

#[tokio::test]
async fn a_script_sees_the_extra_env_the_agents_env_and_cwd_and_an_empty_stdin() {
    let deployment = Deployment::new();
    let script = deployment.script(
        "scripts/env.sh",
        "#!/bin/sh\n\
         echo \"event=$LIFECYCLE_EVENT\"\n\
         echo \"value=$SHOAL_TEST_VALUE\"\n\
         echo \"path=$PATH\"\n\
         echo \"cwd=$(pwd)\"\n\
         if read line; then echo \"stdin=$line\"; else echo 'stdin=eof'; fi\n",
    );
    let extra = env(&[
        ("LIFECYCLE_EVENT", EVENT),
        ("SHOAL_TEST_VALUE", "two words"),
    ]);

    let outcome = run_to_end(deployment.run(&script, &extra))
        .await
        .expect("ran");

    assert_succeeded(&outcome);
    let agent_path = std::env::var("PATH").expect("the test runs with a PATH");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        deployment.texts("scripts/env.sh", "stdout"),
        [
            format!("event={EVENT}"),
            "value=two words".to_string(),
            format!("path={agent_path}"),
            format!("cwd={}", cwd.display()),
            "stdin=eof".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_nonzero_exit_fails_with_that_code() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/fail.sh", "#!/bin/sh\necho bye\nexit 3\n");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let failed = ScriptResult::Failed {
        exit_code: Some(3),
        signal: None,
    };
    assert_eq!(outcome.result, failed);
    assert_eq!(outcome.result.code(), ErrorCode::ScriptFailed);
    let shoal = deployment.texts("scripts/fail.sh", "shoal");
    assert!(
        shoal.contains(&"script exited with code 3".to_string()),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn death_by_a_signal_fails_with_the_signal() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/killed.sh", "#!/bin/sh\nkill -KILL $$\n");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let failed = ScriptResult::Failed {
        exit_code: None,
        signal: Some(Signal::SIGKILL as i32),
    };
    assert_eq!(outcome.result, failed);
    let shoal = deployment.texts("scripts/killed.sh", "shoal");
    assert!(
        shoal.contains(&"script was killed by signal 9 (SIGKILL)".to_string()),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_missing_script_is_script_missing() {
    let deployment = Deployment::new();
    let script = Script {
        location: "/scripts/absent.sh".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("nothing to run");

    assert!(
        matches!(error, HookError::ScriptMissing { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), ErrorCode::ScriptMissing);
    assert!(error.to_string().contains("/scripts/absent.sh"), "{error}");
    let shoal = deployment.texts("/scripts/absent.sh", "shoal");
    assert_eq!(shoal, [format!("script not started: {error}")]);
}

#[tokio::test]
async fn a_scripts_log_that_cannot_be_written_stops_the_script_from_starting() {
    let deployment = Deployment::new();
    let mark = deployment.file("ran");
    let script = deployment.script(
        "scripts/quiet.sh",
        &format!("#!/bin/sh\ntouch {}\n", mark.display()),
    );
    let full = ScriptsLog::open("/dev/full").expect("/dev/full opens, but every write fails");
    let run = ScriptRun::new(EVENT, &script, &deployment.archive, &[], &full);

    let error = run_to_end(run).await.expect_err("nowhere to log");

    assert!(matches!(error, HookError::Log { .. }), "{error:?}");
    assert!(error.to_string().contains("/dev/full"), "{error}");
    assert!(!mark.exists(), "the script ran without a log");
}

#[tokio::test]
async fn a_non_executable_script_gets_its_execute_bits_and_runs() {
    let deployment = Deployment::new();
    let script = deployment.script("scripts/plain.sh", "#!/bin/sh\necho ran\n");
    let path = deployment.archive.join("scripts/plain.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert_eq!(deployment.texts("scripts/plain.sh", "stdout"), ["ran"]);
    let mode = fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn a_script_whose_execute_bits_cannot_be_set_is_not_executable() {
    // procfs refuses every chmod, even root's: a file that can never become executable.
    let proc_self = Path::new("/proc/self");
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = ScriptsLog::open(log_dir.path().join("scripts.log")).expect("log");
    let script = Script {
        location: "status".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(ScriptRun::new(EVENT, &script, proc_self, &[], &log))
        .await
        .expect_err("cannot run");

    assert!(
        matches!(error, HookError::ScriptNotExecutable { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), ErrorCode::ScriptNotExecutable);
}

#[tokio::test]
async fn a_location_escaping_the_archive_is_refused_and_nothing_runs() {
    let deployment = Deployment::new();
    let mark = deployment.file("escaped");
    let outside = deployment.dir.path().join("outside.sh");
    fs::write(&outside, format!("#!/bin/sh\ntouch {}\n", mark.display())).expect("write");
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = Script {
        location: "scripts/../../outside.sh".to_string(),
        timeout: Duration::from_secs(5),
        runas: None,
        sudo: false,
    };

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("refused");

    assert!(
        matches!(error, HookError::LocationEscapes { .. }),
        "{error:?}"
    );
    assert!(!mark.exists(), "the script outside the archive ran");
}
