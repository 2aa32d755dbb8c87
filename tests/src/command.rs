//! Runs the real tools the tests trust (git, ssh-keygen) in a clean environment, so that the
//! host's configuration, agent or `GIT_*` variables cannot change what a fixture means.

use std::path::Path;
use std::process::{Command, Output};

/// `program` with an emptied environment: `PATH` kept, `HOME` set to `home`, no global or system
/// git configuration, C locale and UTC, so output and dates read the same on every machine.
pub fn clean(program: &str, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
    cmd
}

/// Runs `cmd` to the end: whether it succeeded, and its stdout followed by its stderr.
pub fn outcome(cmd: &mut Command) -> (bool, String) {
    let out = output(cmd);
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs `cmd`, which must succeed, and returns its stdout; panics with its stderr otherwise.
pub fn stdout(cmd: &mut Command) -> String {
    let out = output(cmd);
    if !out.status.success() {
        panic!(
            "{} failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// The command line, without the environment `clean` put around it.
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}
