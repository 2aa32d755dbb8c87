//! One test's world: a scratch folder with a signing key and allowed_signers, the agent's data
//! dir, the directory the app installs into, a log of the hooks that ran, and bundles whose
//! hooks behave as the test needs (succeed, fail ValidateService, block, run long).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;
use shoal_tests::signing::{SigningKey, Trust};
use tempfile::TempDir;

pub const GROUP: &str = "web";
/// The group's application: what its releases are bound to.
pub const APPLICATION: &str = "shop";

/// How a revision's hooks behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    /// Every hook succeeds.
    Good,
    /// ValidateService exits 1.
    FailValidate,
    /// BeforeInstall waits until the test creates `marks/go`.
    BlockBeforeInstall,
    /// ApplicationStart runs this long.
    SlowStart(Duration),
    /// Every hook succeeds, but the installed app fails the health check.
    Unhealthy,
    /// BeforeInstall waits while the test keeps `marks/hold` (a run of this revision later, a
    /// revert to it say, can be held).
    HoldBeforeInstall,
    /// Its `shoal.yaml` brings a health check of its own, which the installed app fails (the
    /// group's check would pass it).
    OwnHealthFails,
    /// Its `shoal.yaml` brings a health check of its own, passing while `marks/release-down`
    /// does not exist (the group's check cannot see that file).
    OwnHealth,
    /// Its ApplicationStop exits 1 (it fails when the next revision is deployed).
    BrokenStop,
    /// Every hook succeeds, and its `shoal.yaml` sets `ignore_application_stop_failures`.
    IgnoreStopFailures,
}

pub struct World {
    pub dir: TempDir,
    pub data_dir: PathBuf,
    pub app_dir: PathBuf,
    pub marks: PathBuf,
    pub key: SigningKey,
    pub stranger: SigningKey,
    pub signers_file: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let Trust {
            key,
            stranger,
            signers_file,
        } = Trust::new(dir.path());
        let marks = dir.path().join("marks");
        fs::create_dir_all(&marks).unwrap();
        World {
            data_dir: dir.path().join("data"),
            app_dir: dir.path().join("app"),
            config: dir.path().join("agent.yaml"),
            log: dir.path().join("agent.log"),
            marks,
            key,
            stranger,
            signers_file,
            dir,
        }
    }

    /// Writes the agent config with `channel` (the YAML of `channel:`, one line).
    pub fn write_config(&self, channel: &str, shutdown_grace: &str) {
        let text = format!(
            "node: {{ id: test-node, data_dir: {data}, shutdown_grace: {shutdown_grace} }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: info }}\n\
             groups:\n\
             \x20 - name: {GROUP}\n\
             \x20   application: {APPLICATION}\n\
             \x20   channel: {channel}\n\
             \x20   allowed_signers: {signers}\n\
             \x20   rollout: {{ min_healthy_time: 500ms, healthy_deadline: 30s }}\n\
             \x20   health: {{ command: \"test -f {app}/version.txt && ! grep -q unhealthy {app}/version.txt\", interval: 100ms, timeout: 5s }}\n\
             \x20   kill_grace: 1s\n",
            data = self.data_dir.display(),
            signers = self.signers_file.display(),
            app = self.app_dir.display(),
        );
        fs::write(&self.config, text).unwrap();
    }

    pub fn start_agent(&self, env: &[(String, String)]) -> AgentProcess {
        AgentProcess::start(
            Path::new(env!("CARGO_BIN_EXE_shoal")),
            &self.config,
            &self.log,
            env,
        )
    }

    /// Runs `shoal agent --config <this world's> args` to its end; one still running after 30 s
    /// (an agent that started when it should have refused to) is killed, and the test fails.
    pub fn run_agent(&self, args: &[&str]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .arg("agent")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ended = poll_until(Duration::from_secs(30), || child.try_wait().unwrap());
        if ended.is_none() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`shoal agent {}` still ran after 30 s:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.wait_with_output().unwrap()
    }

    /// Writes the bundle of `revision` into `dir` (which may be a git working tree).
    pub fn write_bundle(&self, dir: &Path, revision: &str, hooks: Hooks) {
        self.write_bundle_to(dir, revision, hooks, &self.app_dir);
    }

    /// The same, with the app installing into `app_dir`.
    pub fn write_bundle_to(&self, dir: &Path, revision: &str, hooks: Hooks, app_dir: &Path) {
        let marks = self.marks.display();
        let record = format!(
            "#!/bin/sh\necho \"{revision} $LIFECYCLE_EVENT as $SHOAL_REVISION\" >> {marks}/hooks.log\n\
             echo \"$LIFECYCLE_EVENT tunables=${{GLIBC_TUNABLES:-none}} notify=${{NOTIFY_SOCKET:-none}}\" >> {marks}/env.log\n"
        );
        let validate = match hooks {
            Hooks::FailValidate => format!("{record}echo 'service answers 500' >&2\nexit 1\n"),
            _ => record.clone(),
        };
        let before_install = match hooks {
            Hooks::BlockBeforeInstall => format!(
                "{record}echo $$ > {marks}/started-{revision}\nwhile [ ! -e {marks}/go ]; do sleep 0.05; done\necho \"{revision} BeforeInstall went on\" >> {marks}/hooks.log\n"
            ),
            Hooks::HoldBeforeInstall => format!(
                "{record}if [ -e {marks}/hold ]; then\n  echo $$ > {marks}/started-{revision}\n  while [ -e {marks}/hold ]; do sleep 0.05; done\nfi\n"
            ),
            _ => record.clone(),
        };
        let start = match hooks {
            Hooks::SlowStart(long) => format!(
                "{record}echo $$ > {marks}/started-{revision}\nsleep {}\necho \"{revision} start finished\" >> {marks}/hooks.log\n",
                long.as_secs_f64()
            ),
            _ => record.clone(),
        };
        let appspec = format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\nhooks:\n\
             \x20 ApplicationStop:\n    - location: scripts/stop.sh\n\
             \x20 BeforeInstall:\n    - location: scripts/before_install.sh\n\
             \x20 ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 300\n\
             \x20 ValidateService:\n    - location: scripts/validate.sh\n",
            app_dir.display()
        );
        let stop = match hooks {
            Hooks::BrokenStop => format!("{record}echo 'stop is broken' >&2\nexit 1\n"),
            _ => record.clone(),
        };
        let release_file = match hooks {
            Hooks::OwnHealthFails => format!(
                "rollout: {{ min_healthy_time: 500ms, healthy_deadline: 30s }}\n\
                 health: {{ command: \"grep -q release-check-passes {}/version.txt\", interval: 100ms }}\n",
                app_dir.display()
            ),
            Hooks::OwnHealth => format!(
                "health: {{ command: \"test ! -e {marks}/release-down\", interval: 100ms }}\n"
            ),
            Hooks::IgnoreStopFailures => "ignore_application_stop_failures: true\n".to_owned(),
            _ => String::new(),
        };
        // A git working tree keeps the last revision's file otherwise.
        let _ = fs::remove_file(dir.join("shoal.yaml"));
        if !release_file.is_empty() {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("shoal.yaml"), release_file).unwrap();
        }
        let files = [
            ("appspec.yml", appspec, 0o644),
            (
                "app/version.txt",
                match hooks {
                    Hooks::Unhealthy => format!("{revision} unhealthy\n"),
                    _ => format!("{revision}\n"),
                },
                0o644,
            ),
            ("scripts/stop.sh", stop, 0o755),
            ("scripts/before_install.sh", before_install, 0o755),
            ("scripts/start.sh", start, 0o755),
            ("scripts/validate.sh", validate, 0o755),
        ];
        for (path, content, mode) in files {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, content).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    /// The group's channel state, as the agent keeps it.
    pub fn channel_state(&self) -> shoal_agent::verify::state::ChannelState {
        let path = shoal_agent::verify::state::ChannelState::path_for(&self.data_dir, GROUP);
        shoal_agent::verify::state::ChannelState::load(&path).unwrap()
    }

    /// The trusted signers.
    pub fn signers(&self) -> shoal_shared::release::AllowedSigners {
        shoal_shared::release::AllowedSigners::parse(
            &fs::read_to_string(&self.signers_file).unwrap(),
        )
        .unwrap()
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(since.as_secs()).unwrap()
    }

    /// The hook log: one `<bundle revision> <event> as <SHOAL_REVISION>` line per hook run.
    pub fn hooks_log(&self) -> String {
        fs::read_to_string(self.marks.join("hooks.log")).unwrap_or_default()
    }

    /// What the hooks saw of `GLIBC_TUNABLES` and `NOTIFY_SOCKET`: one
    /// `<event> tunables=<value or none> notify=<value or none>` line each.
    pub fn hooks_env(&self) -> String {
        fs::read_to_string(self.marks.join("env.log")).unwrap_or_default()
    }

    /// The revision installed in the app directory.
    pub fn installed(&self) -> String {
        fs::read_to_string(self.app_dir.join("version.txt"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Waits for the marker a blocking or slow hook of `revision` creates when it starts.
    pub fn wait_started(&self, revision: &str, agent: &AgentProcess) {
        let mark = self.marks.join(format!("started-{revision}"));
        poll_until(Duration::from_secs(60), || mark.exists().then_some(())).unwrap_or_else(|| {
            panic!(
                "the hook of {revision} did not start\nstatus: {}\nlog:\n{}",
                agent.status(),
                agent.log_text()
            )
        });
    }

    /// Waits until the slow or blocked hook of `revision` runs again, in another process group
    /// than `before`.
    pub fn wait_started_again(&self, revision: &str, before: &str, agent: &AgentProcess) {
        let mark = self.marks.join(format!("started-{revision}"));
        poll_until(Duration::from_secs(60), || {
            let now = fs::read_to_string(&mark).ok()?;
            (!now.trim().is_empty() && now.trim() != before).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "the hook of {revision} did not run again\nstatus: {}\nlog:\n{}",
                agent.status(),
                agent.log_text()
            )
        });
    }

    /// The process group of the slow or blocked hook of `revision` (its shell leads the group).
    pub fn hook_group(&self, revision: &str) -> String {
        fs::read_to_string(self.marks.join(format!("started-{revision}")))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Whether any process of `group_id` is alive (zombies are dead: this machine's init
    /// reaps orphans lazily).
    pub fn group_alive(group_id: &str) -> Vec<String> {
        let ps = std::process::Command::new("ps")
            .args(["-e", "-o", "pgid=,pid=,stat=,args="])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| {
                let mut fields = l.split_whitespace();
                fields.next() == Some(group_id)
                    && fields.nth(1).is_some_and(|stat| !stat.starts_with('Z'))
            })
            .map(str::to_owned)
            .collect()
    }
}

/// The group's entry in a `/v1/status` body.
pub fn group(status: &Value) -> &Value {
    &status["groups"][0]
}

/// The group runs `revision`, is idle, and its last deployment succeeded.
pub fn settled_on(status: &Value, revision: &str) -> bool {
    let g = group(status);
    g["current_revision"] == revision
        && (g["phase"] == "idle" || g["phase"] == "halted")
        && g["last_deployment"]["result"] == "succeeded"
}
