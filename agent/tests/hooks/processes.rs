//! Timeouts, process groups, background children and abandoned runs.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use shoal_agent::execute::hooks::{self, ErrorCode, ScriptResult};
use tokio::time::{Instant, sleep};

use super::helpers::*;

#[tokio::test]
async fn a_timeout_kills_the_script_and_its_grandchildren() {
    let deployment = Deployment::new();
    let (script_pid, grandchild_pid) = (deployment.file("script.pid"), deployment.file("gc.pid"));
    let mut script = deployment.script(
        "scripts/hang.sh",
        &format!(
            "#!/bin/sh\n\
             echo $$ > {}\n\
             sleep 1000 &\n\
             echo $! > {}\n\
             echo waiting\n\
             sleep 1000\n",
            script_pid.display(),
            grandchild_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(1);

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    let timed_out = ScriptResult::TimedOut {
        after: Duration::from_secs(1),
    };
    assert_eq!(outcome.result, timed_out);
    assert_eq!(outcome.result.code(), ErrorCode::ScriptTimedOut);
    assert!(outcome.duration >= Duration::from_secs(1), "{outcome:?}");
    assert!(
        outcome.duration < Duration::from_secs(5),
        "SIGTERM was enough: {outcome:?}"
    );
    for pid in [read_pid(&script_pid), read_pid(&grandchild_pid)] {
        assert!(
            gone_within(pid, Duration::from_secs(5)).await,
            "{pid} survived"
        );
    }
    assert_eq!(deployment.texts("scripts/hang.sh", "stdout"), ["waiting"]);
    let shoal = deployment.texts("scripts/hang.sh", "shoal");
    assert!(
        shoal
            .iter()
            .any(|line| line.starts_with("script timed out after 1s")),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_timeout_is_recorded_without_waiting_on_output_a_process_outside_the_group_holds() {
    let deployment = Deployment::new();
    let daemon_pid = deployment.file("daemon.pid");
    let mut script = deployment.script(
        "scripts/hang.sh",
        &format!(
            "#!/bin/sh\n\
             setsid sleep 1000 &\n\
             echo $! > {}\n\
             echo waiting\n\
             sleep 1000\n",
            daemon_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(1);
    let mut run = deployment.run(&script, &[]);
    // Were it waited for after a timeout, this grace would hold the record up for a minute.
    run.output_grace = Duration::from_secs(60);
    let started = Instant::now();

    let outcome = run_to_end(run).await.expect("ran");

    let waited = started.elapsed();
    let daemon = read_pid(&daemon_pid);
    kill(daemon, Signal::SIGKILL).expect("kill the daemon in its own session");
    assert!(
        matches!(outcome.result, ScriptResult::TimedOut { .. }),
        "{outcome:?}"
    );
    assert!(
        waited < Duration::from_secs(30),
        "recorded after {waited:?}"
    );
    assert!(outcome.output_left_open, "{outcome:?}");
    assert_eq!(deployment.texts("scripts/hang.sh", "stdout"), ["waiting"]);
}

#[tokio::test]
async fn a_timed_out_group_left_with_only_a_zombie_is_over_without_sigkill() {
    let deployment = Deployment::new();
    let keeper_pid = deployment.file("keeper.pid");
    // The keeper forks a child that exits at once, then moves to a group of its own and never
    // reaps it: a zombie stays in the script's group for as long as the keeper lives.
    let keeper = format!(
        "import os, time\n\
         if os.fork() == 0:\n    os._exit(0)\n\
         os.setpgid(0, 0)\n\
         open('{}', 'w').write(str(os.getpid()))\n\
         time.sleep(1000)\n",
        keeper_pid.display()
    );
    let mut script = deployment.script(
        "scripts/hang.sh",
        &format!(
            "#!/bin/sh\npython3 -c \"{keeper}\" &\nwhile [ ! -s {} ]; do sleep 0.05; done\necho waiting\nsleep 1000\n",
            keeper_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(2);
    let mut run = deployment.run(&script, &[]);
    run.kill_grace = Duration::from_secs(60);
    let started = Instant::now();

    let outcome = run_to_end(run).await.expect("ran");

    let waited = started.elapsed();
    kill(read_pid(&keeper_pid), Signal::SIGKILL).expect("kill the keeper");
    assert!(
        matches!(outcome.result, ScriptResult::TimedOut { .. }),
        "{outcome:?}"
    );
    assert_eq!(deployment.texts("scripts/hang.sh", "stdout"), ["waiting"]);
    let shoal = deployment.texts("scripts/hang.sh", "shoal");
    assert!(
        !shoal.iter().any(|line| line.contains("sending SIGKILL")),
        "a zombie is not a running process: {shoal:?}"
    );
    assert!(
        waited < Duration::from_secs(30),
        "recorded after {waited:?}"
    );
}

#[tokio::test]
async fn a_script_ignoring_sigterm_is_killed_after_the_grace() {
    let deployment = Deployment::new();
    let (script_pid, grandchild_pid) = (deployment.file("script.pid"), deployment.file("gc.pid"));
    let mut script = deployment.script(
        "scripts/stubborn.sh",
        &format!(
            "#!/bin/sh\n\
             trap '' TERM\n\
             echo $$ > {}\n\
             sh -c \"trap '' TERM; sleep 1000\" &\n\
             echo $! > {}\n\
             while :; do sleep 1; done\n",
            script_pid.display(),
            grandchild_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(1);
    let mut run = deployment.run(&script, &[]);
    run.kill_grace = Duration::from_millis(500);

    let outcome = run_to_end(run).await.expect("ran");

    assert!(
        matches!(outcome.result, ScriptResult::TimedOut { .. }),
        "{outcome:?}"
    );
    assert!(
        outcome.duration >= Duration::from_millis(1500),
        "{outcome:?}"
    );
    assert!(outcome.duration < Duration::from_secs(6), "{outcome:?}");
    for pid in [read_pid(&script_pid), read_pid(&grandchild_pid)] {
        assert!(
            gone_within(pid, Duration::from_secs(5)).await,
            "{pid} survived"
        );
    }
    let shoal = deployment.texts("scripts/stubborn.sh", "shoal");
    assert!(
        shoal.iter().any(|line| line.contains("sending SIGKILL")),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn a_background_child_holding_stdout_does_not_hang_the_deployment() {
    let deployment = Deployment::new();
    let daemon_pid = deployment.file("daemon.pid");
    let mut script = deployment.script(
        "scripts/start.sh",
        &format!(
            "#!/bin/sh\nsleep 30 &\necho $! > {}\necho started\nexit 0\n",
            daemon_pid.display()
        ),
    );
    script.timeout = Duration::from_secs(60);
    let started = Instant::now();

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert!(started.elapsed() < Duration::from_secs(10), "{outcome:?}");
    assert_succeeded(&outcome);
    assert!(outcome.output_left_open);
    assert_eq!(outcome.warnings.len(), 1);
    assert!(
        outcome.warnings[0].contains("> /dev/null 2>&1 &"),
        "{outcome:?}"
    );
    let shoal = deployment.texts("scripts/start.sh", "shoal");
    assert!(shoal.contains(&outcome.warnings[0]), "{shoal:?}");
    assert_eq!(deployment.texts("scripts/start.sh", "stdout"), ["started"]);
    let daemon = read_pid(&daemon_pid);
    assert!(is_alive(daemon), "the daemon the script started was killed");
    kill(daemon, Signal::SIGKILL).expect("kill the leftover sleep");
}

#[tokio::test]
async fn a_daemon_writing_after_the_grace_is_not_killed_by_sigpipe() {
    let deployment = Deployment::new();
    let (daemon_pid, wrote) = (deployment.file("daemon.pid"), deployment.file("wrote"));
    let script = deployment.script(
        "scripts/chatty.sh",
        &format!(
            "#!/bin/sh\n\
             sh -c 'sleep 1; for n in 1 2 3 4 5; do echo late $n; sleep 0.1; done; \
                    touch {}; exec sleep 30' &\n\
             echo $! > {}\n",
            wrote.display(),
            daemon_pid.display()
        ),
    );
    let mut run = deployment.run(&script, &[]);
    run.output_grace = Duration::from_millis(100);

    let outcome = run_to_end(run).await.expect("ran");

    assert_succeeded(&outcome);
    assert!(outcome.output_left_open);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wrote.exists() {
        assert!(
            Instant::now() < deadline,
            "the daemon never got past its write"
        );
        sleep(Duration::from_millis(20)).await;
    }
    let daemon = read_pid(&daemon_pid);
    assert!(
        is_alive(daemon),
        "writing to the abandoned stdout killed the daemon"
    );
    kill(daemon, Signal::SIGKILL).expect("kill the leftover sleep");
}

#[tokio::test]
async fn abandoning_a_run_kills_its_process_group() {
    let deployment = Deployment::new();
    let script_pid = deployment.file("script.pid");
    let script = deployment.script(
        "scripts/long.sh",
        &format!(
            "#!/bin/sh\necho $$ > {}\nsleep 1000\n",
            script_pid.display()
        ),
    );

    let run = hooks::run_script(deployment.run(&script, &[]));
    let abandoned = tokio::time::timeout(Duration::from_secs(1), run).await;

    assert!(
        abandoned.is_err(),
        "the script should still have been running"
    );
    assert!(gone_within(read_pid(&script_pid), Duration::from_secs(5)).await);
}
