//! The git channel against real remote servers on 127.0.0.1 ([`servers`]): a second sshd,
//! nginx with `git http-backend` over TLS and plain http, a server that never answers, and a
//! CONNECT proxy. `shoal verify git` and `shoal agent` run as they would on a host, each in a
//! mount namespace of its own where a home made by the test is `/root` (so its `~/.ssh/config`
//! and `known_hosts` are the ones OpenSSH reads) and, where a test needs it, a copy of
//! `/etc/ssh` is `/etc/ssh`: the machine's own files are never touched.

mod agent;
mod certs;
mod https;
mod idle;
mod proxy;
mod servers;
mod ssh;
mod timeouts;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::fixture::Scene;
use servers::Servers;

/// The tag every served repository carries, signed by the scene's trusted key.
pub const TAG: &str = "v1.0.0";

/// A scene whose repository has the signed [`TAG`], served under a fresh name; `None` (after
/// a loud line) where the servers cannot run.
pub fn served(what: &str) -> Option<(Scene, &'static Servers, String)> {
    let servers = servers::servers()?;
    let scene = Scene::new();
    scene.repo.tag_signed(TAG, "release", &scene.key, None);
    let name = servers.serve(scene.repo.dir(), what);
    Some((scene, servers, name))
}

/// A home for one test's processes: `~/.ssh` and, when asked for, a copy of `/etc/ssh`.
pub struct Home {
    dir: TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let home = Home { dir };
        home.mkdir(".ssh");
        home
    }

    /// `path` under the home (what the processes see as `/root/<path>`).
    pub fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join("home").join(path)
    }

    /// Writes `text` to `~/<path>` (0600, as ssh wants its files).
    pub fn write(&self, path: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let file = self.path(path);
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn mkdir(&self, path: &str) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(self.path(path))
            .unwrap();
    }

    /// A copy of the machine's ssh client config with `ssh_known_hosts` added, seen by this
    /// home's processes as `/etc/ssh`.
    pub fn system_known_hosts(&self, text: &str) {
        let etc = self.dir.path().join("etc-ssh");
        std::fs::create_dir_all(etc.join("ssh_config.d")).unwrap();
        if Path::new("/etc/ssh/ssh_config").exists() {
            std::fs::copy("/etc/ssh/ssh_config", etc.join("ssh_config")).unwrap();
        }
        std::fs::write(etc.join("ssh_known_hosts"), text).unwrap();
    }

    /// `program` run with this home as `/root` (and its `/etc/ssh`, if made) in a private
    /// mount namespace, with a clean environment: `PATH`, `HOME=/root`, C locale, and `env`.
    pub fn command(&self, program: &Path, env: &[(&str, &str)]) -> Command {
        let etc = self.dir.path().join("etc-ssh");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$0\" /root && { [ ! -d \"$1\" ] || mount --bind \"$1\" /etc/ssh; } \
                 && shift && exec \"$@\"",
            )
            .arg(self.path(""))
            .arg(etc)
            .arg(program)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/root")
            .env("LC_ALL", "C")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command
    }
}

/// `shoal verify git` of [`TAG`] at `url` with the scene's signers and `extra` flags, run in
/// `home`: whether it verified, and everything it said.
pub fn verify(
    home: &Home,
    scene: &Scene,
    url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (bool, String) {
    let out = home
        .command(Path::new(env!("CARGO_BIN_EXE_shoal")), env)
        .args([
            "verify",
            "git",
            "--repo",
            url,
            "--tag",
            TAG,
            "--allowed-signers",
        ])
        .arg(&scene.signers_path)
        .args(extra)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Asserts that `said` is a refusal containing each of `parts`.
#[track_caller]
pub fn refused_saying(verified: bool, said: &str, parts: &[&str]) {
    eprintln!("{said}");
    assert!(!verified, "it verified: {said}");
    for part in parts {
        assert!(said.contains(part), "`{part}` missing from: {said}");
    }
}
