//! `shoal fleet`: every node of the mesh as this host's agent sees it through gossip (from its
//! status endpoint): a table of nodes × groups and a progress line per group, or with `--json`
//! the JSON exactly as the agent serves it.

use std::fmt::Write as _;

use shoal_shared::fleet::IDLE;
use shoal_shared::status::{Fleet, FleetGroup, FleetNode, FleetNodeGroup, Health};
use shoal_shared::time;

use super::client::{self, AgentArgs};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    agent: AgentArgs,
    /// Print the agent's JSON (`GET /v1/fleet`) as served: a stable, documented shape.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> u8 {
    client::show::<Fleet>(args.agent, "/v1/fleet", args.json, |fleet| {
        render(fleet, crate::clock::unix_now())
    })
}

/// The human view at `now`: a summary line, a row per node with what it does in each group,
/// then each group's rollout.
fn render(fleet: &Fleet, now: i64) -> String {
    let dead = fleet.nodes.iter().filter(|n| !n.alive).count();
    let mut out = format!(
        "fleet seen from {}: {} {}, {dead} dead, {} {}\n",
        fleet.node,
        fleet.nodes.len(),
        plural(fleet.nodes.len(), "node", "nodes"),
        fleet.groups.len(),
        plural(fleet.groups.len(), "group", "groups"),
    );
    if fleet.nodes.is_empty() {
        return out;
    }
    let mut header = vec!["NODE".to_owned(), "STATE".to_owned()];
    header.extend(fleet.groups.iter().map(|g| g.name.clone()));
    let rows: Vec<Vec<String>> = fleet
        .nodes
        .iter()
        .map(|n| node_row(n, fleet, now))
        .collect();
    out.push('\n');
    push_table(&mut out, &header, &rows);
    for group in &fleet.groups {
        out.push('\n');
        push_group(&mut out, group, now);
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A node: its id, alive or dead, then per group of the fleet what it does (`-` when it is
/// not a member).
fn node_row(node: &FleetNode, fleet: &Fleet, now: i64) -> Vec<String> {
    let mut row = vec![
        node.id.clone(),
        match (node.alive, node.duplicate) {
            (_, true) => "DUPLICATE",
            (true, false) => "alive",
            (false, false) => "dead",
        }
        .to_owned(),
    ];
    row.extend(fleet.groups.iter().map(|group| {
        node.groups
            .iter()
            .find(|g| g.name == group.name)
            .map_or_else(|| "-".to_owned(), |g| cell(g, now))
    }));
    row
}

/// `v1.0.0 → v2.0.0 running ValidateService 12s canary`: the revision it runs, the one it
/// moves to, its phase, its event and for how long, its canary mark and bad health.
fn cell(g: &FleetNodeGroup, now: i64) -> String {
    let mut cell = g.revision.clone().unwrap_or_else(|| "-".to_owned());
    if let Some(target) = &g.target {
        let _ = write!(cell, " → {target}");
    }
    let _ = write!(cell, " {}", g.phase);
    match (&g.event, &g.event_since) {
        (Some(event), since) => {
            let _ = write!(cell, " {event}");
            if let Some(span) = since.as_deref().and_then(|t| time::since(t, now)) {
                let _ = write!(cell, " {span}");
            }
        }
        (None, _) if g.phase != IDLE => {
            if let Some(span) = g.phase_since.as_deref().and_then(|t| time::since(t, now)) {
                let _ = write!(cell, " {span}");
            }
        }
        (None, _) => {}
    }
    if g.canary {
        cell.push_str(" canary");
    }
    if g.health == Health::Unhealthy {
        cell.push_str(" unhealthy");
    }
    cell
}

/// A group's rollout: release, progress with a bar, times; then what it waits for, its halt
/// and the failed script's last lines, indented.
fn push_group(out: &mut String, group: &FleetGroup, now: i64) {
    let Some(target) = &group.target else {
        let members = plural(group.total, "member", "members");
        let _ = writeln!(
            out,
            "{}  no release yet ({} {members})",
            group.name, group.total
        );
        return;
    };
    let _ = write!(
        out,
        "{}  {target}  {} {}/{} done",
        group.name,
        bar(group.done, group.total),
        group.done,
        group.total
    );
    if group.running > 0 {
        let _ = write!(out, ", {} running", group.running);
    }
    if group.failed > 0 {
        let _ = write!(out, ", {} failed", group.failed);
    }
    match (&group.finished, &group.started) {
        (Some(finished), Some(started)) => {
            let took = time::between(started, finished);
            let ago = time::since(finished, now).unwrap_or_default();
            let _ = write!(out, "; finished {ago} ago");
            if let Some(took) = took {
                let _ = write!(out, " in {took}");
            }
        }
        (_, Some(started)) => {
            let _ = write!(
                out,
                "; started {} ago",
                time::since(started, now).unwrap_or_default()
            );
        }
        _ => {}
    }
    if let Some(deadline) = &group.deadline {
        let _ = write!(
            out,
            "; deadline in {}",
            time::until(deadline, now).unwrap_or_default()
        );
    }
    out.push('\n');
    if let Some(rollback) = &group.rollback {
        let _ = writeln!(
            out,
            "  rollback from {} ordered by {}, signed by {}",
            rollback.from, rollback.by, rollback.signer
        );
    }
    if group.promote_pending {
        let _ = writeln!(
            out,
            "  canaries healthy: waiting for `shoal promote {}`",
            group.name
        );
    }
    if let Some(halt) = &group.halted {
        let at = halt
            .at
            .as_deref()
            .and_then(|t| time::since(t, now))
            .map(|ago| format!(" {ago} ago"))
            .unwrap_or_default();
        let _ = writeln!(out, "  HALTED by {}{at}: {}", halt.host, halt.reason);
        for line in &halt.output {
            let _ = writeln!(out, "  | {line}");
        }
        if halt.output_hidden {
            out.push_str("  (its output is private: run as root, or see status.public_logs)\n");
        }
    }
}

/// A ten-character bar of `done` out of `total`: `[###.......]`.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * 10).checked_div(total).unwrap_or(0).min(10);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(10 - filled))
}

/// Rows in columns two spaces apart, after `header` when it is not empty.
fn push_table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(cell.chars().count()),
                None => widths.push(cell.chars().count()),
            }
        }
    }
    let lines = (!header.is_empty())
        .then_some(header)
        .into_iter()
        .chain(rows.iter().map(Vec::as_slice));
    for cells in lines {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::status::HaltInfo;

    use super::*;

    /// 2026-12-07T10:10:00Z.
    const NOW: i64 = 1_796_638_200;

    fn member(name: &str, revision: Option<&str>, phase: &str, health: Health) -> FleetNodeGroup {
        FleetNodeGroup {
            name: name.into(),
            revision: revision.map(str::to_owned),
            phase: phase.into(),
            health,
            ..FleetNodeGroup::default()
        }
    }

    fn fleet() -> Fleet {
        let mut canary = member("web", Some("v2.0.0"), "running", Health::Healthy);
        canary.canary = true;
        canary.event = Some("ValidateService".into());
        canary.event_since = Some("2026-12-07T10:09:48Z".into());
        let mut waiting = member("web", Some("v1.0.0"), "waiting", Health::Healthy);
        waiting.target = Some("v2.0.0".into());
        waiting.phase_since = Some("2026-12-07T10:08:00Z".into());
        Fleet {
            node: "host-1".into(),
            nodes: vec![
                FleetNode {
                    id: "host-1".into(),
                    alive: true,
                    duplicate: false,
                    groups: vec![
                        member("api", Some("v1.0.0"), "idle", Health::Healthy),
                        canary,
                    ],
                },
                FleetNode {
                    id: "host-2".into(),
                    alive: true,
                    duplicate: false,
                    groups: vec![waiting],
                },
                FleetNode {
                    id: "host-4".into(),
                    alive: false,
                    duplicate: false,
                    groups: vec![member("web", Some("v1.0.0"), "reverted", Health::Unhealthy)],
                },
            ],
            groups: vec![
                FleetGroup {
                    name: "api".into(),
                    total: 1,
                    ..FleetGroup::default()
                },
                FleetGroup {
                    name: "web".into(),
                    deployment: Some("d-0123456789ab".into()),
                    target: Some("v2.0.0".into()),
                    done: 1,
                    total: 3,
                    running: 1,
                    failed: 1,
                    started: Some("2026-12-07T10:05:00Z".into()),
                    deadline: Some("2026-12-07T10:19:48Z".into()),
                    halted: Some(HaltInfo {
                        host: "host-4".into(),
                        reason: "host-4 failed: ValidateService exit 1".into(),
                        at: Some("2026-12-07T10:09:00Z".into()),
                        output: vec!["[ValidateService] [check.sh] [stderr] HTTP 500".into()],
                        output_hidden: false,
                        by: None,
                    }),
                    ..FleetGroup::default()
                },
            ],
        }
    }

    #[test]
    fn nodes_by_groups_with_their_events_then_each_rollout() {
        let text = render(&fleet(), NOW);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "fleet seen from host-1: 3 nodes, 1 dead, 2 groups",
                "",
                "NODE    STATE  api          web",
                "host-1  alive  v1.0.0 idle  v2.0.0 running ValidateService 12s canary",
                "host-2  alive  -            v1.0.0 → v2.0.0 waiting 2m00s",
                "host-4  dead   -            v1.0.0 reverted unhealthy",
                "",
                "api  no release yet (1 member)",
                "",
                "web  v2.0.0  [###.......] 1/3 done, 1 running, 1 failed; started 5m00s ago; \
                 deadline in 9m48s",
                "  HALTED by host-4 1m00s ago: host-4 failed: ValidateService exit 1",
                "  | [ValidateService] [check.sh] [stderr] HTTP 500",
            ],
            "{text}"
        );
    }

    #[test]
    fn a_promote_gated_rollout_says_the_command_and_a_finished_one_how_long_it_took() {
        let mut fleet = fleet();
        let web = &mut fleet.groups[1];
        web.halted = None;
        web.deadline = None;
        web.promote_pending = true;
        let text = render(&fleet, NOW);
        assert!(
            text.contains("\n  canaries healthy: waiting for `shoal promote web`\n"),
            "{text}"
        );
        let web = &mut fleet.groups[1];
        web.promote_pending = false;
        (web.done, web.running, web.failed) = (3, 0, 0);
        web.finished = Some("2026-12-07T10:08:30Z".into());
        let text = render(&fleet, NOW);
        assert!(
            text.contains("web  v2.0.0  [##########] 3/3 done; finished 1m30s ago in 3m30s\n"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_fleet_is_one_line() {
        let empty = Fleet {
            node: "host-1".into(),
            nodes: Vec::new(),
            groups: Vec::new(),
        };
        assert_eq!(
            render(&empty, NOW),
            "fleet seen from host-1: 0 nodes, 0 dead, 0 groups\n"
        );
    }
}
