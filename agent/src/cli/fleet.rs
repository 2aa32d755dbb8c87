//! `shoal fleet`: every node of the mesh as this host's agent sees it through gossip (from its
//! status endpoint): a table of nodes × groups and a progress line per group, or with `--json`
//! the JSON exactly as the agent serves it.

use std::fmt::Write as _;

use shoal_shared::status::{Fleet, FleetGroup, FleetNode, Health};

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
    client::show::<Fleet>(args.agent, "/v1/fleet", args.json, render)
}

/// The human view: a summary line, a row per node with its revision and phase in each group,
/// then a progress line per group.
fn render(fleet: &Fleet) -> String {
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
    let rows: Vec<Vec<String>> = fleet.nodes.iter().map(|n| node_row(n, fleet)).collect();
    out.push('\n');
    push_table(&mut out, &header, &rows);
    if !fleet.groups.is_empty() {
        out.push('\n');
        let lines: Vec<Vec<String>> = fleet.groups.iter().map(group_line).collect();
        push_table(&mut out, &[], &lines);
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A node: its id, alive or dead, then per group of the fleet `revision phase` (`-` when it
/// is not a member).
fn node_row(node: &FleetNode, fleet: &Fleet) -> Vec<String> {
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
            .map_or_else(
                || "-".to_owned(),
                |g| {
                    let revision = g.revision.as_deref().unwrap_or("-");
                    let mut cell = format!("{revision} {}", g.phase);
                    if g.health == Health::Unhealthy {
                        cell.push_str(" unhealthy");
                    }
                    cell
                },
            )
    }));
    row
}

/// `web  v2.0.0  3/6 done  HALTED by host-4: reason` (name and release in columns).
fn group_line(group: &FleetGroup) -> Vec<String> {
    let Some(target) = &group.target else {
        let members = plural(group.total, "member", "members");
        let progress = format!("no release yet ({} {members})", group.total);
        return vec![group.name.clone(), "-".to_owned(), progress];
    };
    let mut progress = format!("{}/{} done", group.done, group.total);
    if let Some(halt) = &group.halted {
        let _ = write!(progress, "  HALTED by {}: {}", halt.host, halt.reason);
    }
    vec![group.name.clone(), target.clone(), progress]
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
    use shoal_shared::status::{FleetNodeGroup, HaltInfo};

    use super::*;

    fn member(name: &str, revision: Option<&str>, phase: &str, health: Health) -> FleetNodeGroup {
        FleetNodeGroup {
            name: name.into(),
            revision: revision.map(str::to_owned),
            phase: phase.into(),
            health,
        }
    }

    fn fleet() -> Fleet {
        Fleet {
            node: "host-1".into(),
            nodes: vec![
                FleetNode {
                    id: "host-1".into(),
                    alive: true,
                    duplicate: false,
                    groups: vec![
                        member("api", Some("v1.0.0"), "idle", Health::Healthy),
                        member("web", Some("v2.0.0"), "idle", Health::Healthy),
                    ],
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
                    deployment: None,
                    target: None,
                    done: 0,
                    total: 1,
                    halted: None,
                },
                FleetGroup {
                    name: "web".into(),
                    deployment: Some("d-0123456789ab".into()),
                    target: Some("v2.0.0".into()),
                    done: 1,
                    total: 2,
                    halted: Some(HaltInfo {
                        host: "host-4".into(),
                        reason: "host-4 failed: ValidateService exit 1".into(),
                    }),
                },
            ],
        }
    }

    #[test]
    fn nodes_by_groups_then_a_progress_line_per_group() {
        let text = render(&fleet());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "fleet seen from host-1: 2 nodes, 1 dead, 2 groups",
                "",
                "NODE    STATE  api          web",
                "host-1  alive  v1.0.0 idle  v2.0.0 idle",
                "host-4  dead   -            v1.0.0 reverted unhealthy",
                "",
                "api  -       no release yet (1 member)",
                "web  v2.0.0  1/2 done  HALTED by host-4: host-4 failed: ValidateService exit 1",
            ],
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
            render(&empty),
            "fleet seen from host-1: 0 nodes, 0 dead, 0 groups\n"
        );
    }
}
