//! What `/proc` says of processes: their ids, process groups and whether they still run.

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

/// The ids of the processes `/proc` lists now (none when it cannot be read).
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// The process group of `pid`, unless it is gone or a zombie (dead, waiting to be reaped).
pub fn live_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    (state != "Z" && state != "X").then_some(pgrp)
}

/// Whether a process of group `pgid` still runs. Zombies do not count: the children of a
/// killed script are reparented to init, which may take seconds to reap them (1.9 s on this
/// project's VMs), and a parent outside the group may never reap its child.
pub fn group_running(pgid: i32) -> bool {
    match killpg(Pid::from_raw(pgid), None) {
        Err(Errno::ESRCH) => false,
        _ => match std::fs::metadata("/proc/self/stat") {
            Ok(_) => pids().any(|pid| live_group(pid) == Some(pgid)),
            // Without /proc, what the kernel says.
            Err(_) => true,
        },
    }
}

/// How a command that failed ended, and what it said on stderr, for the end of a sentence
/// about it: ` exited with code 3: no route to host`, ` was killed by signal 9`.
pub fn failed_command(status: std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let ended = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "failed".to_owned(),
    };
    if stderr.is_empty() {
        ended
    } else {
        format!("{ended}: {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_in_its_group_and_a_reaped_child_does_not() {
        let me = std::process::id();
        let group = live_group(me).expect("this process runs");
        assert!(group_running(group));
        assert!(pids().any(|pid| pid == me));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reaped");
        assert_eq!(live_group(pid), None);
    }
}
