//! A fleet of real agents for the mesh stories: one scratch folder with a signing key, a git
//! repository every agent watches, and per host a config, a data dir and a log. Hook scripts
//! append `<ns> <host> <revision> start|end` to one file under `flock`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;
use shoal_tests::agent::AgentProcess;
use shoal_tests::poll_until;
use shoal_tests::signing::git::Repo;
use shoal_tests::signing::{SigningKey, Trust};
use tempfile::TempDir;

const GROUP: &str = "web";
const WAIT: Duration = Duration::from_secs(120);

/// How a revision's hooks behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    /// Both hooks succeed at once.
    Good,
    /// BeforeInstall takes this long.
    Slow(Duration),
    /// ValidateService exits 1.
    FailValidate,
    /// ValidateService exits 1 on the first host to run it; on the others it passes once the
    /// test lets it go ([`Fleet::go`]).
    FailValidateFirst,
    /// BeforeInstall waits while `marks/hold` exists (a revert to this revision can be held).
    HoldBeforeInstall,
}

struct Host {
    id: String,
    /// The shoal it runs: this build, or an older one for the upgrade story.
    binary: PathBuf,
    config: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    agent: Option<AgentProcess>,
}

/// How a fleet differs from the plain one.
#[derive(Default)]
struct Options<'a> {
    /// Join through a plain mesh member with `groups: []` started first.
    seed: bool,
    /// More keys of each host's `mesh:`.
    mesh_extra: &'a str,
    /// More keys of each host's `status:`.
    status_extra: &'a str,
    /// More top-level sections of each host's config.
    top_extra: &'a str,
    /// The shoal every host runs (this build unless given).
    binary: Option<&'a Path>,
    /// The channel is the repository over `git://` through a counting proxy.
    remote: bool,
    /// The channel is an S3 bucket (moto) through a counting proxy.
    store: bool,
    /// The fleet is large: no other fleet of this binary runs beside it.
    alone: bool,
}

/// Fleets of this binary run side by side, but a large one runs alone: twenty agents moving
/// 100 MB each on two cores would starve the timings of the fleets beside them.
static LOAD: RwLock<()> = RwLock::new(());

/// What a fleet holds of [`LOAD`] while it runs.
#[allow(dead_code)] // held, never read
enum Load {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

pub struct Fleet {
    dir: TempDir,
    repo: Repo,
    key: SigningKey,
    signers_file: PathBuf,
    marks: PathBuf,
    policy: String,
    hosts: Vec<Host>,
    /// A plain mesh member (no groups) every host joins through, if started with one.
    seed: Option<AgentProcess>,
    /// More keys of each host's `mesh:` (`, key: value…`).
    mesh_extra: String,
    /// More keys of each host's `status:` (`, key: value…`).
    status_extra: String,
    /// The repository served over `git://` through a counting proxy, when the channel is
    /// remote ([`Fleet::start_remote`]): the hosts poll it instead of watching it.
    remote: Option<(
        shoal_tests::git_daemon::GitDaemon,
        shoal_tests::proxy::CountingProxy,
    )>,
    /// More top-level sections of each host's config (YAML lines).
    top_extra: String,
    /// The S3 server and the counting proxy in front of it, when the channel is a store
    /// ([`Fleet::start_store`]).
    store: Option<(
        shoal_tests::s3::MotoServer,
        shoal_tests::proxy::CountingProxy,
    )>,
    /// Dropped last: the other fleets wait for this one's agents to be gone.
    _load: Load,
}

/// The bucket and prefix of a store fleet's channel.
const STORE_URL: &str = "s3://releases/shop";

impl Fleet {
    /// Starts `n` agents as one mesh (each joins through the ones started before it) with
    /// the group's default rollout `policy` (a YAML flow mapping).
    pub fn start(n: usize, policy: &str) -> Fleet {
        Self::start_as(n, policy, Options::default())
    }

    /// The same with every host running `binary` (an older build) until [`Fleet::upgrade`].
    pub fn start_on(n: usize, policy: &str, binary: &Path) -> Fleet {
        let binary = Some(binary);
        Self::start_as(
            n,
            policy,
            Options {
                binary,
                ..Options::default()
            },
        )
    }

    /// The same with `status.public_logs: true`: hook output is every reader's.
    #[allow(dead_code)]
    pub fn start_with_public_logs(n: usize, policy: &str) -> Fleet {
        let status_extra = ", public_logs: true";
        Self::start_as(
            n,
            policy,
            Options {
                status_extra,
                ..Options::default()
            },
        )
    }

    /// The same with `sections` (top-level YAML, such as a `notify:` section) in every host's
    /// config.
    #[allow(dead_code)]
    pub fn start_with_sections(n: usize, policy: &str, sections: &str) -> Fleet {
        let top_extra = sections;
        Self::start_as(
            n,
            policy,
            Options {
                top_extra,
                ..Options::default()
            },
        )
    }

    /// The same with the mesh's `dead_grace` set to `grace` (e.g. `3s`).
    pub fn start_with_dead_grace(n: usize, policy: &str, grace: &str) -> Fleet {
        let mesh_extra = &format!(", dead_grace: {grace}");
        Self::start_as(
            n,
            policy,
            Options {
                mesh_extra,
                ..Options::default()
            },
        )
    }

    /// The same, joining through a plain mesh member with `groups: []` started first.
    pub fn start_with_seed(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                seed: true,
                ..Options::default()
            },
        )
    }

    /// `n` hosts whose channel is remote: the repository over `git://` through a counting
    /// proxy, polled every 2 s.
    pub fn start_remote(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                remote: true,
                ..Options::default()
            },
        )
    }

    /// `n` hosts whose channel is an S3 bucket (moto) through a counting proxy, polled
    /// every 2 s.
    pub fn start_store(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                store: true,
                ..Options::default()
            },
        )
    }

    /// [`Fleet::start`] for a large fleet, which runs with no other beside it.
    pub fn start_alone(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                alone: true,
                ..Options::default()
            },
        )
    }

    /// [`Fleet::start_store`] for a large fleet, which runs with no other beside it.
    pub fn start_store_alone(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                store: true,
                alone: true,
                ..Options::default()
            },
        )
    }

    /// [`Fleet::start_remote`] for a large fleet, which runs with no other beside it.
    pub fn start_remote_alone(n: usize, policy: &str) -> Fleet {
        Self::start_as(
            n,
            policy,
            Options {
                remote: true,
                alone: true,
                ..Options::default()
            },
        )
    }

    /// What went through the proxy in front of the remote repository or the store.
    pub fn origin(&self) -> &shoal_tests::proxy::CountingProxy {
        match (&self.remote, &self.store) {
            (Some((_, proxy)), _) | (None, Some((_, proxy))) => proxy,
            (None, None) => panic!("the channel is not remote"),
        }
    }

    fn start_as(n: usize, policy: &str, options: Options<'_>) -> Fleet {
        let Options {
            seed,
            mesh_extra,
            status_extra,
            top_extra,
            binary,
            remote,
            store,
            alone,
        } = options;
        let load = if alone {
            Load::Alone(LOAD.write().unwrap_or_else(PoisonError::into_inner))
        } else {
            Load::Shared(LOAD.read().unwrap_or_else(PoisonError::into_inner))
        };
        let binary = binary.unwrap_or(Path::new(env!("CARGO_BIN_EXE_shoal")));
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("SHOAL_KEEP_FLEET").is_some() {
            dir.disable_cleanup(true);
            eprintln!("fleet kept in {}", dir.path().display());
        }
        let Trust {
            key, signers_file, ..
        } = Trust::new(dir.path());
        let marks = dir.path().join("marks");
        fs::create_dir_all(&marks).unwrap();
        fs::write(marks.join("hooks.log"), "").unwrap();
        // The mesh's cluster key, as `shoal keygen --out` makes it.
        let key_file = dir.path().join("gossip.key");
        let made = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .arg("keygen")
            .arg("--out")
            .arg(&key_file)
            .status()
            .unwrap();
        assert!(made.success(), "shoal keygen --out {}", key_file.display());
        let repo = Repo::init(&dir.path().join("repo")).for_application(Some("shop"));
        repo.commit_file("README", "shop\n", "initial");
        let hosts = (1..=n)
            .map(|i| {
                let id = format!("host-{i}");
                let home = dir.path().join(&id);
                fs::create_dir_all(&home).unwrap();
                Host {
                    binary: binary.to_owned(),
                    config: home.join("agent.yaml"),
                    data_dir: home.join("data"),
                    log: home.join("agent.log"),
                    id,
                    agent: None,
                }
            })
            .collect();
        let mut fleet = Fleet {
            dir,
            repo,
            key,
            signers_file,
            marks,
            policy: policy.to_owned(),
            hosts,
            seed: None,
            mesh_extra: mesh_extra.to_owned(),
            status_extra: status_extra.to_owned(),
            top_extra: top_extra.to_owned(),
            remote: None,
            store: None,
            _load: load,
        };
        if store {
            let moto = shoal_tests::s3::MotoServer::start();
            moto.create_bucket("releases");
            let proxy = shoal_tests::proxy::CountingProxy::start(moto.addr());
            fleet.store = Some((moto, proxy));
        }
        if remote {
            let daemon =
                shoal_tests::git_daemon::GitDaemon::serve(fleet.dir.path(), fleet.dir.path());
            let proxy = shoal_tests::proxy::CountingProxy::start(daemon.addr);
            fleet.remote = Some((daemon, proxy));
        }
        if seed {
            fleet.seed = Some(fleet.start_seed());
        }
        for i in 0..n {
            fleet.restart(i);
        }
        fleet
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    fn start_seed(&self) -> AgentProcess {
        let home = self.dir.path().join("seed");
        fs::create_dir_all(&home).unwrap();
        let config = home.join("agent.yaml");
        let text = format!(
            "node: {{ id: seed, data_dir: {data} }}\n\
             status: {{ listen: 127.0.0.1:0 }}\n\
             log: {{ format: json, level: \"info,shoal_agent::share=debug\" }}\n\
             mesh: {{ name: e2e, listen: 127.0.0.1:0, interval: 100ms, key_file: {key} }}\n\
             groups: []\n",
            data = home.join("data").display(),
            key = self.key_file().display(),
        );
        fs::write(&config, text).unwrap();
        AgentProcess::start(
            Path::new(env!("CARGO_BIN_EXE_shoal")),
            &config,
            &home.join("agent.log"),
            &[],
        )
    }

    /// A new operator key, trusted in the allowed_signers every host reads for
    /// `namespaces` (as `namespaces="…"`).
    pub fn trust_operator(&self, principal: &str, namespaces: &str) -> SigningKey {
        let key = SigningKey::generate(&self.dir.path().join("keys"), principal);
        let line = shoal_tests::signing::allowed_signers_line(
            principal,
            &key,
            &format!("namespaces=\"{namespaces}\""),
        );
        let mut text = fs::read_to_string(&self.signers_file).unwrap();
        text.push_str(&line);
        text.push('\n');
        fs::write(&self.signers_file, text).unwrap();
        key
    }

    /// The key that signs the releases (trusted for `git` and `shoal-release` only).
    pub fn release_key(&self) -> &SigningKey {
        &self.key
    }

    /// The cluster key every host reads.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("gossip.key")
    }

    /// The plain mesh member, if any.
    pub fn seed(&self) -> Option<&AgentProcess> {
        self.seed.as_ref()
    }

    /// Starts host `i` again, joining through every agent running now.
    pub fn restart(&mut self, i: usize) {
        let seeds: Vec<String> = self
            .seed
            .iter()
            .chain(
                self.hosts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, h)| h.agent.as_ref()),
            )
            .map(|a| a.gossip_addr().to_string())
            .collect();
        let host = &self.hosts[i];
        let text = format!(
            "node: {{ id: {id}, data_dir: {data}, shutdown_grace: 5s }}\n\
             status: {{ listen: 127.0.0.1:0{status} }}\n\
             log: {{ format: json, level: \"info,shoal_agent::share=debug\" }}\n\
             mesh: {{ name: e2e, listen: 127.0.0.1:0, seeds: [{seeds}], interval: 100ms, key_file: {key}{extra} }}\n\
             groups:\n\
             \x20 - name: {GROUP}\n\
             \x20   application: shop\n\
             \x20   channel: {channel}\n\
             \x20   allowed_signers: {signers}\n\
             \x20   rollout: {policy}\n\
             \x20   kill_grace: 1s\n\
             {top}",
            id = host.id,
            data = host.data_dir.display(),
            key = self.key_file().display(),
            seeds = seeds.join(", "),
            channel = self.channel(),
            signers = self.signers_file.display(),
            policy = self.policy,
            extra = self.mesh_extra,
            status = self.status_extra,
            top = self.top_extra,
        );
        fs::write(&host.config, text).unwrap();
        let mut env = vec![("E2E_NODE".to_owned(), host.id.clone())];
        if let Some((moto, _)) = &self.store {
            env.extend(moto.env());
        }
        let agent = AgentProcess::start(&host.binary, &host.config, &host.log, &env);
        self.hosts[i].agent = Some(agent);
    }

    /// The group's channel, as the config writes it.
    fn channel(&self) -> String {
        match (&self.remote, &self.store) {
            (Some((_, proxy)), _) => {
                format!(
                    "{{ git: {{ url: git://{}/repo, tags: \"v*\", poll: 2s }} }}",
                    proxy.addr()
                )
            }
            (None, Some((_, proxy))) => format!(
                "{{ store: {{ url: \"{STORE_URL}\", endpoint: \"http://{}\", allow_http: true, region: us-east-1, poll: 2s }} }}",
                proxy.addr()
            ),
            (None, None) => format!(
                "{{ git: {{ url: {}, tags: \"v*\", poll: 2s }} }}",
                self.repo.dir().display()
            ),
        }
    }

    /// A package upgrade on host `i`: SIGTERM, then the same config and data dir on `binary`.
    pub fn upgrade(&mut self, i: usize, binary: &Path) {
        self.stop(i);
        self.hosts[i].binary = binary.to_owned();
        self.restart(i);
    }

    /// SIGTERM to host `i` (as `systemctl stop` or a package upgrade sends it); waits until
    /// it exited 0.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut agent) = self.hosts[i].agent.take() {
            agent.signal("TERM");
            let exit = agent.wait_exit(WAIT).unwrap_or_else(|| {
                panic!("{} did not stop:\n{}", self.hosts[i].id, agent.log_text())
            });
            assert!(exit.success(), "{exit}:\n{}", agent.log_text());
        }
    }

    /// `shoal ARGS --config <host i's config>`, as root on host `i`.
    pub fn shoal(&self, i: usize, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(args)
            .arg("--config")
            .arg(&self.hosts[i].config)
            .output()
            .unwrap()
    }

    /// Gives host `i` the node id `id` (at its next start), as a host cloned from another's
    /// image would have.
    pub fn set_id(&mut self, i: usize, id: &str) {
        id.clone_into(&mut self.hosts[i].id);
    }

    /// Host `i`'s config file.
    #[allow(dead_code)]
    pub fn config(&self, i: usize) -> &Path {
        &self.hosts[i].config
    }

    /// Host `i`'s status endpoint.
    #[allow(dead_code)]
    pub fn addr(&self, i: usize) -> std::net::SocketAddr {
        self.agent(i).addr()
    }

    /// `GET path` on host `i`'s status endpoint.
    pub fn get(&self, i: usize, path: &str) -> shoal_tests::http::Reply {
        self.agent(i).get(path).unwrap()
    }

    /// Waits until host `i`'s fleet view shows the hosts `dead` dead.
    pub fn wait_dead(&self, i: usize, dead: &[usize]) {
        let ids: Vec<String> = dead.iter().map(|d| self.id(*d)).collect();
        poll_until(WAIT, || {
            let fleet: Value =
                serde_json::from_str(&self.agent(i).get("/v1/fleet").ok()?.body).ok()?;
            let nodes = fleet["nodes"].as_array()?;
            ids.iter()
                .all(|id| {
                    nodes
                        .iter()
                        .any(|n| n["id"] == id.as_str() && n["alive"] == false)
                })
                .then_some(())
        })
        .unwrap_or_else(|| panic!("host {i} never saw {ids:?} dead"));
    }

    /// `kill -9` of host `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut agent) = self.hosts[i].agent.take() {
            agent.kill9();
        }
    }

    /// Tags `revision` (signed), its hooks behaving as `hooks`, under the group's policy.
    pub fn publish(&self, revision: &str, hooks: Hooks) {
        self.commit(revision, hooks, None);
    }

    /// Tags `revision` with a `shoal.yaml` carrying `policy`.
    pub fn publish_with_policy(&self, revision: &str, hooks: Hooks, policy: &str) {
        self.commit(revision, hooks, Some(&format!("rollout: {policy}\n")));
    }

    /// Tags `revision` with `release_file` as its `shoal.yaml`.
    pub fn publish_with_release_file(&self, revision: &str, hooks: Hooks, release_file: &str) {
        self.commit(revision, hooks, Some(release_file));
    }

    fn commit(&self, revision: &str, hooks: Hooks, release_file: Option<&str>) {
        let dir = self.repo.dir();
        self.write_app(dir, revision, hooks, release_file);
        self.repo.git(&["add", "-A"]);
        self.repo.git(&["commit", "-q", "-m", revision]);
        self.repo
            .tag_signed(revision, &format!("release {revision}"), &self.key, None);
    }

    /// Publishes `revision` to the store (straight to moto, not through the counting proxy),
    /// its bundle carrying `filler` bytes of random data besides the app.
    pub fn publish_store(&self, revision: &str, hooks: Hooks, filler: usize) {
        let (moto, _) = self.store.as_ref().expect("a store channel");
        let dir = self.dir.path().join("bundles").join(revision);
        fs::create_dir_all(&dir).unwrap();
        self.write_app(&dir, revision, hooks, None);
        write_filler(&dir, filler);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["release", "--store", STORE_URL, "--application", "shop"])
            .args(["--version", revision, "--bundle"])
            .arg(&dir)
            .arg("--key")
            .arg(&self.key.private)
            .args(["--endpoint", &moto.endpoint(), "--allow-http"])
            .envs(moto.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shoal release {revision}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Tags `revision` with `filler` bytes of random data in the repository besides the app.
    pub fn publish_large(&self, revision: &str, hooks: Hooks, filler: usize) {
        write_filler(self.repo.dir(), filler);
        self.commit(revision, hooks, None);
    }

    /// The app of `revision` (appspec, hooks, optional `shoal.yaml`) written into `dir`.
    fn write_app(&self, dir: &Path, revision: &str, hooks: Hooks, release_file: Option<&str>) {
        let scripts = dir.join("scripts");
        fs::create_dir_all(&scripts).unwrap();
        fs::write(
            dir.join("appspec.yml"),
            "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: scripts/before.sh\n      timeout: 60\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 60\n",
        )
        .unwrap();
        let marks = self.marks.display();
        let record = |what: &str| {
            format!(
                "flock {marks}/lock sh -c 'echo \"$(date +%s%N) $E2E_NODE {revision} {what}\" >> {marks}/hooks.log'\n"
            )
        };
        let wait = match hooks {
            Hooks::Slow(d) => format!("sleep {}\n", d.as_secs_f64()),
            Hooks::HoldBeforeInstall => {
                format!("while [ -e {marks}/hold ]; do sleep 0.05; done\n")
            }
            _ => String::new(),
        };
        let before = format!("#!/bin/sh\n{}{wait}", record("start"));
        let validate = match hooks {
            Hooks::FailValidate => "#!/bin/sh\necho 'service answers 500' >&2\nexit 1\n".to_owned(),
            Hooks::FailValidateFirst => format!(
                "#!/bin/sh\nif mkdir {marks}/failed 2>/dev/null; then echo 'service answers 500' >&2; exit 1; fi\n\
                 while [ ! -e {marks}/go ]; do sleep 0.05; done\n{}",
                record("end")
            ),
            _ => format!("#!/bin/sh\n{}", record("end")),
        };
        for (name, text) in [("before.sh", before), ("validate.sh", validate)] {
            let path = scripts.join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        match release_file {
            Some(text) => fs::write(dir.join("shoal.yaml"), text).unwrap(),
            None => {
                let _ = fs::remove_file(dir.join("shoal.yaml"));
            }
        }
    }

    /// This group's status on host `i`.
    pub fn group(&self, i: usize) -> Value {
        let agent = self.agent(i);
        agent.status()["groups"][0].clone()
    }

    pub fn agent(&self, i: usize) -> &AgentProcess {
        self.hosts[i]
            .agent
            .as_ref()
            .unwrap_or_else(|| panic!("host {i} is not running"))
    }

    /// Polls host `i`'s group status until `done` holds; returns the group status.
    pub fn wait_status(&self, i: usize, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let status = self
            .agent(i)
            .wait_status(WAIT, &format!("host-{}: {what}", i + 1), |s| {
                done(&s["groups"][0])
            });
        status["groups"][0].clone()
    }

    /// Waits until every host runs `revision` and is idle.
    pub fn wait_all_on(&self, revision: &str) {
        for i in 0..self.len() {
            self.wait_status(i, &format!("idle on {revision}"), |g| {
                g["current_revision"] == revision && g["phase"] == "idle"
            });
        }
    }

    /// Everything host `i` logged.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(&self.hosts[i].log).unwrap_or_default()
    }

    /// Which host (by index) has node id `id`.
    /// Host `i`'s node id.
    pub fn id(&self, i: usize) -> String {
        self.hosts[i].id.clone()
    }

    pub fn index_of(&self, id: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.id == id)
            .unwrap_or_else(|| panic!("no host {id}"))
    }

    /// The folder the hooks leave their marks in, which scripts and checks may read.
    pub fn marks(&self) -> &Path {
        &self.marks
    }

    pub fn hooks_log(&self) -> String {
        fs::read_to_string(self.marks.join("hooks.log")).unwrap_or_default()
    }

    fn records(&self, revision: &str) -> Vec<(u128, String, String)> {
        self.hooks_log()
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let at: u128 = parts.next()?.parse().ok()?;
                let host = parts.next()?.to_owned();
                let rev = parts.next()?;
                let what = parts.next()?.to_owned();
                (rev == revision).then_some((at, host, what))
            })
            .collect()
    }

    /// The hosts that started `revision`, in the order they started (a host again each time).
    pub fn starts(&self, revision: &str) -> Vec<String> {
        self.records(revision)
            .into_iter()
            .filter(|(_, _, what)| what == "start")
            .map(|(_, host, _)| host)
            .collect()
    }

    /// Waits until `n` starts of `revision` were recorded; returns the host of the `n`th.
    pub fn wait_nth_start(&self, revision: &str, n: usize) -> String {
        poll_until(WAIT, || self.starts(revision).get(n - 1).cloned())
            .unwrap_or_else(|| panic!("no {n} starts of {revision}:\n{}", self.hooks_log()))
    }

    /// Each run of `revision`: host, start and end (ns). A run cut short ends where the same
    /// host starts again; one still going ends at the newest record.
    pub fn runs(&self, revision: &str) -> Vec<(String, u128, u128)> {
        let records = self.records(revision);
        let last = records.iter().map(|r| r.0).max().unwrap_or(0);
        let mut open: Vec<(String, u128)> = Vec::new();
        let mut runs = Vec::new();
        for (at, host, what) in records {
            if let Some(i) = open.iter().position(|(h, _)| *h == host) {
                let (_, started) = open.remove(i);
                runs.push((host.clone(), started, at));
            }
            if what == "start" {
                open.push((host, at));
            }
        }
        runs.extend(
            open.into_iter()
                .map(|(host, started)| (host, started, last)),
        );
        runs
    }

    /// Lets the ValidateService of [`Hooks::FailValidateFirst`] pass on the other hosts.
    pub fn go(&self) {
        fs::write(self.marks.join("go"), "").unwrap();
    }

    /// Holds a BeforeInstall of [`Hooks::HoldBeforeInstall`] (`true`) or lets it go.
    pub fn hold(&self, held: bool) {
        let mark = self.marks.join("hold");
        if held {
            fs::write(mark, "").unwrap();
        } else {
            fs::remove_file(mark).unwrap();
        }
    }

    /// Host `i`'s data dir.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.hosts[i].data_dir
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `size` bytes that do not compress (xorshift), as `filler.bin` in `dir`.
fn write_filler(dir: &Path, size: usize) {
    let mut data = vec![0u8; size];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    fs::write(dir.join("filler.bin"), data).unwrap();
}

/// The most runs going on at once.
pub fn overlap(runs: &[(String, u128, u128)]) -> usize {
    let mut edges: Vec<(u128, i32)> = runs
        .iter()
        .flat_map(|(_, start, end)| [(*start, 1), (*end, -1)])
        .collect();
    // At the same instant an end comes before a start.
    edges.sort();
    let mut now = 0i32;
    let mut most = 0i32;
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// When (seconds into the hour, from the JSON log's RFC 3339 timestamp) `message` was first
/// logged.
pub fn logged_at(log: &str, message: &str) -> Option<f64> {
    log.lines().find_map(|line| {
        let entry: Value = serde_json::from_str(line).ok()?;
        if entry["fields"]["message"] != message {
            return None;
        }
        // 2026-11-22T02:57:57.095123Z: minutes and seconds are enough within a run.
        let stamp = entry["timestamp"].as_str()?;
        let minutes: f64 = stamp.get(14..16)?.parse().ok()?;
        let seconds: f64 = stamp.get(17..stamp.len() - 1)?.parse().ok()?;
        Some(minutes * 60.0 + seconds)
    })
}
