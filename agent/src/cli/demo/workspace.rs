//! The demo's workspace: a signing key and the `allowed_signers` that trusts it, and a git
//! repository holding `examples/hello-app` (embedded in the binary) where each release is a
//! commit with a signed tag, made with the real `git` and `ssh-keygen`.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{DemoError, failed};

/// The example bundle, as committed: (path in the repository, text, executable).
const APP: &[(&str, &str, bool)] = &[
    (
        "appspec.yml",
        include_str!("../../../../examples/hello-app/appspec.yml"),
        false,
    ),
    (
        "www/index.html",
        include_str!("../../../../examples/hello-app/www/index.html"),
        false,
    ),
    (
        "www/health",
        include_str!("../../../../examples/hello-app/www/health"),
        false,
    ),
    (
        "scripts/stop.sh",
        include_str!("../../../../examples/hello-app/scripts/stop.sh"),
        true,
    ),
    (
        "scripts/before-install.sh",
        include_str!("../../../../examples/hello-app/scripts/before-install.sh"),
        true,
    ),
    (
        "scripts/start.sh",
        include_str!("../../../../examples/hello-app/scripts/start.sh"),
        true,
    ),
    (
        "scripts/validate.sh",
        include_str!("../../../../examples/hello-app/scripts/validate.sh"),
        true,
    ),
];

/// The example's rollout policy with a demo-sized wait: a canary healthy for 2 s instead of
/// 30 s, so the whole story fits in a minute.
const POLICY: &str = "\
# examples/hello-app/shoal.yaml, with min_healthy_time 2s for the demo.
rollout:
  strategy: canary
  canary: 1
  max_parallel: 2
  min_healthy_time: 2s
  max_failures: 0
  auto_revert: true
";

/// Who signs the demo's releases.
pub const PRINCIPAL: &str = "release@shoal-demo";

/// The application the demo's tags are bound to, and the hosts' group's.
pub const APPLICATION: &str = "hello-app";

/// What a release changes in the example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The example as it is.
    Original,
    /// A new greeting on the page.
    NewGreeting,
    /// A health endpoint that reports an error: ValidateService fails.
    BrokenHealth,
}

/// The text `GET /health` answers in the broken release.
pub const BROKEN_HEALTH: &str = "error: cannot open the greetings database\n";

/// The workspace on disk.
#[derive(Debug)]
pub struct Workspace {
    /// Its root.
    pub root: PathBuf,
    /// The git repository the agents watch.
    pub repo: PathBuf,
    /// The allowed_signers file the agents trust.
    pub allowed_signers: PathBuf,
    /// The mesh's cluster key (0600), as `shoal keygen --out` makes it.
    pub gossip_key: PathBuf,
    key: PathBuf,
}

impl Workspace {
    /// Makes the key, the allowed_signers file and the repository under `root`.
    pub fn create(root: &Path) -> Result<Workspace, DemoError> {
        let keys = root.join("keys");
        fs::create_dir_all(&keys).map_err(failed(format!("cannot create {}", keys.display())))?;
        let key = keys.join("release");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", PRINCIPAL, "-f"])
            .arg(&key))?;
        let public = fs::read_to_string(key.with_extension("pub"))
            .map_err(failed("cannot read the new public key"))?;
        let allowed_signers = root.join("allowed_signers");
        let line = format!("{PRINCIPAL} namespaces=\"git\" {}", public.trim());
        fs::write(&allowed_signers, format!("{line}\n")).map_err(failed(format!(
            "cannot write {}",
            allowed_signers.display()
        )))?;
        let gossip_key = keys.join("gossip.key");
        crate::coordinate::seal::write_new_key_file(&gossip_key).map_err(failed(format!(
            "cannot write the gossip key {}",
            gossip_key.display()
        )))?;
        let repo = root.join("hello-app.git");
        fs::create_dir_all(&repo).map_err(failed(format!("cannot create {}", repo.display())))?;
        let workspace = Workspace {
            root: root.to_owned(),
            repo,
            allowed_signers,
            gossip_key,
            key,
        };
        workspace.git(&["init", "-q", "-b", "main"])?;
        Ok(workspace)
    }

    /// Commits the example with `change` and tags it `version`, signed with the demo's key.
    pub fn release(&self, version: &str, change: Change) -> Result<(), DemoError> {
        for (path, text, executable) in APP {
            let text = match (*path, change) {
                ("www/index.html", Change::NewGreeting) => text.replace(
                    "Hello from hello-app",
                    "Hello again, from a newer hello-app",
                ),
                ("www/health", Change::BrokenHealth) => BROKEN_HEALTH.to_owned(),
                _ => (*text).to_owned(),
            };
            let text = text.replace(
                "Deployed by shoal.",
                &format!("{version}, deployed by shoal."),
            );
            self.write(path, &text, *executable)?;
        }
        self.write("shoal.yaml", POLICY, false)?;
        self.git(&["add", "-A"])?;
        self.git(&[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            &format!("hello-app {version}"),
        ])?;
        let signing_key = format!(
            "user.signingkey={}",
            self.key.with_extension("pub").display()
        );
        self.git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing_key,
            "tag",
            "-s",
            version,
            "-m",
            &format!("hello-app {version}"),
            // Binds the release to the demo group's application.
            "-m",
            &format!("Shoal-Application: {APPLICATION}"),
        ])
    }

    fn write(&self, path: &str, text: &str, executable: bool) -> Result<(), DemoError> {
        let full = self.repo.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)
                .map_err(failed(format!("cannot create {}", parent.display())))?;
        }
        fs::write(&full, text).map_err(failed(format!("cannot write {}", full.display())))?;
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))
            .map_err(failed(format!("cannot set the mode of {}", full.display())))
    }

    /// `git` in the repository, away from the user's own git config.
    fn git(&self, args: &[&str]) -> Result<(), DemoError> {
        run(Command::new("git")
            .current_dir(&self.repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=shoal demo",
                "-c",
                &format!("user.email={PRINCIPAL}"),
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args))
    }
}

/// Runs `command`; its stderr is the error when it fails.
fn run(command: &mut Command) -> Result<(), DemoError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(failed(format!("cannot run {shown}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(DemoError::Command {
        command: shown,
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// The programs the demo needs besides shoal, missing from `PATH`.
pub fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["git", "ssh-keygen"]
        .into_iter()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect()
}
