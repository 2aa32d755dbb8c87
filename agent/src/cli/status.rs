//! `shoal status`: this host's groups as the agent sees them (from its status endpoint): a
//! compact table, or with `--json` the JSON exactly as the agent serves it.

use std::fmt::Write as _;
use std::time::Duration;

use shoal_shared::status::{GroupStatus, Health, NodeStatus};
use shoal_shared::time;

use super::client::{self, AgentArgs};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    agent: AgentArgs,
    /// Print the agent's JSON (`GET /v1/status`) as served: a stable, documented shape.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> u8 {
    client::show::<NodeStatus>(args.agent, "/v1/status", args.json, |status| {
        render(status, crate::clock::unix_now())
    })
}

/// The human view at `now`: a node line, then a row per group with its channel, its part in
/// the rollout, its last deployment's events and its last refusal or channel error beneath.
pub(super) fn render(status: &NodeStatus, now: i64) -> String {
    let node = &status.node;
    let mut out = format!(
        "node {}  shoal {}  up since {}  {}\n",
        node.id,
        node.version,
        node.started,
        if node.ready { "ready" } else { "not ready" }
    );
    if !node.duplicated_by.is_empty() {
        let _ = writeln!(
            out,
            "DUPLICATE NODE ID: another live host gossips as {} (from {}); neither takes a rollout slot until each has its own node.id",
            node.id,
            node.duplicated_by.join(", ")
        );
    }
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "labels {}", labels.join(", "));
    }
    if status.groups.is_empty() {
        out.push_str("no groups: add one under `groups:` in the agent's config\n");
        return out;
    }
    let header = [
        "GROUP",
        "CURRENT",
        "TARGET",
        "PHASE",
        "FLOOR",
        "HEALTH",
        "LAST DEPLOYMENT",
    ];
    let rows: Vec<[String; 7]> = status.groups.iter().map(|g| row(g, now)).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    out.push('\n');
    push_row(&mut out, &header.map(str::to_owned), &widths);
    for (group, row) in status.groups.iter().zip(&rows) {
        push_row(&mut out, row, &widths);
        push_channel(&mut out, group, now);
        push_rollout(&mut out, group, now);
        push_details(&mut out, group);
    }
    out
}

fn row(group: &GroupStatus, now: i64) -> [String; 7] {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let phase = match (&group.current_event, &group.event_since) {
        (Some(event), Some(since)) => match time::since(since, now) {
            Some(span) => format!("{} ({event}, {span})", group.phase.as_str()),
            None => format!("{} ({event})", group.phase.as_str()),
        },
        (Some(event), None) => format!("{} ({event})", group.phase.as_str()),
        (None, _) => group.phase.as_str().to_owned(),
    };
    let health = match group.health {
        Health::None => "-",
        Health::Unknown => "unknown",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
    };
    let last = group.last_deployment.as_ref().map_or_else(
        || "-".to_owned(),
        |d| match &d.reverts {
            Some(failed) => format!("{} {} ({}, revert of {failed})", d.id, d.result, d.revision),
            None => format!("{} {} ({})", d.id, d.result, d.revision),
        },
    );
    [
        group.name.clone(),
        or_dash(&group.current_revision),
        or_dash(&group.target_revision),
        phase,
        or_dash(&group.floor),
        health.to_owned(),
        last,
    ]
}

fn push_row(out: &mut String, cells: &[String; 7], widths: &[usize; 7]) {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(line, "{cell:<width$}  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `    channel git https://… (v*): checked 12s ago`, or that the group's pollers look at it
/// for this host.
fn push_channel(out: &mut String, group: &GroupStatus, now: i64) {
    let looks = if group.polls == Some(false) {
        "left to the group's pollers; gossip announces their releases".to_owned()
    } else {
        match group.last_check.as_deref() {
            Some(when) => match time::since(when, now) {
                Some(span) => format!("checked {span} ago"),
                None => format!("checked {when}"),
            },
            None => "not checked yet".to_owned(),
        }
    };
    let _ = writeln!(out, "    channel {}: {looks}", group.channel);
}

/// `    rollout v2.0.0 (d-…): running, canary, turn 1 of 3 for 12s; deadline in 9m48s`, then
/// why it waits, the promote it waits for, the halt and its own failure's last lines.
fn push_rollout(out: &mut String, group: &GroupStatus, now: i64) {
    let Some(rollout) = &group.rollout else {
        return;
    };
    let _ = write!(
        out,
        "    rollout {} ({}): {}",
        rollout.revision, rollout.deployment, rollout.step
    );
    if rollout.canary {
        out.push_str(", canary");
    }
    if let Some(position) = rollout.position {
        let _ = write!(out, ", turn {} of {}", position + 1, rollout.members);
    }
    if let Some(span) = rollout
        .step_since
        .as_deref()
        .and_then(|t| time::since(t, now))
    {
        let _ = write!(out, ", for {span}");
    }
    if let Some(span) = rollout
        .deadline
        .as_deref()
        .and_then(|t| time::until(t, now))
    {
        let _ = write!(out, "; deadline in {span}");
    }
    out.push('\n');
    if rollout.promote_pending {
        let _ = writeln!(
            out,
            "    canaries healthy: waiting for `shoal promote {}`",
            group.name
        );
    } else if let Some(waiting) = &rollout.waiting_for {
        let _ = writeln!(out, "    waiting: {waiting}");
    }
    if let Some(halt) = &rollout.halted {
        let _ = writeln!(out, "    HALTED by {}: {}", halt.host, halt.reason);
    }
    for line in &rollout.failure_output {
        let _ = writeln!(out, "    | {line}");
    }
}

fn push_details(out: &mut String, group: &GroupStatus) {
    if let Some(deployment) = &group.last_deployment {
        let width = deployment
            .events
            .iter()
            .map(|e| e.name.len())
            .max()
            .unwrap_or(0);
        for event in &deployment.events {
            let seconds = Duration::from_millis(event.duration_ms).as_secs_f64();
            let exit_code = event
                .exit_code
                .map_or_else(|| "-".to_owned(), |c| format!("exit {c}"));
            let _ = write!(
                out,
                "    {:<width$}  {:<14}  {seconds:>8.2}s  {exit_code}",
                event.name, event.status
            );
            if let Some(message) = &event.message {
                let _ = write!(out, "  {message}");
            }
            out.push('\n');
        }
        if let Some(error) = &deployment.error {
            let _ = writeln!(out, "    error: {error}");
        }
    }
    if let Some(failure) = &group.last_failure {
        let _ = writeln!(
            out,
            "    last failure: {} {} ({}){}",
            failure.id,
            failure.result,
            failure.revision,
            failure
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(refusal) = &group.last_refusal {
        let _ = writeln!(
            out,
            "    refused {}: {} ({})",
            refusal.name, refusal.reason, refusal.when
        );
    }
    if let Some(notice) = &group.last_channel_error {
        let _ = writeln!(
            out,
            "    channel error: {} ({})",
            notice.message, notice.when
        );
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::status::{
        DeploymentSummary, EventSummary, HaltInfo, NodeInfo, Notice, Phase, Refusal, Rollout,
    };

    use super::*;

    fn group(name: &str) -> GroupStatus {
        GroupStatus::starting(name, "app", "git https://example.invalid/app.git (v*)")
    }

    fn node(groups: Vec<GroupStatus>) -> NodeStatus {
        NodeStatus {
            node: NodeInfo {
                id: "web-1".into(),
                version: "0.1.0".into(),
                labels: [("az".to_owned(), "eu-1".to_owned())].into(),
                started: "2026-05-01T10:00:00Z".into(),
                ready: false,
                duplicated_by: Vec::new(),
            },
            groups,
        }
    }

    #[test]
    fn a_group_row_then_its_events_refusal_and_channel_error() {
        let mut web = group("web");
        web.current_revision = Some("v1.2.0".into());
        web.phase = Phase::Deploying;
        web.current_event = Some("AfterInstall".into());
        web.health = Health::Healthy;
        web.floor = Some("v1.2.0".into());
        web.last_deployment = Some(DeploymentSummary {
            id: "d-0123456789ab".into(),
            group: "web".into(),
            revision: "v1.3.0".into(),
            previous_revision: Some("v1.2.0".into()),
            reverts: None,
            result: "in-progress".into(),
            started: "2026-05-01T10:01:00Z".into(),
            finished: None,
            error: None,
            events: vec![EventSummary {
                name: "BeforeInstall".into(),
                status: "succeeded".into(),
                duration_ms: 1_250,
                exit_code: Some(0),
                message: None,
            }],
        });
        web.last_refusal = Some(Refusal {
            name: "v0.9.0".into(),
            kind: "below_floor".into(),
            reason: "v0.9.0 is below the floor v1.2.0".into(),
            when: "2026-05-01T10:02:00Z".into(),
        });
        web.last_channel_error = Some(Notice {
            message: "connection reset".into(),
            when: "2026-05-01T10:03:00Z".into(),
        });
        let text = render(&node(vec![web, group("db")]), 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "node web-1  shoal 0.1.0  up since 2026-05-01T10:00:00Z  not ready"
        );
        assert_eq!(lines[1], "labels az=eu-1");
        assert!(
            lines[3].starts_with("GROUP  CURRENT  TARGET  PHASE"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("web    v1.2.0   -       deploying (AfterInstall)"),
            "{text}"
        );
        assert!(
            lines[4].ends_with("d-0123456789ab in-progress (v1.3.0)"),
            "{text}"
        );
        assert_eq!(
            lines[5],
            "    channel git https://example.invalid/app.git (v*): not checked yet"
        );
        assert_eq!(
            lines[6],
            "    BeforeInstall  succeeded           1.25s  exit 0"
        );
        assert_eq!(
            lines[7],
            "    refused v0.9.0: v0.9.0 is below the floor v1.2.0 (2026-05-01T10:02:00Z)"
        );
        assert_eq!(
            lines[8],
            "    channel error: connection reset (2026-05-01T10:03:00Z)"
        );
        assert!(
            lines[9].starts_with("db     -        -       starting"),
            "{text}"
        );
    }

    #[test]
    fn the_channel_line_says_when_this_host_looked_or_that_its_pollers_do() {
        let now = 1_796_638_200; // 2026-12-07T10:10:00Z
        let channel = |web: &GroupStatus| {
            let text = render(&node(vec![web.clone()]), now);
            let line = text.lines().find(|l| l.starts_with("    channel "));
            line.unwrap_or_else(|| panic!("no channel line in\n{text}"))
                .to_owned()
        };
        let mut web = group("web");
        web.last_check = Some("2026-12-07T10:09:48Z".into());
        web.polls = Some(true);
        assert_eq!(
            channel(&web),
            "    channel git https://example.invalid/app.git (v*): checked 12s ago"
        );
        web.polls = Some(false);
        assert_eq!(
            channel(&web),
            "    channel git https://example.invalid/app.git (v*): left to the group's pollers; \
             gossip announces their releases"
        );
    }

    #[test]
    fn the_rollout_line_shows_the_step_turn_times_and_what_it_waits_for() {
        let mut web = group("web");
        web.phase = Phase::Deploying;
        web.current_event = Some("ValidateService".into());
        web.event_since = Some("2026-12-07T10:09:48Z".into());
        web.rollout = Some(Rollout {
            deployment: "d-0123456789ab".into(),
            revision: "v2.0.0".into(),
            step: "running".into(),
            position: Some(0),
            members: 3,
            canary: true,
            step_since: Some("2026-12-07T10:09:00Z".into()),
            deadline: Some("2026-12-07T10:19:00Z".into()),
            ..Rollout::default()
        });
        let now = 1_796_638_200; // 10:10:00Z
        let text = render(&node(vec![web.clone()]), now);
        assert!(text.contains("deploying (ValidateService, 12s)"), "{text}");
        assert!(
            text.contains(
                "\n    rollout v2.0.0 (d-0123456789ab): running, canary, turn 1 of 3, for 1m00s; \
                 deadline in 9m00s\n"
            ),
            "{text}"
        );
        let rollout = web.rollout.as_mut().expect("rollout");
        rollout.step = "waiting".into();
        rollout.promote_pending = true;
        rollout.halted = Some(HaltInfo {
            host: "web-2".into(),
            reason: "web-2 failed: ValidateService exit 1".into(),
            ..HaltInfo::default()
        });
        rollout.failure_output = vec!["[ValidateService] [check.sh] [stderr] HTTP 500".into()];
        let text = render(&node(vec![web]), now);
        for line in [
            "    canaries healthy: waiting for `shoal promote web`\n",
            "    HALTED by web-2: web-2 failed: ValidateService exit 1\n",
            "    | [ValidateService] [check.sh] [stderr] HTTP 500\n",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn no_groups_says_where_to_add_one() {
        assert!(render(&node(Vec::new()), 0).contains("no groups: add one under `groups:`"));
    }
}
