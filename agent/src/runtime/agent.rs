//! `shoal agent`: bind the status endpoint, start one task per group, tell systemd, and on
//! SIGTERM/SIGINT stop every group (a running hook gets the grace), then exit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::status::NodeInfo;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use super::group::GroupTask;
use super::groups::{Context, Groups, keeper};
use super::signals::{Asked, Signals};
use crate::channel::cache::ReleaseCache;
use crate::clock::now_rfc3339;
use crate::config::{Settings, ShareSettings};
use crate::coordinate::{GroupValues, Mesh, MeshSettings};
use crate::execute::layout::Layout;
use crate::report::history::Histories;
use crate::report::http::{AdminToken, ServerState, Steering, control_socket, serve};
use crate::report::notify::Notifier;
use crate::report::token::ensure_token;
use crate::report::{Board, Metrics, Notifications};
use crate::share::fetch::Peers;
use crate::share::serve::{self, Catalog, Server};
use crate::stop::Stop;
use shoal_shared::rollout::Settings as PlannerSettings;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be made.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A group's journal cannot be read.
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
    /// The admin token cannot be made or read.
    #[error("admin token {}: {source}", path.display())]
    Token {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The release service's address cannot be bound.
    #[error(
        "cannot listen on {addr} (mesh.share.listen, TCP; by default the gossip address and port): {source}"
    )]
    ShareListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The status address cannot be bound.
    #[error("cannot listen on {addr} (status.listen): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The control socket cannot be made.
    #[error("cannot make the control socket {}: {source}", path.display())]
    Control {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gossip mesh cannot start.
    #[error(transparent)]
    Mesh(#[from] crate::coordinate::MeshError),
    /// Signal handlers cannot be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// Notifications (`notify:`) cannot start.
    #[error(transparent)]
    Notify(#[from] crate::report::notifications::NotifyError),
}

/// Binds the control socket at `path` (0600, in the 0700 data directory), replacing one a
/// stopped agent left behind; anything else in its place is an error.
fn bind_control(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a socket is in its place; move it away",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Runs the agent until SIGTERM or SIGINT; returns once every group has stopped.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    let data_dir = settings.node.data_dir.clone();
    create_private_dir(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let token = ensure_token(&settings.status.token_file).map_err(|source| StartError::Token {
        path: settings.status.token_file.clone(),
        source,
    })?;
    let layout = Layout::new(data_dir.join("deployment-root"))
        .with_files_root(settings.node.files_root.clone());
    let mut cache = ReleaseCache::new(&data_dir).shared_by(settings.groups.iter().map(|g| &g.name));
    let serves =
        settings.mesh.as_ref().is_some_and(|m| m.keyring.is_some()) && settings.share.uploads > 0;
    if serves {
        cache = cache.keep_blobs();
    }
    let metrics = Metrics::new();
    let node = NodeInfo {
        id: settings.node.id.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        labels: settings.node.labels.clone(),
        started: now_rfc3339(),
        ready: false,
        duplicated_by: Vec::new(),
    };

    let listener = TcpListener::bind(settings.status.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: settings.status.listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(settings.status.listen);
    let control_path = control_socket(&data_dir);
    let control = bind_control(&control_path).map_err(|source| StartError::Control {
        path: control_path.clone(),
        source,
    })?;
    let mut signals = Signals::install().map_err(StartError::Signals)?;

    let mesh_settings = settings.mesh.clone();
    let planner_settings = PlannerSettings {
        node: settings.node.id.clone(),
        warmup: mesh_settings
            .as_ref()
            .map_or(0, |m| millis(m.interval.saturating_mul(WARMUP_ROUNDS))),
        forget_after: mesh_settings.as_ref().map_or(0, |m| millis(m.dead_grace)),
        expected_members: None,
    };
    let groups_context = |board: Board, mesh: Option<Arc<Mesh>>, peers, steering, stop| Context {
        node: settings.node.id.clone(),
        data_dir: data_dir.clone(),
        layout: layout.clone(),
        cache: cache.clone(),
        runas_env: settings.hooks.runas_env.clone(),
        planner: planner_settings.clone(),
        board,
        metrics: metrics.clone(),
        mesh,
        peers,
        steering,
        stop,
    };
    let mut keepers = Vec::new();
    for group in &settings.groups {
        let keeper = keeper(&data_dir, &planner_settings, group)?;
        metrics.register_group(&group.name);
        let current = keeper.read(|host| host.journal().current.clone());
        metrics.set_revision(&group.name, current.as_ref().map(|c| c.revision.as_str()));
        keepers.push(keeper);
    }
    let statuses = settings
        .groups
        .iter()
        .zip(&keepers)
        .map(|(group, keeper)| {
            keeper.read(|host| GroupTask::initial_status(group, host, layout.root()))
        })
        .collect();
    let board = Board::new(node, statuses);

    // A restarted agent publishes its journaled state from its first gossip round, so peers
    // never see this start without it (and never give its running slot away).
    let values: BTreeMap<String, GroupValues> = settings
        .groups
        .iter()
        .zip(&keepers)
        .map(|(group, keeper)| (group.name.clone(), keeper.values()))
        .collect();
    let mesh = match mesh_settings.clone() {
        Some(mesh_settings) => {
            let names: Vec<String> = values.keys().cloned().collect();
            match &mesh_settings.keyring {
                Some(keyring) => {
                    info!(key = %keyring.primary().id(), "gossip sealed with the cluster key");
                }
                None => warn!(
                    listen = %mesh_settings.listen,
                    "mesh.insecure: gossip is neither authenticated nor encrypted; anyone who can reach the gossip port can change this mesh's state"
                ),
            }
            let mesh = Mesh::start_with_values(mesh_settings, &names, &values, None).await?;
            Some(Arc::new(mesh))
        }
        None => None,
    };
    let (server_stop, server_stop_handle) = Stop::new(Duration::ZERO);
    let catalog = Catalog::default();
    catalog.set(&settings.groups);
    let (peers, share_server) = match (&mesh, mesh_settings.as_ref()) {
        (Some(mesh), Some(mesh_settings)) => {
            let shared = ShareStart {
                settings: &settings.share,
                mesh,
                mesh_settings,
                data_dir: &data_dir,
                cache: &cache,
                catalog: &catalog,
                metrics: &metrics,
            };
            shared.start(server_stop.clone()).await?
        }
        _ => (None, None),
    };
    let steering = Steering::default();
    let histories = Histories::default();
    let notifications = Notifications::start(&settings.notify)?;
    let state = Arc::new(ServerState {
        board: board.clone(),
        metrics: metrics.clone(),
        deployment_root: layout.root().to_owned(),
        node: settings.node.id.clone(),
        admin: AdminToken::new(&token),
        groups: steering.clone(),
        mesh: mesh.clone(),
        public_logs: settings.status.public_logs,
        histories: histories.clone(),
        notifications: notifications.clone(),
    });
    let chronicle = super::chronicle::spawn(
        data_dir.join("history"),
        Arc::clone(&state),
        histories,
        notifications.clone(),
    );
    let server = tokio::spawn(serve(listener, Some(control), state, async move {
        let mut stop = server_stop;
        stop.requested().await;
    }));
    info!(addr = %bound, node = %settings.node.id, groups = settings.groups.len(), "status endpoint listening");

    let (stop, stop_handle) = Stop::new(settings.node.shutdown_grace);
    let mut groups = Groups::new(groups_context(
        board.clone(),
        mesh.clone(),
        peers,
        steering,
        stop.clone(),
    ));
    for (group, keeper) in settings.groups.iter().zip(keepers) {
        let published = values.get(&group.name).cloned().unwrap_or_default();
        groups.start(group.clone(), keeper, published);
    }
    groups.steer();
    let notifier = Notifier::from_env();
    notifier.ready();
    let status_line = notifier.is_enabled().then(|| {
        let (board, notifier) = (board.clone(), notifier.clone());
        tokio::spawn(async move {
            let mut changed_rx = board.subscribe();
            let mut last = String::new();
            while changed_rx.changed().await.is_ok() {
                let line = board.summary_line();
                if line != last {
                    notifier.status(&line);
                    last = line;
                }
            }
        })
    });

    let live = mesh
        .as_ref()
        .map(|mesh| super::live::spawn(board.clone(), Arc::clone(mesh)));

    let mut running = settings;
    loop {
        tokio::select! {
            asked = signals.recv() => match asked {
                Asked::Stop(name) => {
                    info!(signal = name, grace = ?running.node.shutdown_grace, "shutting down");
                    break;
                }
                Asked::Reload => {
                    reload(&mut running, &mut groups, &notifier).await;
                    catalog.set(&running.groups);
                }
            },
            Some(group) = groups.next_unexpected() => {
                error!(group = %group, "a group task ended on its own; shutting down");
                break;
            }
        }
    }
    if let Some(task) = status_line {
        task.abort();
    }
    notifier.stopping();
    notifier.status("stopping: letting running hooks finish");
    stop_handle.request();
    groups.wait_all().await;
    if let Some(task) = live {
        task.abort();
    }
    chronicle.abort();
    notifications.close().await;
    server_stop_handle.request();
    if let Err(e) = server.await {
        warn!(error = %e, "the status endpoint panicked");
    }
    if let Some(task) = share_server {
        let _ = task.await;
    }
    info!("stopped");
    Ok(())
}

/// What starting the release service needs.
struct ShareStart<'a> {
    settings: &'a ShareSettings,
    mesh: &'a Arc<Mesh>,
    mesh_settings: &'a MeshSettings,
    data_dir: &'a Path,
    cache: &'a ReleaseCache,
    catalog: &'a Catalog,
    metrics: &'a Metrics,
}

impl ShareStart<'_> {
    /// With a sealed mesh: fetching from peers, and serving them unless `uploads` is 0 (its
    /// port then gossiped). Gossip in the clear shares nothing: anyone could ask.
    async fn start(
        self,
        stop: Stop,
    ) -> Result<(Option<Peers>, Option<tokio::task::JoinHandle<()>>), StartError> {
        let Some(ring) = self.mesh_settings.keyring.clone() else {
            return Ok((None, None));
        };
        let peers = Peers::new(
            Arc::clone(&ring),
            Arc::clone(self.mesh),
            self.mesh_settings.cluster.clone(),
            self.metrics.clone(),
            self.mesh_settings.interval.saturating_mul(WARMUP_ROUNDS),
            self.mesh_settings.interval,
        );
        if self.settings.uploads == 0 {
            info!("mesh.share.uploads is 0: this host fetches releases from peers but serves none");
            return Ok((Some(peers), None));
        }
        // The gossip port over TCP; a gossip port the system picked (0) has no TCP twin
        // reserved, so the system picks this one too (it is gossiped either way).
        let listen = self.settings.listen.unwrap_or_else(|| {
            let gossip = self.mesh_settings.listen;
            let port = match gossip.port() {
                0 => 0,
                _ => self.mesh.gossip_addr().port(),
            };
            SocketAddr::new(gossip.ip(), port)
        });
        let listener =
            TcpListener::bind(listen)
                .await
                .map_err(|source| StartError::ShareListen {
                    addr: listen,
                    source,
                })?;
        let port = listener.local_addr().map_or(listen.port(), |a| a.port());
        self.mesh.publish_share(port).await;
        let server = Server {
            ring,
            mesh: self.mesh_settings.cluster.clone(),
            data_dir: self.data_dir.to_owned(),
            cache: self.cache.clone(),
            catalog: self.catalog.clone(),
            uploads: self.settings.uploads,
            upload_rate: self.settings.upload_rate,
            metrics: self.metrics.clone(),
        };
        let task = tokio::spawn(serve::run(server, listener, async move {
            let mut stop = stop;
            stop.requested().await;
        }));
        Ok((Some(peers), Some(task)))
    }
}

/// Gossip rounds a (re)started agent listens before it starts a deployment.
const WARMUP_ROUNDS: u32 = 3;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// SIGHUP: reads the config file again. Groups added, removed or changed apply at once, each
/// between its deployments; a running deployment goes on. Settings that only a restart can
/// change are named. A file that does not load changes nothing, and the log says why.
async fn reload(running: &mut Settings, groups: &mut Groups, notifier: &Notifier) {
    notifier.reloading();
    let path = running.path.clone();
    match crate::config::load(&path) {
        Ok(new) => {
            for section in restart_only(running, &new) {
                warn!(config = %path.display(), section, "{section} changed; it applies at the next restart of the agent");
            }
            info!(config = %path.display(), groups = new.groups.len(), "config reloaded");
            groups.reload(&new.groups).await;
            running.groups = new.groups;
        }
        Err(e) => {
            error!(error = %e, "config not reloaded: the running config stays in force");
        }
    }
    notifier.ready();
}

/// The sections of `new` that differ from `old` and apply only at a start.
fn restart_only(old: &Settings, new: &Settings) -> Vec<&'static str> {
    [
        ("node", old.node != new.node),
        ("status", old.status != new.status),
        ("log", old.log != new.log),
        ("hooks", old.hooks != new.hooks),
        ("mesh", old.mesh != new.mesh || old.share != new.share),
        ("notify", old.notify != new.notify),
    ]
    .into_iter()
    .filter_map(|(section, changed)| changed.then_some(section))
    .collect()
}
