//! `shoal history [GROUP]`: each group's recent releases as this host's agent saw them roll
//! out (from its status endpoint): when, the result, how long, who signed each, and who
//! halted, resumed or promoted it; or with `--json` the JSON exactly as the agent serves it.

use std::fmt::Write as _;

use shoal_shared::history::{Entry, EventKind, History};

use super::client::{self, AgentArgs};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Only this group (as in the agent's config); all of them without.
    group: Option<String>,
    #[command(flatten)]
    agent: AgentArgs,
    /// Print the agent's JSON (`GET /v1/history`) as served: a stable, documented shape.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> u8 {
    let path = match &args.group {
        Some(group) => match super::control::check_group_name(group) {
            Ok(()) => format!("/v1/history?group={group}"),
            Err(code) => return code,
        },
        None => "/v1/history".to_owned(),
    };
    client::show::<Vec<History>>(args.agent, &path, args.json, |h| render(h))
}

/// A table a group: release, result, when seen, how long, signer; then beneath each release
/// what people did to it and what failed.
fn render(histories: &[History]) -> String {
    let mut out = String::new();
    if histories.is_empty() {
        out.push_str("no groups: add one under `groups:` in the agent's config\n");
    }
    for (i, history) in histories.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", history.group);
        if history.entries.is_empty() {
            out.push_str("  no release seen yet\n");
            continue;
        }
        let header = ["REVISION", "RESULT", "SEEN", "TOOK", "SIGNED BY"].map(str::to_owned);
        let rows: Vec<[String; 5]> = history.entries.iter().map(row).collect();
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        push_row(&mut out, &header, &widths);
        for (entry, row) in history.entries.iter().zip(&rows) {
            push_row(&mut out, row, &widths);
            for line in happenings(entry) {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    out
}

fn row(entry: &Entry) -> [String; 5] {
    let took = entry.took().unwrap_or_else(|| "-".to_owned());
    [
        entry.revision.clone(),
        entry.result.clone(),
        entry.seen.clone(),
        took,
        entry.signer.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

fn push_row(out: &mut String, cells: &[String; 5], widths: &[usize; 5]) {
    let mut line = String::from("  ");
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(line, "{cell:<width$}  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The events people want under a release: failures, halts, and what operators did.
fn happenings(entry: &Entry) -> Vec<String> {
    entry
        .events
        .iter()
        .filter_map(|e| {
            let who = e.by.as_deref().unwrap_or("an operator");
            let what = match e.event {
                EventKind::HostFailed => format!(
                    "{} failed: {}",
                    e.host.as_deref().unwrap_or("a host"),
                    e.reason.as_deref().unwrap_or("no reason given")
                ),
                EventKind::Halted => format!(
                    "halted ({})",
                    e.reason.as_deref().unwrap_or("no reason given")
                ),
                EventKind::Resumed => format!("resumed by {who}"),
                EventKind::Promoted => format!("promoted by {who}"),
                EventKind::RolledBack => format!("rolled back by {who}"),
                EventKind::ReleaseSeen | EventKind::RolloutStarted | EventKind::Completed => {
                    return None;
                }
            };
            Some(format!("{}  {what}", e.at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use shoal_shared::history::FleetEvent;

    use super::*;

    fn event(kind: EventKind, at: &str) -> FleetEvent {
        FleetEvent {
            event: kind,
            group: "web".into(),
            deployment: "d-2".into(),
            revision: "v2.0.0".into(),
            at: at.into(),
            host: None,
            by: None,
            reason: None,
            output: Vec::new(),
            node: "web-1".into(),
        }
    }

    #[test]
    fn releases_newest_first_with_who_did_what_beneath() {
        let mut history = History::new("web");
        for (kind, at) in [
            (EventKind::ReleaseSeen, "2026-12-07T10:00:00Z"),
            (EventKind::RolloutStarted, "2026-12-07T10:00:05Z"),
            (EventKind::Completed, "2026-12-07T10:03:35Z"),
        ] {
            history.record(&FleetEvent {
                deployment: "d-1".into(),
                revision: "v1.0.0".into(),
                ..event(kind, at)
            });
        }
        history.signed("v1.0.0", "release@example.com");
        history.record(&event(EventKind::ReleaseSeen, "2026-12-07T11:00:00Z"));
        history.record(&FleetEvent {
            host: Some("web-3".into()),
            reason: Some("ValidateService exit 1".into()),
            ..event(EventKind::HostFailed, "2026-12-07T11:00:09Z")
        });
        history.record(&FleetEvent {
            reason: Some("halted by alice@web-1: bad build".into()),
            by: Some("alice@web-1".into()),
            ..event(EventKind::Halted, "2026-12-07T11:00:10Z")
        });
        let text = render(&[history, History::new("db")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "web",
                "  REVISION  RESULT     SEEN                  TOOK   SIGNED BY",
                "  v2.0.0    halted     2026-12-07T11:00:00Z  -      -",
                "      2026-12-07T11:00:09Z  web-3 failed: ValidateService exit 1",
                "      2026-12-07T11:00:10Z  halted (halted by alice@web-1: bad build)",
                "  v1.0.0    completed  2026-12-07T10:00:00Z  3m30s  release@example.com",
                "",
                "db",
                "  no release seen yet",
            ],
            "{text}"
        );
    }
}
