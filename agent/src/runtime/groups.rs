//! The agent's groups while it runs: one task each, started at the start, and added, changed
//! or removed by a reload (SIGHUP) between their deployments, never in the middle of one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use shoal_shared::rollout::{GroupHost, Settings as PlannerSettings};
use tokio::task::JoinSet;
use tracing::{Instrument as _, error, info, warn};

use super::deployer::Deployer;
use super::group::GroupTask;
use super::journal::{JournalError, JournalFile};
use super::keeper::Keeper;
use super::rollback::GroupSteer;
use super::watcher::Watcher;
use crate::channel::cache::ReleaseCache;
use crate::clock::{now_ms, now_rfc3339};
use crate::config::Group;
use crate::coordinate::{GroupValues, Mesh};
use crate::execute::layout::Layout;
use crate::report::http::{Steer, Steering};
use crate::report::{Board, Metrics};
use crate::share::fetch::Peers;
use crate::stop::{Stop, StopHandle};

/// What every group's task shares.
pub(super) struct Context {
    pub(super) node: String,
    pub(super) data_dir: PathBuf,
    pub(super) layout: Layout,
    pub(super) cache: ReleaseCache,
    /// `hooks.runas_env`.
    pub(super) runas_env: Vec<String>,
    pub(super) planner: PlannerSettings,
    pub(super) board: Board,
    pub(super) metrics: Metrics,
    pub(super) mesh: Option<Arc<Mesh>>,
    /// Fetching releases from the mesh's members (a sealed mesh).
    pub(super) peers: Option<Peers>,
    pub(super) steering: Steering,
    /// The agent's shutdown.
    pub(super) stop: Stop,
}

/// A keeper for `group` from its journal under `data_dir`, its planner with `planner` and
/// the group's expected size.
pub(super) fn keeper(
    data_dir: &std::path::Path,
    planner: &PlannerSettings,
    group: &Group,
) -> Result<Keeper, JournalError> {
    let file = JournalFile::of(data_dir, &group.name);
    let journal = file.load()?;
    let host = GroupHost::start(
        &group.name,
        PlannerSettings {
            expected_members: group.expected_members,
            ..planner.clone()
        },
        journal,
        &group.rollout,
        now_ms(),
    );
    Ok(Keeper::new(file, host))
}

/// One group and its task.
struct Member {
    group: Group,
    keeper: Keeper,
    /// Retires the task (between deployments).
    retire: StopHandle,
    /// The task is retired, to be started again with this config (`Some`) or removed.
    after: Option<After>,
}

enum After {
    Change(Box<Group>),
    Remove,
}

/// The groups running, in config order.
pub(super) struct Groups {
    context: Context,
    members: Vec<Member>,
    tasks: JoinSet<String>,
}

impl Groups {
    /// No groups yet.
    pub(super) fn new(context: Context) -> Self {
        Self {
            context,
            members: Vec::new(),
            tasks: JoinSet::new(),
        }
    }

    /// A keeper for `group` from its journal on disk.
    pub(super) fn keeper(&self, group: &Group) -> Result<Keeper, JournalError> {
        keeper(&self.context.data_dir, &self.context.planner, group)
    }

    /// Starts the task of `group`, whose values `published` are in the mesh already.
    pub(super) fn start(&mut self, group: Group, keeper: Keeper, published: GroupValues) {
        let (retire, retire_handle) = Stop::new(std::time::Duration::ZERO);
        self.spawn(&group, &keeper, published, retire);
        self.members.push(Member {
            group,
            keeper,
            retire: retire_handle,
            after: None,
        });
    }

    fn spawn(&mut self, group: &Group, keeper: &Keeper, published: GroupValues, retire: Stop) {
        let context = &self.context;
        let watcher = Watcher::new(
            group.clone(),
            context.data_dir.clone(),
            context.cache.clone(),
            keeper.clone(),
            context.board.clone(),
            context.metrics.clone(),
            seed(&context.node, &group.name),
        )
        .with_peers(context.peers.clone());
        let deployer = Deployer {
            group: group.clone(),
            layout: context.layout.clone(),
            runas_env: context.runas_env.clone(),
            keeper: keeper.clone(),
            board: context.board.clone(),
            metrics: context.metrics.clone(),
            stop: context.stop.clone(),
        };
        let task = GroupTask {
            group: group.clone(),
            keeper: keeper.clone(),
            watcher,
            deployer,
            mesh: context.mesh.clone(),
            published,
            board: context.board.clone(),
            metrics: context.metrics.clone(),
            stop: context.stop.clone(),
            retire,
            check_soon: false,
            look_due: true,
            warmup: Duration::from_millis(context.planner.warmup),
            polling: None,
            probe_soon: false,
            running_check: None,
        };
        let name = group.name.clone();
        let span = tracing::info_span!("group", group = %name);
        self.tasks.spawn(async move {
            task.run().instrument(span).await;
            name
        });
    }

    /// The groups as the config read again says: new ones start now; changed and removed ones
    /// retire their task, which ends once no deployment of theirs runs, and a changed one then
    /// starts again with its new config, from its journal. Groups that did not change go on
    /// untouched.
    pub(super) async fn reload(&mut self, groups: &[Group]) {
        for member in &mut self.members {
            let after = match groups.iter().find(|g| g.name == member.group.name) {
                Some(group) if *group == member.group => continue,
                Some(group) => After::Change(Box::new(group.clone())),
                None => After::Remove,
            };
            let what = match after {
                After::Change(_) => "changed",
                After::Remove => "removed",
            };
            info!(group = %member.group.name, "group {what} in the config; it applies once no deployment of the group runs");
            member.after = Some(after);
            member.retire.request();
        }
        for group in groups {
            if self.members.iter().any(|m| m.group.name == group.name) {
                continue;
            }
            match self.keeper(group) {
                Ok(keeper) => {
                    info!(group = %group.name, "group added by the config");
                    self.context.cache.add_group(&group.name);
                    self.context.metrics.register_group(&group.name);
                    self.context.board.add(keeper.read(|host| {
                        GroupTask::initial_status(group, host, self.context.layout.root())
                    }));
                    self.start(group.clone(), keeper, GroupValues::default());
                }
                Err(e) => {
                    error!(group = %group.name, error = %e, "group added by the config cannot start")
                }
            }
        }
        self.publish_names().await;
        self.steer();
    }

    /// Waits for the next task to end: `Some(name)` of a group that ended on its own (an
    /// error), `None` when every task has ended.
    pub(super) async fn next_unexpected(&mut self) -> Option<String> {
        loop {
            let ended = self.tasks.join_next().await?;
            let name = match ended {
                Ok(name) => name,
                Err(e) => {
                    warn!(error = %e, "a group task panicked");
                    return Some(String::new());
                }
            };
            let Some(i) = self.members.iter().position(|m| m.group.name == name) else {
                continue;
            };
            match self.members[i].after.take() {
                None => return Some(name),
                Some(After::Remove) => {
                    let member = self.members.remove(i);
                    self.context.board.remove(&name);
                    self.context.cache.remove_group(&name);
                    if let Some(mesh) = &self.context.mesh {
                        // Tombstones: peers no longer count this host in the group.
                        mesh.publish(&name, &GroupValues::default()).await;
                    }
                    drop(member);
                    self.publish_names().await;
                    self.steer();
                    info!(group = %name, "group removed");
                }
                Some(After::Change(group)) => {
                    let (retire, retire_handle) = Stop::new(std::time::Duration::ZERO);
                    let keeper = self.members[i].keeper.clone();
                    let published = keeper.values();
                    let channel = group.channel.display();
                    let application = group.application.clone();
                    self.context.board.update(&name, |g| {
                        g.channel = channel;
                        g.application = application;
                    });
                    self.spawn(&group, &keeper, published, retire);
                    let member = &mut self.members[i];
                    member.group = *group;
                    member.retire = retire_handle;
                    info!(group = %name, "group restarted with its new config");
                }
            }
        }
    }

    /// Waits until every task has ended (after the agent's stop was asked for).
    pub(super) async fn wait_all(&mut self) {
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = ended {
                warn!(error = %e, "a group task panicked");
            }
        }
    }

    /// Tells the status endpoint which groups to steer and show.
    pub(super) fn steer(&self) {
        self.context.steering.replace(
            self.members
                .iter()
                .map(|m| {
                    let steer: Arc<dyn Steer> = Arc::new(GroupSteer::new(
                        m.keeper.clone(),
                        &m.group.name,
                        &m.group.allowed_signers,
                        &self.context.data_dir,
                        self.context.layout.root(),
                    ));
                    (m.group.name.clone(), steer)
                })
                .collect(),
        );
    }

    /// Tells the mesh which groups this host is in.
    async fn publish_names(&self) {
        if let Some(mesh) = &self.context.mesh {
            let names: Vec<String> = self.members.iter().map(|m| m.group.name.clone()).collect();
            mesh.publish_groups(&names).await;
        }
    }
}

fn seed(node: &str, group: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(node)
        .chain_update([0])
        .chain_update(group)
        .chain_update(now_rfc3339())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes) | 1
}
