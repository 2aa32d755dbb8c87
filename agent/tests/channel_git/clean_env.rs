//! Running tools from the tests in a clean environment (the harness keeps its own helper
//! private): `PATH` kept, `HOME` a test folder, no global or system git configuration.

use std::path::Path;
use std::process::Command;

/// `program` with an emptied environment, as the harness runs git and ssh-keygen.
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

/// Runs `cmd`, which must succeed; its stdout.
pub fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
