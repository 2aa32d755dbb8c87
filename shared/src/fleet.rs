//! The fleet view (`GET /v1/fleet`, `shoal fleet`): every node and each group's rollout,
//! assembled from what each node publishes over gossip. Pure, so the rules below are tested
//! here once and every agent answers the same for the same gossip.
//!
//! The rules:
//! - Nodes, alive or dead, are listed by id; a node listed twice counts once (the first entry).
//! - A node is a member of the groups it lists; values it publishes for other groups are ignored.
//! - A node's phase in a group is its step on its target; `idle` when it has no target, or when
//!   it is done on the group's deployment (nothing newer to do).
//! - A group's deployment is the answering node's own target when it is a member with one (it
//!   acts on that one); otherwise the target the most alive members have, then the most
//!   members, then the newest release version, then the smallest deployment id.
//! - `done` counts members done on the deployment; `total` counts every member, alive or dead.
//! - A halt is in force when a member publishes it for the deployment and no member has
//!   resumed its epoch (a published resume, or a state in a later epoch). The newest epoch
//!   wins; among equals, the halt of the first node by id. Its output is what the halting
//!   host gossips of its failed script, if that host is a member.
//! - What people watch comes from each member's `live` value for the deployment (a value
//!   about another deployment is ignored): a member's event, canary mark and times; the
//!   rollout's start (the first member to learn of it), its end (the last member done, once
//!   all are), its deadline (the latest a live member sees, while it goes on) and whether it
//!   waits for a promote (a live member says so). A running member whose release's files are
//!   installed runs that release.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::gossip::GroupValues;
use crate::gossip::{GroupState, Halt, Health, Live, Step, Target, output_tail, short_reason};
use crate::release::Version;
use crate::release::rollback::RollbackOrder;
use crate::status::{
    Fleet, FleetGroup, FleetNode, FleetNodeGroup, GroupStatus, HaltInfo, Phase, RollbackInfo,
};
use crate::time::{format_rfc3339, parse_rfc3339};

/// One node as the answering node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Node id.
    pub id: String,
    /// Whether the failure detector deems it alive.
    pub alive: bool,
    /// The groups it belongs to.
    pub groups: Vec<String>,
    /// What it publishes, by group.
    pub values: BTreeMap<String, GroupValues>,
}

/// The phase of a node with nothing to do in a group.
pub const IDLE: &str = "idle";

/// The fleet as `node` sees it from `views` (which should include `node` itself).
pub fn assemble(node: &str, views: Vec<NodeView>) -> Fleet {
    let nodes = distinct(views);
    let names: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n.groups.iter().map(String::as_str))
        .collect();
    let groups: Vec<(FleetGroup, Option<Target>)> = names
        .into_iter()
        .map(|name| {
            let members = members(&nodes, name);
            let deployment = deployment(node, &members);
            (group(name, &members, deployment.as_ref()), deployment)
        })
        .collect();
    let deployments: BTreeMap<&str, Option<&Target>> = groups
        .iter()
        .map(|(g, target)| (g.name.as_str(), target.as_ref()))
        .collect();
    let fleet_nodes = nodes
        .iter()
        .map(|n| fleet_node(n, |group| deployments.get(group).copied().flatten()))
        .collect();
    Fleet {
        node: node.to_owned(),
        nodes: fleet_nodes,
        groups: groups.into_iter().map(|(g, _)| g).collect(),
    }
}

/// Nodes by id, each once (the first entry wins), each with its groups sorted and once.
fn distinct(views: Vec<NodeView>) -> Vec<NodeView> {
    let mut nodes: Vec<NodeView> = Vec::with_capacity(views.len());
    for mut view in views {
        if nodes.iter().any(|n| n.id == view.id) {
            continue;
        }
        view.groups.sort();
        view.groups.dedup();
        nodes.push(view);
    }
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

/// A member of a group and what it publishes there.
struct Member<'a> {
    id: &'a str,
    alive: bool,
    values: Option<&'a GroupValues>,
}

impl Member<'_> {
    fn state(&self) -> Option<&GroupState> {
        self.values?.state.as_ref()
    }

    fn target(&self) -> Option<&Target> {
        self.state()?.target.as_ref()
    }

    /// What it says it does in `target`'s deployment.
    fn live_on(&self, target: &Target) -> Option<&Live> {
        self.values?.live.as_ref().filter(|l| l.id == target.id)
    }

    /// Its step on `target`, if that is its target.
    fn step_on(&self, target: &Target) -> Option<Step> {
        let state = self.state()?;
        (state.target.as_ref()?.id == target.id)
            .then_some(state.step)
            .flatten()
    }
}

/// The members of `group`, by id.
fn members<'a>(nodes: &'a [NodeView], group: &str) -> Vec<Member<'a>> {
    nodes
        .iter()
        .filter(|n| n.groups.iter().any(|g| g == group))
        .map(|n| Member {
            id: &n.id,
            alive: n.alive,
            values: n.values.get(group),
        })
        .collect()
}

/// The deployment of the group: see the module's rules.
fn deployment(node: &str, members: &[Member<'_>]) -> Option<Target> {
    if let Some(own) = members
        .iter()
        .find(|m| m.id == node)
        .and_then(Member::target)
    {
        return Some(own.clone());
    }
    let mut counts: BTreeMap<&Target, (usize, usize)> = BTreeMap::new();
    for member in members {
        if let Some(target) = member.target() {
            let (alive, all) = counts.entry(target).or_default();
            *alive += usize::from(member.alive);
            *all += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(target, (alive, all))| {
            (
                *alive,
                *all,
                Version::parse(&target.revision).ok(),
                Reverse(target.id.as_str()),
            )
        })
        .map(|(target, _)| target.clone())
}

/// One group's line: its deployment, how many members are where in it, its times and halt.
fn group(name: &str, members: &[Member<'_>], deployment: Option<&Target>) -> FleetGroup {
    let mut line = FleetGroup {
        name: name.to_owned(),
        total: members.len(),
        ..FleetGroup::default()
    };
    let Some(target) = deployment else {
        return line;
    };
    let count = |steps: &[Step]| {
        members
            .iter()
            .filter(|m| m.step_on(target).is_some_and(|s| steps.contains(&s)))
            .count()
    };
    line.deployment = Some(target.id.clone());
    line.target = Some(target.revision.clone());
    line.done = count(&[Step::Done]);
    line.running = count(&[Step::Running]);
    line.failed = count(&[Step::Failed, Step::Reverting, Step::Reverted]);
    line.halted = halt_in_force(members, target);
    let promote = members
        .iter()
        .filter_map(|m| m.values?.promote.as_ref())
        .find(|p| p.id == target.id);
    line.promoted_by = promote.map(|p| p.by.clone().unwrap_or_else(|| "an operator".to_owned()));
    line.resumed_by = members
        .iter()
        .filter_map(|m| m.values?.resume.as_ref())
        .filter(|r| r.id == target.id)
        .max_by_key(|r| r.epoch)
        .map(|r| r.by.clone().unwrap_or_else(|| "an operator".to_owned()));
    line.rollback = members
        .iter()
        .filter_map(|m| m.values?.rollback.as_ref())
        .find_map(|taken| {
            let order = RollbackOrder::parse(&taken.order).ok()?;
            (order.group == name && order.deployment_id() == target.id).then(|| RollbackInfo {
                from: order.from,
                by: order.by,
                signer: taken.signer.clone(),
                issued: format_rfc3339(order.issued),
            })
        });
    let lives: Vec<(&Member<'_>, &Live)> = members
        .iter()
        .filter_map(|m| Some((m, m.live_on(target)?)))
        .collect();
    line.started = lives.iter().filter_map(|(_, l)| l.seen).min().map(time);
    if line.done == line.total {
        line.finished = lives.iter().filter_map(|(_, l)| l.done_at).max().map(time);
    }
    line.promote_pending =
        line.halted.is_none() && lives.iter().any(|(m, l)| m.alive && l.promote_pending);
    if line.finished.is_none() && line.halted.is_none() && !line.promote_pending {
        line.deadline = lives
            .iter()
            .filter(|(m, _)| m.alive)
            .filter_map(|(_, l)| l.deadline)
            .max()
            .map(time);
    }
    if let Some(halt) = &mut line.halted
        && let Some(live) = members
            .iter()
            .find(|m| m.id == halt.host)
            .and_then(|m| m.live_on(target))
    {
        halt.at = live.failed_at.map(time);
        halt.output.clone_from(&live.tail);
    }
    line
}

/// The [`Live`] of a group's status: `None` without a deployment.
pub fn live_of(status: &GroupStatus) -> Option<Live> {
    let rollout = status.rollout.as_ref()?;
    let running = matches!(
        status.phase,
        Phase::Deploying | Phase::CheckingHealth | Phase::Reverting
    );
    let ours = status.target_revision.as_deref() == Some(rollout.revision.as_str());
    Some(Live {
        id: rollout.deployment.clone(),
        seen: secs(rollout.seen.as_deref()),
        step_since: secs(rollout.step_since.as_deref()),
        event: status.current_event.clone().filter(|_| running),
        event_since: secs(status.event_since.as_deref()).filter(|_| running),
        installed: running && ours && installed(status),
        canary: rollout.canary,
        waiting_for: rollout.waiting_for.as_deref().map(short_reason),
        promote_pending: rollout.promote_pending,
        deadline: secs(rollout.deadline.as_deref()),
        done_at: secs(rollout.done_at.as_deref()),
        failed_at: secs(rollout.failed_at.as_deref()),
        // Bounded again: the value must stay small whatever status holds.
        tail: output_tail(&rollout.failure_output.join("\n")),
    })
}

/// Whether the run going on has installed its release's files: its record shows `Install`
/// done.
fn installed(status: &GroupStatus) -> bool {
    status.last_deployment.as_ref().is_some_and(|d| {
        d.result == "in-progress"
            && d.events
                .iter()
                .any(|e| e.name == "Install" && e.status == "succeeded")
    })
}

fn secs(time: Option<&str>) -> Option<u64> {
    u64::try_from(parse_rfc3339(time?)?).ok()
}

/// Seconds since the epoch as RFC 3339.
fn time(secs: u64) -> String {
    format_rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The halt in force for `target`, if any member publishes one.
fn halt_in_force(members: &[Member<'_>], target: &Target) -> Option<HaltInfo> {
    let resumed = members
        .iter()
        .filter_map(|m| {
            let resume = m.values?.resume.as_ref().filter(|r| r.id == target.id);
            let from_resume = resume.map(|r| r.epoch.saturating_add(1));
            let from_state = m
                .state()
                .filter(|_| m.target() == Some(target))
                .map(|s| s.epoch);
            from_resume.max(from_state)
        })
        .max()
        .unwrap_or(0);
    members
        .iter()
        .filter_map(|m| m.values?.halt.as_ref())
        .filter(|h| h.id == target.id && h.epoch >= resumed)
        // Members are in id order, so among halts of one epoch the first member's wins.
        .fold(None::<&Halt>, |best, h| match best {
            Some(best) if best.epoch >= h.epoch => Some(best),
            _ => Some(h),
        })
        .map(|h| HaltInfo {
            host: h.host.clone(),
            reason: h.reason.clone(),
            by: h.by.clone(),
            ..HaltInfo::default()
        })
}

/// One node's row: each of its groups with its revision, phase, health and what it does.
fn fleet_node<'a>(node: &NodeView, deployment: impl Fn(&str) -> Option<&'a Target>) -> FleetNode {
    let groups = node
        .groups
        .iter()
        .map(|name| {
            let values = node.values.get(name);
            let state = values.and_then(|v| v.state.as_ref());
            let mut row = FleetNodeGroup {
                name: name.clone(),
                revision: state.and_then(|s| s.revision.clone()),
                phase: phase(state, deployment(name)),
                health: state.map_or(Health::Unknown, |s| s.health),
                ..FleetNodeGroup::default()
            };
            if let Some(state) = state {
                row.failure = failure_of(state);
                live_row(&mut row, state, values.and_then(|v| v.live.as_ref()));
            }
            row
        })
        .collect();
    FleetNode {
        id: node.id.clone(),
        alive: node.alive,
        duplicate: false,
        groups,
    }
}

/// What a node's `live` value adds to its row, when it is about the node's own target.
fn live_row(row: &mut FleetNodeGroup, state: &GroupState, live: Option<&Live>) {
    let (Some(target), Some(step)) = (state.target.as_ref(), state.step) else {
        return;
    };
    let live = live.filter(|l| l.id == target.id);
    if matches!(step, Step::Waiting | Step::Running) {
        if live.is_some_and(|l| l.installed) {
            row.revision = Some(target.revision.clone());
        } else {
            row.target = Some(target.revision.clone());
        }
    }
    let Some(live) = live else {
        return;
    };
    row.canary = live.canary;
    row.phase_since = live.step_since.map(time);
    if matches!(step, Step::Running | Step::Reverting) {
        row.event.clone_from(&live.event);
        row.event_since = live.event_since.map(time);
    }
    if step == Step::Waiting {
        row.waiting_for.clone_from(&live.waiting_for);
    }
}

/// Why a member failed on its target, while it shows failed, reverting or reverted.
fn failure_of(state: &GroupState) -> Option<String> {
    matches!(state.step?, Step::Failed | Step::Reverting | Step::Reverted)
        .then(|| state.reason.clone())
        .flatten()
}

/// A node's step on its target; `idle` with none, or done on the group's deployment.
fn phase(state: Option<&GroupState>, deployment: Option<&Target>) -> String {
    let Some((target, step)) = state.and_then(|s| Some((s.target.as_ref()?, s.step?))) else {
        return IDLE.to_owned();
    };
    let current = deployment.is_none_or(|d| d.id == target.id);
    if step == Step::Done && current {
        return IDLE.to_owned();
    }
    step.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::Resume;
    use crate::status::{DeploymentSummary, EventSummary, Rollout};

    fn target(revision: &str) -> Target {
        Target {
            id: format!("d-{revision}"),
            revision: revision.to_owned(),
            digest: format!("git:{revision}"),
        }
    }

    fn state(revision: Option<&str>, on: Option<(&str, Step)>) -> GroupState {
        GroupState {
            revision: revision.map(str::to_owned),
            digest: revision.map(|r| format!("git:{r}")),
            target: on.map(|(t, _)| target(t)),
            step: on.map(|(_, s)| s),
            epoch: 0,
            failures: 0,
            reason: None,
            health: Health::Healthy,
            members: None,
            forgets: Vec::new(),
            leaving: false,
        }
    }

    fn node(id: &str, alive: bool, web: Option<GroupState>) -> NodeView {
        NodeView {
            id: id.to_owned(),
            alive,
            groups: vec!["web".to_owned()],
            values: [(
                "web".to_owned(),
                GroupValues {
                    state: web,
                    ..GroupValues::default()
                },
            )]
            .into(),
        }
    }

    fn halt(id: &str, epoch: u32, host: &str) -> Halt {
        Halt {
            id: id.to_owned(),
            epoch,
            host: host.to_owned(),
            reason: format!("{host} failed: ValidateService exit 1"),
            by: None,
        }
    }

    fn web(fleet: &Fleet) -> &FleetGroup {
        fleet.groups.iter().find(|g| g.name == "web").expect("web")
    }

    fn phases(fleet: &Fleet) -> Vec<(&str, &str)> {
        fleet
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.groups[0].phase.as_str()))
            .collect()
    }

    #[test]
    fn every_node_dead_or_alive_is_listed_once_by_id() {
        let fleet = assemble(
            "b",
            vec![
                node("c", false, None),
                node("b", true, Some(state(Some("v1"), None))),
                node("a", true, None),
                node("c", true, None),
            ],
        );
        let ids: Vec<(&str, bool)> = fleet
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.alive))
            .collect();
        assert_eq!(ids, [("a", true), ("b", true), ("c", false)]);
        assert_eq!(fleet.node, "b");
        assert_eq!(fleet.nodes[1].groups[0].revision.as_deref(), Some("v1"));
        assert_eq!(fleet.nodes[1].groups[0].health, Health::Healthy);
        assert_eq!(fleet.nodes[0].groups[0].health, Health::Unknown);
        assert_eq!(web(&fleet).total, 3);
    }

    #[test]
    fn groups_are_the_union_of_every_nodes_groups_by_name() {
        let mut api = node("b", true, None);
        api.groups = vec!["api".into(), "web".into(), "api".into()];
        let fleet = assemble("a", vec![node("a", true, None), api]);
        let names: Vec<&str> = fleet.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!(fleet.nodes[1].groups.len(), 2);
        assert_eq!((fleet.groups[0].total, fleet.groups[1].total), (1, 2));
        assert_eq!(fleet.groups[0].deployment, None);
    }

    #[test]
    fn values_for_a_group_a_node_does_not_list_are_ignored() {
        let mut stray = node("b", true, Some(state(None, Some(("v9", Step::Running)))));
        stray.groups.clear();
        let fleet = assemble("a", vec![node("a", true, None), stray]);
        assert_eq!(web(&fleet).total, 1);
        assert_eq!(web(&fleet).target, None);
        assert!(fleet.nodes[1].groups.is_empty());
    }

    #[test]
    fn a_phase_is_the_step_on_the_target_or_idle() {
        let fleet = assemble(
            "a",
            vec![
                node("a", true, Some(state(Some("v2"), Some(("v2", Step::Done))))),
                node(
                    "b",
                    true,
                    Some(state(Some("v1"), Some(("v2", Step::Running)))),
                ),
                node(
                    "c",
                    true,
                    Some(state(Some("v1"), Some(("v2", Step::Waiting)))),
                ),
                node("d", true, Some(state(Some("v1"), None))),
                node("e", true, None),
                node("f", true, Some(state(Some("v1"), Some(("v1", Step::Done))))),
                node(
                    "g",
                    true,
                    Some(state(Some("v1"), Some(("v2", Step::Reverted)))),
                ),
            ],
        );
        assert_eq!(
            phases(&fleet),
            [
                ("a", "idle"),
                ("b", "running"),
                ("c", "waiting"),
                ("d", "idle"),
                ("e", "idle"),
                // Done on an older release than the group's: it has not taken the new one yet.
                ("f", "done"),
                ("g", "reverted"),
            ]
        );
    }

    #[test]
    fn the_deployment_is_the_answering_nodes_own_target_when_it_is_a_member() {
        let views = vec![
            node("a", true, Some(state(None, Some(("v1.0.0", Step::Done))))),
            node(
                "b",
                true,
                Some(state(None, Some(("v2.0.0", Step::Waiting)))),
            ),
            node(
                "c",
                true,
                Some(state(None, Some(("v2.0.0", Step::Waiting)))),
            ),
        ];
        let fleet = assemble("a", views.clone());
        assert_eq!(web(&fleet).target.as_deref(), Some("v1.0.0"));
        assert_eq!(web(&fleet).deployment.as_deref(), Some("d-v1.0.0"));
        // Seen from a node outside the group: the target most alive members have.
        let fleet = assemble("z", views);
        assert_eq!(web(&fleet).target.as_deref(), Some("v2.0.0"));
    }

    #[test]
    fn otherwise_the_most_alive_members_then_members_then_the_newest_version_win() {
        let on = |id: &str, alive: bool, revision: &str| {
            node(
                id,
                alive,
                Some(state(None, Some((revision, Step::Waiting)))),
            )
        };
        let pick = |views: Vec<NodeView>| {
            assemble("me", views)
                .groups
                .into_iter()
                .next()
                .and_then(|g| g.target)
        };
        // Alive members count before dead ones.
        let views = vec![
            on("a", true, "v1.0.0"),
            on("b", false, "v2.0.0"),
            on("c", false, "v2.0.0"),
        ];
        assert_eq!(pick(views).as_deref(), Some("v1.0.0"));
        // With none alive, the most members.
        let views = vec![
            on("a", false, "v1.0.0"),
            on("b", false, "v2.0.0"),
            on("c", false, "v2.0.0"),
        ];
        assert_eq!(pick(views).as_deref(), Some("v2.0.0"));
        // A tie goes to the newest version (semver, not text: v10 after v9).
        let views = vec![on("a", true, "v10.0.0"), on("b", true, "v9.0.0")];
        assert_eq!(pick(views).as_deref(), Some("v10.0.0"));
        // Then to the smallest deployment id.
        let views = vec![on("a", true, "zeta"), on("b", true, "alpha")];
        assert_eq!(pick(views).as_deref(), Some("alpha"));
        // No member has a release.
        assert_eq!(pick(vec![node("a", true, None)]), None);
    }

    #[test]
    fn the_answering_node_without_a_release_looks_at_the_others() {
        let fleet = assemble(
            "a",
            vec![
                node("a", true, Some(state(Some("v1"), None))),
                node("b", true, Some(state(None, Some(("v2", Step::Running))))),
            ],
        );
        assert_eq!(web(&fleet).target.as_deref(), Some("v2"));
    }

    #[test]
    fn done_counts_members_done_on_the_deployment_and_total_every_member() {
        let fleet = assemble(
            "a",
            vec![
                node("a", true, Some(state(Some("v2"), Some(("v2", Step::Done))))),
                node(
                    "b",
                    false,
                    Some(state(Some("v2"), Some(("v2", Step::Done)))),
                ),
                node("c", true, Some(state(Some("v1"), Some(("v1", Step::Done))))),
                node(
                    "d",
                    true,
                    Some(state(Some("v1"), Some(("v2", Step::Running)))),
                ),
                node("e", false, None),
            ],
        );
        let web = web(&fleet);
        assert_eq!((web.done, web.total), (2, 5));
        assert_eq!(web.halted, None);
    }

    fn halted_fleet(values: Vec<(&str, GroupValues)>) -> Option<HaltInfo> {
        let views = values
            .into_iter()
            .map(|(id, values)| NodeView {
                id: id.to_owned(),
                alive: true,
                groups: vec!["web".to_owned()],
                values: [("web".to_owned(), values)].into(),
            })
            .collect();
        web(&assemble("a", views)).halted.clone()
    }

    fn on_v2(epoch: u32, halt: Option<Halt>, resume: Option<Resume>) -> GroupValues {
        let mut state = state(Some("v1"), Some(("v2", Step::Waiting)));
        state.epoch = epoch;
        GroupValues {
            state: Some(state),
            halt,
            resume,
            promote: None,
            live: None,
            rollback: None,
        }
    }

    #[test]
    fn a_rollback_is_shown_on_the_deployment_its_order_starts_only() {
        let order = RollbackOrder {
            group: "web".into(),
            to: "v1".into(),
            from: "v2".into(),
            issued: 1_796_652_000,
            by: "alice@b".into(),
        };
        let taken = crate::gossip::Rollback {
            order: order.text(),
            signature: String::new(),
            signer: "ops@example.com".into(),
        };
        let line = |id: String| {
            let mut values = on_v2(0, None, None);
            if let Some(target) = values.state.as_mut().and_then(|s| s.target.as_mut()) {
                target.id = id;
            }
            values.rollback = Some(taken.clone());
            let views = vec![NodeView {
                id: "a".into(),
                alive: true,
                groups: vec!["web".to_owned()],
                values: [("web".to_owned(), values)].into(),
            }];
            web(&assemble("a", views)).rollback.clone()
        };
        assert_eq!(
            line(order.deployment_id()),
            Some(RollbackInfo {
                from: "v2".into(),
                by: "alice@b".into(),
                signer: "ops@example.com".into(),
                issued: "2026-12-07T14:00:00Z".into(),
            })
        );
        assert_eq!(line("d-v2".into()), None, "another deployment");
    }

    #[test]
    fn a_halt_published_by_any_member_for_the_deployment_is_in_force() {
        let halted = halted_fleet(vec![
            ("a", on_v2(0, None, None)),
            ("b", on_v2(0, Some(halt("d-v2", 0, "c")), None)),
        ]);
        assert_eq!(
            halted,
            Some(HaltInfo {
                host: "c".into(),
                reason: "c failed: ValidateService exit 1".into(),
                ..HaltInfo::default()
            })
        );
    }

    #[test]
    fn a_halt_of_another_deployment_is_not() {
        let halted = halted_fleet(vec![
            ("a", on_v2(0, None, None)),
            ("b", on_v2(0, Some(halt("d-v1", 0, "b")), None)),
        ]);
        assert_eq!(halted, None);
    }

    #[test]
    fn a_resume_of_its_epoch_voids_a_halt() {
        let resume = Resume {
            id: "d-v2".into(),
            epoch: 0,
            by: None,
        };
        let halted = halted_fleet(vec![
            ("a", on_v2(0, Some(halt("d-v2", 0, "a")), None)),
            ("b", on_v2(0, None, Some(resume))),
        ]);
        assert_eq!(halted, None);
        // A member already in the next epoch has learned a resume.
        let halted = halted_fleet(vec![
            ("a", on_v2(0, Some(halt("d-v2", 0, "a")), None)),
            ("b", on_v2(1, None, None)),
        ]);
        assert_eq!(halted, None);
        // A halt of the new epoch is in force again.
        let halted = halted_fleet(vec![
            ("a", on_v2(1, Some(halt("d-v2", 1, "a")), None)),
            ("b", on_v2(1, Some(halt("d-v2", 0, "b")), None)),
        ]);
        assert_eq!(halted.map(|h| h.host).as_deref(), Some("a"));
    }

    fn live(id: &str, change: impl FnOnce(&mut Live)) -> Live {
        let mut live = Live {
            id: id.to_owned(),
            ..Live::default()
        };
        change(&mut live);
        live
    }

    fn with_live(mut view: NodeView, live: Live) -> NodeView {
        if let Some(values) = view.values.get_mut("web") {
            values.live = Some(live);
        }
        view
    }

    #[test]
    fn a_canary_shows_its_event_and_the_rollout_its_times() {
        let canary = with_live(
            node(
                "a",
                true,
                Some(state(Some("v1"), Some(("v2", Step::Running)))),
            ),
            live("d-v2", |l| {
                l.seen = Some(1_000);
                l.canary = true;
                l.step_since = Some(1_010);
                l.event = Some("ValidateService".into());
                l.event_since = Some(1_020);
                l.installed = true;
                l.deadline = Some(1_610);
            }),
        );
        let waiting = with_live(
            node(
                "b",
                true,
                Some(state(Some("v1"), Some(("v2", Step::Waiting)))),
            ),
            live("d-v2", |l| {
                l.seen = Some(990);
                l.waiting_for = Some("waiting for the canaries to be healthy".into());
                l.deadline = Some(1_630);
            }),
        );
        // A value about another deployment says nothing about this one.
        let stale = with_live(
            node(
                "c",
                true,
                Some(state(Some("v1"), Some(("v2", Step::Waiting)))),
            ),
            live("d-v1", |l| {
                l.seen = Some(10);
                l.canary = true;
            }),
        );
        let fleet = assemble("a", vec![canary, waiting, stale]);
        let rows: Vec<&FleetNodeGroup> = fleet.nodes.iter().map(|n| &n.groups[0]).collect();
        assert_eq!(
            rows[0].revision.as_deref(),
            Some("v2"),
            "installed: runs v2"
        );
        assert_eq!(rows[0].target, None);
        assert!(rows[0].canary);
        assert_eq!(rows[0].event.as_deref(), Some("ValidateService"));
        assert_eq!(rows[0].event_since.as_deref(), Some("1970-01-01T00:17:00Z"));
        assert_eq!(rows[1].revision.as_deref(), Some("v1"));
        assert_eq!(rows[1].target.as_deref(), Some("v2"));
        assert_eq!(rows[1].event, None);
        assert_eq!(
            rows[1].waiting_for.as_deref(),
            Some("waiting for the canaries to be healthy")
        );
        assert!(!rows[2].canary);
        let web = web(&fleet);
        assert_eq!((web.running, web.done, web.failed), (1, 0, 0));
        assert_eq!(web.started.as_deref(), Some("1970-01-01T00:16:30Z"));
        assert_eq!(web.finished, None);
        assert_eq!(web.deadline.as_deref(), Some("1970-01-01T00:27:10Z"));
        assert!(!web.promote_pending);
    }

    #[test]
    fn a_pending_promote_replaces_the_deadline_and_the_last_done_ends_the_rollout() {
        let done = |id: &str, at: u64| {
            with_live(
                node(id, true, Some(state(Some("v2"), Some(("v2", Step::Done))))),
                live("d-v2", |l| {
                    l.seen = Some(100);
                    l.done_at = Some(at);
                    l.canary = id == "a";
                }),
            )
        };
        let pending = with_live(
            node(
                "b",
                true,
                Some(state(Some("v1"), Some(("v2", Step::Waiting)))),
            ),
            live("d-v2", |l| {
                l.promote_pending = true;
                l.deadline = Some(750);
            }),
        );
        let fleet = assemble("z", vec![done("a", 200), pending]);
        assert!(web(&fleet).promote_pending);
        assert_eq!(web(&fleet).deadline, None);
        let fleet = assemble("z", vec![done("a", 200), done("b", 260)]);
        assert_eq!(
            web(&fleet).finished.as_deref(),
            Some("1970-01-01T00:04:20Z")
        );
        assert_eq!(web(&fleet).deadline, None);
    }

    #[test]
    fn a_halt_carries_the_failed_scripts_output_from_the_host_that_failed() {
        let mut failed = state(Some("v1"), Some(("v2", Step::Reverted)));
        failed.failures = 1;
        let values = |halt: Option<Halt>, live: Option<Live>| GroupValues {
            state: Some(failed.clone()),
            halt,
            live,
            ..GroupValues::default()
        };
        let tail = vec!["checking /health".to_owned(), "HTTP 500".to_owned()];
        let halted = halted_fleet(vec![
            ("a", values(Some(halt("d-v2", 0, "c")), None)),
            (
                "c",
                values(
                    Some(halt("d-v2", 0, "c")),
                    Some(live("d-v2", |l| {
                        l.failed_at = Some(60);
                        l.tail.clone_from(&tail);
                    })),
                ),
            ),
        ])
        .expect("halted");
        assert_eq!(halted.output, tail);
        assert_eq!(halted.at.as_deref(), Some("1970-01-01T00:01:00Z"));
    }

    #[test]
    fn among_halts_of_one_epoch_the_first_node_by_id_wins() {
        let halted = halted_fleet(vec![
            ("b", on_v2(0, Some(halt("d-v2", 0, "x")), None)),
            ("a", on_v2(0, Some(halt("d-v2", 0, "y")), None)),
        ]);
        assert_eq!(halted.map(|h| h.host).as_deref(), Some("y"));
    }

    fn deploying(event: &str, done: &[&str]) -> GroupStatus {
        let mut status = GroupStatus::starting("web", "shop", "git");
        status.phase = Phase::Deploying;
        status.target_revision = Some("v2".into());
        status.current_event = Some(event.into());
        status.event_since = Some("2026-12-07T10:00:30Z".into());
        status.rollout = Some(Rollout {
            deployment: "d-0123456789ab".into(),
            revision: "v2".into(),
            step: "running".into(),
            canary: true,
            seen: Some("2026-12-07T10:00:00Z".into()),
            failure_output: vec!["x".repeat(1000); 20],
            ..Rollout::default()
        });
        status.last_deployment = Some(DeploymentSummary {
            id: "d-0123456789ab".into(),
            group: "web".into(),
            revision: "v2".into(),
            previous_revision: Some("v1".into()),
            reverts: None,
            result: "in-progress".into(),
            started: "2026-12-07T10:00:10Z".into(),
            finished: None,
            error: None,
            events: done
                .iter()
                .map(|name| EventSummary {
                    name: (*name).into(),
                    status: "succeeded".into(),
                    duration_ms: 1,
                    exit_code: Some(0),
                    message: None,
                })
                .collect(),
        });
        status
    }

    #[test]
    fn a_running_canary_gossips_its_event_and_whether_it_serves_the_release() {
        let before = live_of(&deploying("BeforeInstall", &["ApplicationStop"])).expect("live");
        assert_eq!(before.id, "d-0123456789ab");
        assert_eq!(before.event.as_deref(), Some("BeforeInstall"));
        assert_eq!(before.event_since, Some(1_796_637_630));
        assert_eq!(before.seen, Some(1_796_637_600));
        assert!(before.canary && !before.installed);
        // Bounded: at most so many lines, each cut short.
        assert_eq!(before.tail.len(), crate::gossip::MAX_TAIL_LINES);
        assert!(before.tail.iter().all(|l| l.len() < 200));
        let after = live_of(&deploying("ValidateService", &["BeforeInstall", "Install"]));
        assert!(after.expect("live").installed);
    }

    #[test]
    fn an_idle_host_gossips_no_event_and_no_deployment_nothing() {
        let mut idle = deploying("ValidateService", &["Install"]);
        idle.phase = Phase::Idle;
        let live = live_of(&idle).expect("live");
        assert_eq!(
            (live.event, live.event_since, live.installed),
            (None, None, false)
        );
        idle.rollout = None;
        assert_eq!(live_of(&idle), None);
    }
}
