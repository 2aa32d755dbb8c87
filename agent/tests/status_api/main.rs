//! The status endpoint served in-process on `127.0.0.1:0` from a real board, real metrics, real
//! rollout planners and a temporary deployment root, asked over plain TCP; `shoal status` /
//! `shoal logs` run as the real binary against it; the fleet view, its page at `/` and the
//! steering calls on real `shoal agent` processes with a signed git channel ([`daemon`]).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod cli;
mod controls;
mod daemon;
mod endpoints;
mod failure_output;
mod fleet;
mod limits;
mod logs;
mod metrics;
mod page;
mod private_logs;
mod steering;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shoal_agent::execute::deployment::{DeploymentRecord, EventRecord, ScriptRecord, Status};
use shoal_agent::execute::layout::Layout;
use shoal_agent::report::http::Steer;
use shoal_agent::report::http::{AdminToken, Limits, serve_with};
use shoal_agent::report::{Board, Metrics, ServerState};
use shoal_agent::runtime::journal::JournalFile;
use shoal_agent::runtime::{GroupSteer, Keeper};
use shoal_shared::gossip::Target;
use shoal_shared::rollout::{GroupHost, Journal, Policy, Settings, View, deployment_id};
use shoal_shared::status::{GroupStatus, NodeInfo};
use tokio::sync::oneshot;

/// How long anything in these tests may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The admin token of the in-process endpoint.
pub const TOKEN: &str = "0123456789abcdef";

/// A status endpoint served on its own runtime, stopped when dropped.
pub struct Agent {
    pub addr: SocketAddr,
    pub board: Board,
    pub metrics: Metrics,
    pub root: PathBuf,
    /// The groups' planners and journals, as the runtime shares them with the endpoint.
    pub controls: Vec<(String, Keeper)>,
    _tmp: tempfile::TempDir,
    stop_tx: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Runtime,
}

impl Agent {
    /// Groups `web` and `db`, neither checked yet, and an empty deployment root.
    pub fn start() -> Self {
        Self::start_with(Limits::default())
    }

    pub fn start_with(limits: Limits) -> Self {
        Self::serve("127.0.0.1:0", limits)
    }

    /// The same, serving hook output without the admin token (`status.public_logs: true`).
    pub fn start_with_public_logs() -> Self {
        Self::serve_logs("127.0.0.1:0", Limits::default(), true)
    }

    /// The endpoint listening on `listen` (an address with port 0).
    pub fn serve(listen: &str, limits: Limits) -> Self {
        Self::serve_logs(listen, limits, false)
    }

    fn serve_logs(listen: &str, limits: Limits, public_logs: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("deployment-root");
        std::fs::create_dir_all(&root).unwrap();
        let board = Board::new(
            NodeInfo {
                id: "web-1".into(),
                version: "0.1.0".into(),
                labels: [("az".to_owned(), "eu-1".to_owned())].into(),
                started: "2026-05-01T10:00:00Z".into(),
                ready: false,
                duplicated_by: Vec::new(),
            },
            vec![group("web"), group("db")],
        );
        let metrics = Metrics::new();
        metrics.register_group("web");
        metrics.register_group("db");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let controls: Vec<(String, Keeper)> = ["web", "db"]
            .iter()
            .map(|name| (name.to_string(), control(tmp.path(), name)))
            .collect();
        let state = Arc::new(ServerState {
            board: board.clone(),
            metrics: metrics.clone(),
            deployment_root: root.clone(),
            node: "web-1".into(),
            admin: AdminToken::new(TOKEN),
            groups: controls
                .iter()
                .map(|(name, keeper)| {
                    let steer = GroupSteer::new(
                        keeper.clone(),
                        name,
                        &tmp.path().join("allowed_signers"),
                        tmp.path(),
                        &root,
                    );
                    (name.clone(), Arc::new(steer) as Arc<dyn Steer>)
                })
                .collect(),
            mesh: None,
            public_logs,
            histories: Default::default(),
            notifications: Default::default(),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = runtime.spawn(serve_with(listener, state, limits, async {
            let _ = stop_rx.await;
        }));
        Self {
            addr,
            board,
            metrics,
            root,
            controls,
            _tmp: tmp,
            stop_tx: Some(stop_tx),
            served: Some(served),
            runtime,
        }
    }

    /// `GET path` on a new connection.
    pub fn get(&self, path: &str) -> wire::Reply {
        wire::get(self.addr, path)
    }

    /// `GET path` with the admin token (hook output needs it).
    pub fn get_admin(&self, path: &str) -> wire::Reply {
        let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
        wire::request(self.addr, "GET", path, &[&bearer])
    }

    /// A file holding the admin token, 0600, as `shoal logs --token-file` reads it.
    pub fn token_file(&self) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let file = self.dir().join("admin.token");
        std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file.display().to_string()
    }

    /// `POST /v1/groups/{group}/{action}` with the admin token and `body`.
    pub fn steer(&self, group: &str, action: &str, body: &[u8]) -> wire::Reply {
        let path = format!("/v1/groups/{group}/{action}");
        wire::post(self.addr, &path, Some(&format!("Bearer {TOKEN}")), body)
    }

    /// The scratch folder (journals under `journal/`, deployments under `deployment-root/`).
    pub fn dir(&self) -> &Path {
        self._tmp.path()
    }

    /// The control of `group`.
    pub fn control(&self, group: &str) -> &Keeper {
        &self
            .controls
            .iter()
            .find(|(name, _)| name == group)
            .unwrap()
            .1
    }

    /// `group` learns of release `revision` with `policy`, as the runtime tells its planner
    /// (alone in its group, it starts at once); returns the deployment id.
    pub fn release(&self, group: &str, revision: &str, policy: Policy) -> String {
        let digest = format!("git:{revision}");
        let target = Target {
            id: deployment_id(group, &digest),
            revision: revision.into(),
            digest,
        };
        let id = target.id.clone();
        self.control(group)
            .change(|host| host.release(target, policy, "/cache/tree".into(), &View::default(), 1))
            .unwrap();
        id
    }

    /// Starts the shutdown; true when `serve` returned within the deadline.
    pub fn stop(&mut self) -> bool {
        if let Some(stop_tx) = self.stop_tx.take() {
            let _ = stop_tx.send(());
        }
        let Some(served) = self.served.take() else {
            return true;
        };
        self.runtime
            .block_on(async { tokio::time::timeout(DEADLINE, served).await })
            .is_ok()
    }

    /// Writes a deployment directory `<root>/<group>/<name>` with `record` and, when given, a
    /// scripts.log; returns the directory.
    pub fn deployment(&self, name: &str, record: &DeploymentRecord, log: Option<&str>) -> PathBuf {
        let dir = self.root.join(&record.group).join(name);
        record.save(&dir).unwrap();
        if let Some(log) = log {
            write_log(&dir, log);
        }
        dir
    }
}

/// A fresh host for `group` of node `web-1` (no mesh: no warmup), journaled under `dir`.
fn control(dir: &Path, group: &str) -> Keeper {
    let settings = Settings {
        node: "web-1".into(),
        warmup: 0,
        forget_after: 0,
        expected_members: None,
    };
    let host = GroupHost::start(group, settings, Journal::empty(), &Policy::default(), 0);
    Keeper::new(JournalFile::of(dir, group), host)
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn write_log(dir: &Path, text: &str) {
    let log = Layout::scripts_log(dir);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(log, text).unwrap();
}

pub fn append_log(dir: &Path, text: &str) {
    use std::io::Write as _;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(Layout::scripts_log(dir))
        .unwrap();
    log.write_all(text.as_bytes()).unwrap();
}

pub fn group(name: &str) -> GroupStatus {
    GroupStatus::starting(name, "app", &format!("store file:///srv/releases/{name}"))
}

/// A deployment of `group` started at `started_at_ms`, with two events.
pub fn record(group: &str, id: &str, status: Status, started_at_ms: u64) -> DeploymentRecord {
    let event = |name: &str, status: Status, exit_code: Option<i32>| EventRecord {
        name: name.into(),
        status,
        duration_ms: 1_250,
        scripts: vec![ScriptRecord {
            location: format!("scripts/{name}.sh"),
            result: status.as_str().into(),
            exit_code,
            duration_ms: 1_250,
        }],
        message: None,
    };
    DeploymentRecord {
        deployment_id: id.into(),
        group: group.into(),
        application: "app".into(),
        revision: "v1.3.0".into(),
        previous_revision: Some("v1.2.0".into()),
        reverts: None,
        bundle: "/srv/releases/v1.3.0.tar.gz".into(),
        status,
        started_at_ms,
        finished_at_ms: (status != Status::InProgress).then_some(started_at_ms + 2_500),
        events: vec![
            event("BeforeInstall", Status::Succeeded, Some(0)),
            event(
                "AfterInstall",
                status,
                Some(i32::from(status == Status::Failed)),
            ),
        ],
        warnings: vec!["permissions: mode 0644 was read as 420; used 0644".into()],
        error: (status == Status::Failed).then(|| "AfterInstall failed: exit code 1".into()),
    }
}
