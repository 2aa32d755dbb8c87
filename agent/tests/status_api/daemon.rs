//! A real `shoal agent` process on one host, without a mesh: group `web` on a local git
//! repository (watched by the agent) whose release tags are signed with an `ssh-keygen` key,
//! bundles whose hooks log what ran and can block in BeforeInstall, and the `shoal` commands
//! run as a user runs them.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;
use shoal_tests::signing::Trust;
use shoal_tests::signing::git::Repo;
use tempfile::TempDir;

/// How long a deployment (or a revert) may take.
pub const DEPLOY: Duration = Duration::from_secs(90);

/// How a release's hooks behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    /// Every hook succeeds.
    Good,
    /// BeforeInstall waits until the test calls [`Host::let_go`].
    BlockBeforeInstall,
    /// ValidateService says `service answers 500` on stderr and exits 1.
    FailValidate,
}

pub struct Host {
    #[allow(dead_code)]
    pub dir: TempDir,
    pub config: PathBuf,
    marks: PathBuf,
    app: PathBuf,
    repo: Repo,
    trust: Trust,
    pub agent: AgentProcess,
}

impl Host {
    /// An agent (node `test-node`) with group `web` and nothing released yet.
    pub fn start() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let trust = Trust::new(dir.path());
        let repo = Repo::init(&dir.path().join("repo")).for_application(Some("shop"));
        repo.commit_file("README", "shop\n", "initial");
        let marks = dir.path().join("marks");
        fs::create_dir_all(&marks).unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("agent.yaml");
        let text = format!(
            "node: {{ id: test-node, data_dir: {data} }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: info }}\n\
             groups:\n\
             \x20 - name: web\n\
             \x20   application: shop\n\
             \x20   channel: {{ git: {{ url: {repo}, tags: \"v*\", poll: 30s }} }}\n\
             \x20   allowed_signers: {signers}\n\
             \x20   rollout: {{ min_healthy_time: 0s }}\n",
            data = data.display(),
            repo = repo.dir().display(),
            signers = trust.signers_file.display(),
        );
        fs::write(&config, text).unwrap();
        let agent = AgentProcess::start(
            Path::new(env!("CARGO_BIN_EXE_shoal")),
            &config,
            &dir.path().join("agent.log"),
            &[],
        );
        Host {
            app: dir.path().join("app"),
            config,
            marks,
            repo,
            trust,
            agent,
            dir,
        }
    }

    /// Commits a bundle of `revision` and tags it, signed by the trusted key.
    pub fn publish(&self, revision: &str, hooks: Hooks) {
        self.write_bundle(revision, hooks);
        self.repo.git(&["add", "-A"]);
        self.repo.git(&["commit", "-q", "-m", revision]);
        self.repo.tag_signed(
            revision,
            &format!("release {revision}"),
            &self.trust.key,
            None,
        );
    }

    fn write_bundle(&self, revision: &str, hooks: Hooks) {
        let marks = self.marks.display();
        let record =
            format!("#!/bin/sh\necho \"{revision} $LIFECYCLE_EVENT\" >> {marks}/hooks.log\n");
        let before_install = match hooks {
            Hooks::Good | Hooks::FailValidate => record.clone(),
            Hooks::BlockBeforeInstall => format!(
                "{record}touch {marks}/started-{revision}\n\
                 while [ ! -e {marks}/go ]; do sleep 0.05; done\n"
            ),
        };
        let validate = match hooks {
            Hooks::FailValidate => format!("{record}echo 'service answers 500' >&2\nexit 1\n"),
            _ => record.clone(),
        };
        let appspec = format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\nhooks:\n\
             \x20 BeforeInstall:\n    - location: scripts/before_install.sh\n\
             \x20 ValidateService:\n    - location: scripts/validate.sh\n",
            self.app.display()
        );
        let root = self.repo.dir();
        for (path, content, mode) in [
            ("appspec.yml", appspec, 0o644),
            ("app/version.txt", format!("{revision}\n"), 0o644),
            ("scripts/before_install.sh", before_install, 0o755),
            ("scripts/validate.sh", validate, 0o755),
        ] {
            let file = root.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, content).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    /// Waits until the blocking BeforeInstall of `revision` runs.
    pub fn wait_blocked(&self, revision: &str) {
        let mark = self.marks.join(format!("started-{revision}"));
        poll_until(DEPLOY, || mark.exists().then_some(())).unwrap_or_else(|| {
            panic!(
                "BeforeInstall of {revision} did not start\nstatus: {}\nlog:\n{}",
                self.agent.status(),
                self.agent.log_text()
            )
        });
    }

    /// Lets blocked hooks go on (and later ones run through).
    pub fn let_go(&self) {
        fs::write(self.marks.join("go"), "").unwrap();
    }

    /// How many times the hook `event` of `revision` ran.
    pub fn runs(&self, revision: &str, event: &str) -> usize {
        let log = fs::read_to_string(self.marks.join("hooks.log")).unwrap_or_default();
        let line = format!("{revision} {event}");
        log.lines().filter(|l| *l == line).count()
    }

    /// Polls `/v1/status` until `done` holds for group `web`; the group's status.
    pub fn wait_web(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let status = self
            .agent
            .wait_status(DEPLOY, what, |s| done(&s["groups"][0]));
        status["groups"][0].clone()
    }

    /// `GET /v1/fleet` as JSON.
    pub fn fleet(&self) -> Value {
        let reply = self.agent.get("/v1/fleet").unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    /// `shoal args… [--addr <agent>] --config <config>`, as an operator on the host runs it
    /// (steering finds the control socket from the config; the others are given the address,
    /// since the agent listens on a port of the kernel's choosing).
    pub fn shoal(&self, args: &[&str]) -> Output {
        self.shoal_as(args, "")
    }

    /// The same as `sudo` run by `user` would (`$SUDO_USER`; none when empty).
    pub fn shoal_as(&self, args: &[&str], user: &str) -> Output {
        let steering = matches!(args.first(), Some(&("halt" | "resume" | "promote")));
        let mut command = Command::new(env!("CARGO_BIN_EXE_shoal"));
        command.args(args);
        if !steering {
            command.arg("--addr").arg(self.agent.addr().to_string());
        }
        command
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env("SUDO_USER", user)
            .output()
            .unwrap()
    }
}

/// stdout and stderr of a command, as text.
pub fn said(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `web` group of a `/v1/fleet` body.
pub fn fleet_web(fleet: &Value) -> &Value {
    &fleet["groups"][0]
}

/// This node's `web` in a `/v1/fleet` body.
pub fn node_web(fleet: &Value) -> &Value {
    &fleet["nodes"][0]["groups"][0]
}
