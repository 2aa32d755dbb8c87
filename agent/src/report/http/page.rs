//! `GET /`: the fleet view as one small HTML page for a browser, rendered here from the same
//! data as `/v1/fleet` (and this host's own rollout from `/v1/status`): each rollout with its
//! progress, times, canaries, the promote it waits for and its halt with the failed script's
//! last lines; each node with what it does now. Its one script, `/fleet.js` (served from this
//! binary; the policy allows no other), puts a fresh copy of the page in place every two
//! seconds and moves the times on in between; without scripts the page reloads itself. Every
//! string is escaped: node ids, group names, revisions, reasons and script output come from
//! other hosts over gossip.

use std::fmt::Write as _;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use shoal_shared::history::{EventKind, History};
use shoal_shared::status::{
    Fleet, FleetGroup, FleetNode, FleetNodeGroup, GroupStatus, HaltInfo, Health, NodeStatus,
};
use shoal_shared::time::{between, parse_rfc3339, since, until};

use super::reply::{Body, text};

/// The page's `Content-Security-Policy`: nothing may load or run but its inline style and its
/// own script, which may only read the page again.
pub(super) const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                                 script-src 'self'; connect-src 'self'";

/// The page's script.
const SCRIPT: &str = include_str!("fleet.js");

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}\
.sub{color:#666;margin:.2em 0 1em}.muted{color:#666;font-weight:normal}\
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left}\
th{background:#f4f4f4}tr.me td:first-child{font-weight:bold}tr.dead td{color:#999}\
.alive,.healthy,.done{color:#1a7f37}.dead{color:#999}.running,.event{color:#0550ae}\
.unhealthy,.failed,.reverting,.reverted,.duplicate,.halted{color:#b00020;font-weight:bold}\
.completed{color:#1a7f37}\
.canary{background:#fff4ce;color:#7a4d00;border-radius:3px;padding:0 .3em;font-size:.9em}\
code{font-family:ui-monospace,monospace}\
.group{border:1px solid #ddd;padding:.6em 1em;margin:.6em 0;max-width:60em}\
.group h3{margin:0 0 .3em;font-size:1.05em}.group p{margin:.2em 0}\
progress{width:12em;vertical-align:middle}\
.halt{background:#fde8e8;color:#b00020;border-left:5px solid #b00020;padding:.5em .8em;\
margin:.4em 0}.halt p{font-weight:bold}\
.output{background:#fff;color:#222;border:1px solid #f3c0c0;padding:.4em;margin:.4em 0 0;\
white-space:pre-wrap;font:12px/1.35 ui-monospace,monospace}\
.promote{background:#fff4ce;border-left:5px solid #d4a72c;padding:.5em .8em;margin:.4em 0;\
font-weight:bold}\
.rollback{background:#e8f0fe;border-left:5px solid #1a56c4;padding:.5em .8em;margin:.4em 0}\
.wait{color:#8a5a00}\
.stale-note{display:none;background:#fde8e8;color:#b00020;padding:.4em .8em}\
body.stale .stale-note{display:block}";

/// The page for `fleet` as this host (whose own groups are `local`, with their `histories`)
/// sees it at `now` (seconds since the epoch, this host's clock).
pub(super) fn render(fleet: &Fleet, local: &NodeStatus, histories: &[History], now: i64) -> String {
    let node = escape(&fleet.node);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>shoal fleet: {node}</title><style>{STYLE}</style>\
         <script src=\"/fleet.js\" defer=\"\"></script></head>\n\
         <body data-now=\"{now}\">\n\
         <p class=\"stale-note\">lost contact with the agent: this view is not up to date; \
         retrying</p>\n<main id=\"fleet\">\n<h1>shoal fleet</h1>\n"
    );
    let dead = fleet.nodes.iter().filter(|n| !n.alive).count();
    let _ = writeln!(
        out,
        "<p class=\"sub\">seen from <b>{node}</b> (shoal {}): {} {}, {dead} dead, {} {}</p>",
        escape(&local.node.version),
        fleet.nodes.len(),
        plural(fleet.nodes.len(), "node", "nodes"),
        fleet.groups.len(),
        plural(fleet.groups.len(), "group", "groups"),
    );
    if !fleet.groups.is_empty() {
        out.push_str("<h2>Rollouts</h2>\n");
    }
    for group in &fleet.groups {
        let own = local.groups.iter().find(|g| g.name == group.name);
        rollout(&mut out, group, own, now);
    }
    nodes(&mut out, fleet, now);
    history(&mut out, histories);
    out.push_str("</main></body></html>\n");
    out
}

/// `GET /fleet.js`.
pub(super) fn script() -> Response<Body> {
    let mut response = text(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        SCRIPT.to_owned(),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `text` safe inside an element or a quoted attribute.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A time ago that the script moves on: `<span data-since="…">12s</span>`; nothing when
/// `time` does not parse.
fn ago(time: Option<&str>, now: i64) -> Option<String> {
    let time = time?;
    Some(format!(
        "<span data-since=\"{}\">{}</span>",
        parse_rfc3339(time)?,
        since(time, now)?
    ))
}

/// A time ahead that the script counts down: `<span data-until="…">9m48s</span>`.
fn ahead(time: Option<&str>, now: i64) -> Option<String> {
    let time = time?;
    Some(format!(
        "<span data-until=\"{}\">{}</span>",
        parse_rfc3339(time)?,
        until(time, now)?
    ))
}

/// The table of nodes: id, alive or dead, then per group what the node does there.
fn nodes(out: &mut String, fleet: &Fleet, now: i64) {
    out.push_str("<h2>Nodes</h2>\n<table><thead><tr><th>node</th><th>state</th>");
    for group in &fleet.groups {
        let _ = write!(out, "<th>{}</th>", escape(&group.name));
    }
    out.push_str("</tr></thead><tbody>\n");
    for node in &fleet.nodes {
        node_row(out, node, fleet, now);
    }
    out.push_str("</tbody></table>\n");
}

fn node_row(out: &mut String, node: &FleetNode, fleet: &Fleet, now: i64) {
    let me = node.id == fleet.node;
    let state = match (node.alive, node.duplicate) {
        (_, true) => "duplicate",
        (true, false) => "alive",
        (false, false) => "dead",
    };
    let class = match (me, node.alive) {
        (true, _) => " class=\"me\"",
        (false, false) => " class=\"dead\"",
        (false, true) => "",
    };
    let _ = write!(
        out,
        "<tr{class}><td>{}{}</td><td class=\"{state}\">{state}</td>",
        escape(&node.id),
        if me { " (this host)" } else { "" },
    );
    for group in &fleet.groups {
        match node.groups.iter().find(|g| g.name == group.name) {
            None => out.push_str("<td>-</td>"),
            Some(g) => {
                out.push_str("<td>");
                cell(out, g, now);
                out.push_str("</td>");
            }
        }
    }
    out.push_str("</tr>\n");
}

/// `v1.0.0 → v2.0.0 running ValidateService 12s canary healthy`.
fn cell(out: &mut String, g: &FleetNodeGroup, now: i64) {
    let revision = g.revision.as_deref().map_or_else(|| "-".to_owned(), escape);
    let _ = write!(out, "<code>{revision}</code>");
    if let Some(target) = &g.target {
        let _ = write!(out, " → <code>{}</code>", escape(target));
    }
    let phase = escape(&g.phase);
    let _ = write!(out, " <span class=\"{phase}\">{phase}</span>");
    if let Some(event) = &g.event {
        let _ = write!(out, " <span class=\"event\">{}</span>", escape(event));
        if let Some(ago) = ago(g.event_since.as_deref(), now) {
            let _ = write!(out, " {ago}");
        }
    } else if g.phase != shoal_shared::fleet::IDLE
        && let Some(ago) = ago(g.phase_since.as_deref(), now)
    {
        let _ = write!(out, " {ago}");
    }
    if g.canary {
        out.push_str(" <span class=\"canary\">canary</span>");
    }
    if let Some((health, class)) = health(g.health) {
        let _ = write!(out, " <span class=\"{class}\">{health}</span>");
    }
}

/// A health's words and CSS class; nothing for a group without a health check.
fn health(health: Health) -> Option<(&'static str, &'static str)> {
    match health {
        Health::None => None,
        Health::Unknown => Some(("health unknown", "unknown")),
        Health::Healthy => Some(("healthy", "healthy")),
        Health::Unhealthy => Some(("unhealthy", "unhealthy")),
    }
}

/// One group's rollout across the fleet: progress and times, the promote it waits for, its
/// halt in red with the failed script's output, and this host's part in it.
fn rollout(out: &mut String, group: &FleetGroup, own: Option<&GroupStatus>, now: i64) {
    let name = escape(&group.name);
    let Some(target) = &group.target else {
        let _ = writeln!(
            out,
            "<div class=\"group\"><h3>{name}</h3>\n<p>no release yet ({} {})</p>\n</div>",
            group.total,
            plural(group.total, "member", "members")
        );
        return;
    };
    let deployment = group.deployment.as_deref().map(escape).unwrap_or_default();
    let _ = writeln!(
        out,
        "<div class=\"group\"><h3>{name} <code>{}</code> \
         <span class=\"muted\">deployment <code>{deployment}</code></span></h3>",
        escape(target),
    );
    let _ = write!(
        out,
        "<p><progress value=\"{}\" max=\"{}\"></progress> <b>{}/{} done</b>",
        group.done,
        group.total.max(1),
        group.done,
        group.total,
    );
    if group.running > 0 {
        let _ = write!(out, ", {} running", group.running);
    }
    if group.failed > 0 {
        let _ = write!(
            out,
            ", <span class=\"failed\">{} failed</span>",
            group.failed
        );
    }
    times(out, group, now);
    out.push_str("</p>\n");
    if let Some(rollback) = &group.rollback {
        let _ = writeln!(
            out,
            "<p class=\"rollback\">Rollback from <code>{}</code> ordered by {}, signed by {}.</p>",
            escape(&rollback.from),
            escape(&rollback.by),
            escape(&rollback.signer)
        );
    }
    if group.promote_pending {
        let _ = writeln!(
            out,
            "<p class=\"promote\">Canaries healthy: the rollout waits for a promote. Run \
             <code>shoal promote {name}</code> on any host of the group.</p>"
        );
    }
    if let Some(halt) = &group.halted {
        halted(out, halt, now);
    }
    if let Some(own) = own {
        this_host(out, own);
    }
    out.push_str("</div>\n");
}

/// ` · started 5m00s ago · deadline in 9m48s`, or ` · finished 1m30s ago, took 3m30s`.
fn times(out: &mut String, group: &FleetGroup, now: i64) {
    let started = group.started.as_deref();
    if let Some(finished) = ago(group.finished.as_deref(), now) {
        let _ = write!(out, " · finished {finished} ago");
        let took = group
            .finished
            .as_deref()
            .zip(started)
            .and_then(|(end, start)| between(start, end));
        if let Some(took) = took {
            let _ = write!(out, ", took {took}");
        }
        return;
    }
    if let Some(started) = ago(started, now) {
        let _ = write!(out, " · started {started} ago");
    }
    if let Some(deadline) = ahead(group.deadline.as_deref(), now) {
        let _ = write!(out, " · deadline in {deadline}");
    }
}

/// The halt: who, when, why, and the failed script's last lines.
fn halted(out: &mut String, halt: &HaltInfo, now: i64) {
    let when = ago(halt.at.as_deref(), now)
        .map(|ago| format!(" {ago} ago"))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"halt\"><p>HALTED by {}{when}: {}</p>",
        escape(&halt.host),
        escape(&halt.reason)
    );
    if !halt.output.is_empty() {
        let lines: Vec<String> = halt.output.iter().map(|l| escape(l)).collect();
        let _ = write!(out, "<pre class=\"output\">{}</pre>", lines.join("\n"));
    }
    if halt.output_hidden {
        out.push_str(
            "<p class=\"muted\">The failed script's output is private here: \
             <code>shoal fleet</code> as root shows it (or set \
             <code>status.public_logs: true</code>).</p>",
        );
    }
    out.push_str("</div>\n");
}

/// How many releases of a group the page lists.
const HISTORY_ROWS: usize = 5;

/// Each group's last releases: result, when, how long, who signed, who steered.
fn history(out: &mut String, histories: &[History]) {
    if histories.iter().all(|h| h.entries.is_empty()) {
        return;
    }
    out.push_str(
        "<h2>History</h2>\n<table><thead><tr><th>group</th><th>release</th><th>result</th>\
         <th>seen</th><th>took</th><th>signed by</th><th>steered</th></tr></thead><tbody>\n",
    );
    for history in histories {
        for entry in history.entries.iter().take(HISTORY_ROWS) {
            let took = entry.took().unwrap_or_else(|| "-".to_owned());
            let steered: Vec<String> = entry
                .events
                .iter()
                .filter_map(|e| {
                    let verb = match e.event {
                        EventKind::Halted => "halted",
                        EventKind::Resumed => "resumed",
                        EventKind::Promoted => "promoted",
                        EventKind::RolledBack => "rolled back",
                        _ => return None,
                    };
                    let who = e.by.as_deref().or(e.host.as_deref()).unwrap_or("?");
                    Some(format!("{verb} by {}", escape(who)))
                })
                .collect();
            let result = escape(&entry.result);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"{result}\">{result}</td>\
                 <td>{}</td><td>{took}</td><td>{}</td><td>{}</td></tr>",
                escape(&history.group),
                escape(&entry.revision),
                escape(&entry.seen),
                entry
                    .signer
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), escape),
                if steered.is_empty() {
                    "-".to_owned()
                } else {
                    steered.join(", ")
                },
            );
        }
    }
    out.push_str("</tbody></table>\n");
}

/// This host in the group: its revision, its step and place in the order, why it waits.
fn this_host(out: &mut String, own: &GroupStatus) {
    let current = own
        .current_revision
        .as_deref()
        .map_or_else(|| "nothing".to_owned(), escape);
    let _ = write!(
        out,
        "<p>this host runs <code>{current}</code>, {}",
        own.phase.as_str()
    );
    if let Some(rollout) = &own.rollout {
        let _ = write!(
            out,
            "; step <b>{}</b> on <code>{}</code>",
            escape(&rollout.step),
            escape(&rollout.revision)
        );
        if let Some(position) = rollout.position {
            let _ = write!(out, ", turn {} of {}", position + 1, rollout.members);
        }
    }
    out.push_str("</p>\n");
    if let Some(waiting) = own
        .rollout
        .as_ref()
        .filter(|r| !r.promote_pending)
        .and_then(|r| r.waiting_for.as_ref())
    {
        let _ = writeln!(out, "<p class=\"wait\">waiting: {}</p>", escape(waiting));
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::status::{FleetNodeGroup, HaltInfo, NodeInfo, Phase, Rollout};

    use super::*;

    /// The only elements and attributes the page writes itself.
    const TAGS: &[&str] = &[
        "html", "head", "meta", "title", "style", "script", "noscript", "body", "main", "h1", "h2",
        "h3", "p", "b", "code", "span", "div", "table", "thead", "tbody", "tr", "th", "td",
        "progress", "pre",
    ];
    const ATTRIBUTES: &[&str] = &[
        "lang",
        "charset",
        "http-equiv",
        "content",
        "name",
        "class",
        "src",
        "defer",
        "id",
        "data-now",
        "data-since",
        "data-until",
        "value",
        "max",
    ];

    /// 2026-12-07T10:10:00Z.
    const NOW: i64 = 1_796_638_200;

    fn member(name: &str, revision: &str, phase: &str, health: Health) -> FleetNodeGroup {
        FleetNodeGroup {
            name: name.into(),
            revision: Some(revision.into()),
            phase: phase.into(),
            health,
            ..FleetNodeGroup::default()
        }
    }

    /// `host-1` (this host, waiting in `group`) and a dead `host-4` that halted `group`.
    fn fleet(
        node: &str,
        group: &str,
        revision: &str,
        halt: &str,
        wait: &str,
    ) -> (Fleet, NodeStatus) {
        let fleet = Fleet {
            node: node.into(),
            nodes: vec![
                FleetNode {
                    id: node.into(),
                    alive: true,
                    duplicate: false,
                    groups: vec![member(group, revision, "waiting", Health::Healthy)],
                },
                FleetNode {
                    id: "host-4".into(),
                    alive: false,
                    duplicate: false,
                    groups: vec![member(group, revision, "reverted", Health::Unhealthy)],
                },
            ],
            groups: vec![FleetGroup {
                name: group.into(),
                deployment: Some("d-0123456789ab".into()),
                target: Some("v2.0.0".into()),
                done: 1,
                total: 2,
                halted: Some(HaltInfo {
                    host: "host-4".into(),
                    reason: halt.into(),
                    at: Some("2026-12-07T10:09:00Z".into()),
                    output: vec![format!("[ValidateService] {halt}"), "exit 1".into()],
                    output_hidden: false,
                    by: None,
                }),
                started: Some("2026-12-07T10:05:00Z".into()),
                ..FleetGroup::default()
            }],
        };
        let mut own = GroupStatus::starting(group, "shop", "git");
        own.phase = Phase::Halted;
        own.current_revision = Some(revision.into());
        own.rollout = Some(Rollout {
            deployment: "d-0123456789ab".into(),
            revision: "v2.0.0".into(),
            step: "waiting".into(),
            waiting_for: Some(wait.into()),
            position: Some(2),
            members: 6,
            halted: None,
            ..Rollout::default()
        });
        let local = NodeStatus {
            node: NodeInfo {
                id: node.into(),
                version: "0.1.0".into(),
                labels: Default::default(),
                started: "2026-05-01T10:00:00Z".into(),
                ready: true,
                duplicated_by: Vec::new(),
            },
            groups: vec![own],
        };
        (fleet, local)
    }

    /// Every tag of `page` is one the page writes, with only its attributes, each quoted.
    fn assert_only_own_markup(page: &str) {
        for tag in page.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            if tag.starts_with('!') || tag.starts_with('/') {
                let name = tag.trim_start_matches('/');
                assert!(
                    name == "!doctype html" || TAGS.contains(&name),
                    "unexpected <{tag}> in\n{page}"
                );
                continue;
            }
            let (name, mut rest) = tag.split_once(' ').unwrap_or((tag, ""));
            assert!(TAGS.contains(&name), "unexpected <{tag}> in\n{page}");
            while !rest.is_empty() {
                let (attribute, value) = rest.split_once("=\"").expect("a quoted attribute");
                assert!(ATTRIBUTES.contains(&attribute), "unexpected <{tag}>");
                let (_, after) = value.split_once('"').expect("a closing quote");
                rest = after.strip_prefix(' ').unwrap_or(after);
            }
        }
    }

    #[test]
    fn escape_neutralises_markup_quotes_and_ampersands() {
        assert_eq!(
            escape("<script>alert(\"x\")</script>"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("it's"), "it&#39;s");
        assert_eq!(escape("web.eu-1 v1.2.0 ünïcode"), "web.eu-1 v1.2.0 ünïcode");
    }

    #[test]
    fn the_page_shows_nodes_rollouts_the_halt_in_red_and_why_this_host_waits() {
        let wait = "canaries healthy; waiting for `shoal promote`";
        let (fleet, local) = fleet("host-1", "web", "v1.0.0", "ValidateService exit 1", wait);
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        for part in [
            "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>",
            "<script src=\"/fleet.js\" defer=\"\"></script>",
            "<body data-now=\"1796638200\">",
            "seen from <b>host-1</b> (shoal 0.1.0): 2 nodes, 1 dead, 1 group",
            "<th>node</th><th>state</th><th>web</th>",
            "<tr class=\"me\"><td>host-1 (this host)</td><td class=\"alive\">alive</td>\
             <td><code>v1.0.0</code> <span class=\"waiting\">waiting</span> \
             <span class=\"healthy\">healthy</span></td></tr>",
            "<tr class=\"dead\"><td>host-4</td><td class=\"dead\">dead</td>",
            "<span class=\"unhealthy\">unhealthy</span>",
            "<h3>web <code>v2.0.0</code> <span class=\"muted\">deployment \
             <code>d-0123456789ab</code></span></h3>",
            "<progress value=\"1\" max=\"2\"></progress> <b>1/2 done</b> \
             · started <span data-since=\"1796637900\">5m00s</span> ago</p>",
            "<div class=\"halt\"><p>HALTED by host-4 <span data-since=\"1796638140\">1m00s</span> \
             ago: ValidateService exit 1</p><pre class=\"output\">[ValidateService] \
             ValidateService exit 1\nexit 1</pre></div>",
            "this host runs <code>v1.0.0</code>, halted; step <b>waiting</b> on \
             <code>v2.0.0</code>, turn 3 of 6",
            "<p class=\"wait\">waiting: canaries healthy; waiting for `shoal promote`</p>",
        ] {
            assert!(page.contains(part), "{part}\nnot in\n{page}");
        }
    }

    #[test]
    fn a_node_id_several_hosts_gossip_under_shows_as_duplicate() {
        let (mut fleet, local) = fleet("host-1", "web", "v1.0.0", "bad", "halted");
        fleet.nodes[1].alive = true;
        fleet.nodes[1].duplicate = true;
        let page = render(&fleet, &local, &[], NOW);
        assert!(
            page.contains("<td>host-4</td><td class=\"duplicate\">duplicate</td>"),
            "{page}"
        );
    }

    #[test]
    fn hostile_names_from_gossip_are_escaped_everywhere() {
        let script = "<script>alert('x')</script>";
        let attribute = "\"><img src=x onerror=alert(1)>";
        let (fleet, local) = fleet(script, attribute, "v1 & <b>", script, attribute);
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        // The page's own script tag, and no other.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert!(page.contains("<script src=\"/fleet.js\""), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(page.contains("<code>v1 &amp; &lt;b&gt;</code>"), "{page}");
    }

    #[test]
    fn a_canary_shows_its_event_a_promote_the_command_and_hidden_output_says_so() {
        let (mut fleet, local) = fleet("host-1", "web", "v1.0.0", "bad", "canaries");
        let canary = &mut fleet.nodes[0].groups[0];
        canary.phase = "running".into();
        canary.target = Some("v2.0.0".into());
        canary.canary = true;
        canary.event = Some("ValidateService".into());
        canary.event_since = Some("2026-12-07T10:09:48Z".into());
        let web = &mut fleet.groups[0];
        web.deadline = Some("2026-12-07T10:19:48Z".into());
        web.halted = None;
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        for part in [
            "<td><code>v1.0.0</code> → <code>v2.0.0</code> <span class=\"running\">running</span> \
             <span class=\"event\">ValidateService</span> \
             <span data-since=\"1796638188\">12s</span> <span class=\"canary\">canary</span> \
             <span class=\"healthy\">healthy</span></td>",
            " · deadline in <span data-until=\"1796638788\">9m48s</span></p>",
        ] {
            assert!(page.contains(part), "{part}\nnot in\n{page}");
        }
        let web = &mut fleet.groups[0];
        web.promote_pending = true;
        web.halted = Some(HaltInfo {
            host: "host-4".into(),
            reason: "bad".into(),
            output_hidden: true,
            ..HaltInfo::default()
        });
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        assert!(
            page.contains("Run <code>shoal promote web</code> on any host of the group."),
            "{page}"
        );
        assert!(page.contains("output is private here"), "{page}");
        assert!(!page.contains("class=\"output\""), "{page}");
    }

    #[test]
    fn a_rollback_says_from_what_and_who_ordered_and_signed_it_escaped() {
        let (mut fleet, local) = fleet("host-1", "web", "v1.0.0", "bad", "waiting");
        fleet.groups[0].rollback = Some(shoal_shared::status::RollbackInfo {
            from: "v2.0.0".into(),
            by: "alice@host-2".into(),
            signer: "<ops>@example.com".into(),
            issued: "2026-12-07T10:00:00Z".into(),
        });
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        assert!(
            page.contains(
                "<p class=\"rollback\">Rollback from <code>v2.0.0</code> ordered by \
                 alice@host-2, signed by &lt;ops&gt;@example.com.</p>"
            ),
            "{page}"
        );
    }

    #[test]
    fn the_history_lists_each_release_with_its_signer_and_who_steered_it_escaped() {
        use shoal_shared::history::FleetEvent;
        let (fleet, local) = fleet("host-1", "web", "v1.0.0", "bad", "waiting");
        let mut history = History::new("web");
        let event = |kind, by: Option<&str>| FleetEvent {
            event: kind,
            group: "web".into(),
            deployment: "d-2".into(),
            revision: "v2.0.0".into(),
            at: "2026-12-07T10:00:00Z".into(),
            host: Some("host-4".into()),
            by: by.map(str::to_owned),
            reason: None,
            output: Vec::new(),
            node: "host-1".into(),
        };
        history.record(&event(EventKind::ReleaseSeen, None));
        history.record(&event(EventKind::Halted, None));
        history.record(&event(EventKind::Resumed, Some("<alice>@host-1")));
        history.signed("v2.0.0", "release@example.com");
        let page = render(&fleet, &local, &[history], NOW);
        assert_only_own_markup(&page);
        let row = "<tr><td>web</td><td><code>v2.0.0</code></td>\
                   <td class=\"in-progress\">in-progress</td><td>2026-12-07T10:00:00Z</td>\
                   <td>-</td><td>release@example.com</td>\
                   <td>halted by host-4, resumed by &lt;alice&gt;@host-1</td></tr>";
        assert!(page.contains(row), "{row}\nnot in\n{page}");
    }

    #[test]
    fn the_script_only_swaps_in_the_fetched_page_and_moves_times_on() {
        // It never evaluates what it fetches, and reads nothing from another origin.
        for banned in [
            "eval(",
            "innerHTML",
            "document.write",
            "new Function",
            "http://",
            "https://",
        ] {
            assert!(!SCRIPT.contains(banned), "{banned}");
        }
        for needed in [
            "DOMParser",
            "getElementById(\"fleet\")",
            "data-since",
            "data-until",
        ] {
            assert!(SCRIPT.contains(needed), "{needed}");
        }
        assert!(POLICY.contains("script-src 'self'") && !POLICY.contains("unsafe-eval"));
    }

    #[test]
    fn a_group_without_a_release_and_an_empty_fleet_still_render() {
        let mut fleet = Fleet {
            node: "seed".into(),
            nodes: Vec::new(),
            groups: vec![FleetGroup {
                name: "db".into(),
                total: 3,
                ..FleetGroup::default()
            }],
        };
        let (_, mut local) = self::fleet("seed", "db", "v1", "", "");
        local.groups.clear();
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        assert!(page.contains("<p>no release yet (3 members)</p>"), "{page}");
        assert!(!page.contains("class=\"halt\""), "{page}");
        fleet.groups.clear();
        let page = render(&fleet, &local, &[], NOW);
        assert_only_own_markup(&page);
        assert!(page.contains("0 nodes, 0 dead, 0 groups"), "{page}");
        assert!(!page.contains("Rollouts"), "{page}");
    }
}
