//! `GET /`: the fleet view as one small HTML page for a browser, rendered here from the same
//! data as `/v1/fleet` (and this host's own rollout from `/v1/status`). No script, no external
//! asset; it reloads itself every two seconds. Every string is escaped: node ids, group names,
//! revisions and halt reasons come from other hosts over gossip.

use std::fmt::Write as _;

use shoal_shared::status::{Fleet, FleetGroup, FleetNode, GroupStatus, Health, NodeStatus};

/// The page's `Content-Security-Policy`: nothing may load or run but its inline style.
pub(super) const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}\
.sub{color:#666;margin:.2em 0 1em}\
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left}\
th{background:#f4f4f4}tr.me td:first-child{font-weight:bold}tr.dead td{color:#999}\
.alive,.healthy{color:#1a7f37}.dead{color:#999}\
.unhealthy,.failed,.reverting,.reverted,.duplicate{color:#b00020;font-weight:bold}\
code{font-family:ui-monospace,monospace}\
.group{border:1px solid #ddd;padding:.6em 1em;margin:.6em 0;max-width:60em}\
.group h3{margin:0 0 .3em;font-size:1.05em}.group p{margin:.2em 0}\
.halt{background:#fde8e8;color:#b00020;border-left:5px solid #b00020;padding:.5em .8em;\
font-weight:bold;margin:.4em 0}\
.wait{color:#8a5a00}";

/// The page for `fleet` as this host (whose own groups are `local`) sees it.
pub(super) fn render(fleet: &Fleet, local: &NodeStatus) -> String {
    let node = escape(&fleet.node);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"2\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>shoal fleet: {node}</title><style>{STYLE}</style></head><body>\n\
         <h1>shoal fleet</h1>\n"
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
    nodes(&mut out, fleet);
    if !fleet.groups.is_empty() {
        out.push_str("<h2>Rollouts</h2>\n");
    }
    for group in &fleet.groups {
        let own = local.groups.iter().find(|g| g.name == group.name);
        rollout(&mut out, group, own);
    }
    out.push_str("</body></html>\n");
    out
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

/// The table of nodes: id, alive or dead, then per group `revision phase health`.
fn nodes(out: &mut String, fleet: &Fleet) {
    out.push_str("<h2>Nodes</h2>\n<table><thead><tr><th>node</th><th>state</th>");
    for group in &fleet.groups {
        let _ = write!(out, "<th>{}</th>", escape(&group.name));
    }
    out.push_str("</tr></thead><tbody>\n");
    for node in &fleet.nodes {
        node_row(out, node, fleet);
    }
    out.push_str("</tbody></table>\n");
}

fn node_row(out: &mut String, node: &FleetNode, fleet: &Fleet) {
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
                let revision = g.revision.as_deref().map_or_else(|| "-".to_owned(), escape);
                let phase = escape(&g.phase);
                let _ = write!(
                    out,
                    "<td><code>{revision}</code> <span class=\"{phase}\">{phase}</span>"
                );
                if let Some((health, class)) = health(g.health) {
                    let _ = write!(out, " <span class=\"{class}\">{health}</span>");
                }
                out.push_str("</td>");
            }
        }
    }
    out.push_str("</tr>\n");
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

/// One group's rollout across the fleet, its halt in red, and this host's part in it.
fn rollout(out: &mut String, group: &FleetGroup, own: Option<&GroupStatus>) {
    let _ = writeln!(out, "<div class=\"group\"><h3>{}</h3>", escape(&group.name));
    match &group.target {
        Some(target) => {
            let deployment = group.deployment.as_deref().map(escape).unwrap_or_default();
            let _ = writeln!(
                out,
                "<p>target <code>{}</code> (deployment <code>{deployment}</code>): \
                 <b>{}/{} done</b></p>",
                escape(target),
                group.done,
                group.total,
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<p>no release yet ({} {})</p>",
                group.total,
                plural(group.total, "member", "members")
            );
        }
    }
    if let Some(halt) = &group.halted {
        let _ = writeln!(
            out,
            "<p class=\"halt\">HALTED by {}: {}</p>",
            escape(&halt.host),
            escape(&halt.reason)
        );
    }
    if let Some(own) = own {
        this_host(out, own);
    }
    out.push_str("</div>\n");
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
    if let Some(waiting) = own.rollout.as_ref().and_then(|r| r.waiting_for.as_ref()) {
        let _ = writeln!(out, "<p class=\"wait\">waiting: {}</p>", escape(waiting));
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::status::{FleetNodeGroup, HaltInfo, NodeInfo, Phase, Rollout};

    use super::*;

    /// The only elements and attributes the page writes itself.
    const TAGS: &[&str] = &[
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "code",
        "span", "div", "table", "thead", "tbody", "tr", "th", "td",
    ];
    const ATTRIBUTES: &[&str] = &["lang", "charset", "http-equiv", "content", "name", "class"];

    fn member(name: &str, revision: &str, phase: &str, health: Health) -> FleetNodeGroup {
        FleetNodeGroup {
            name: name.into(),
            revision: Some(revision.into()),
            phase: phase.into(),
            health,
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
                }),
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
        let page = render(&fleet, &local);
        assert_only_own_markup(&page);
        for part in [
            "<meta http-equiv=\"refresh\" content=\"2\">",
            "seen from <b>host-1</b> (shoal 0.1.0): 2 nodes, 1 dead, 1 group",
            "<th>node</th><th>state</th><th>web</th>",
            "<tr class=\"me\"><td>host-1 (this host)</td><td class=\"alive\">alive</td>\
             <td><code>v1.0.0</code> <span class=\"waiting\">waiting</span> \
             <span class=\"healthy\">healthy</span></td></tr>",
            "<tr class=\"dead\"><td>host-4</td><td class=\"dead\">dead</td>",
            "<span class=\"unhealthy\">unhealthy</span>",
            "target <code>v2.0.0</code> (deployment <code>d-0123456789ab</code>): \
             <b>1/2 done</b>",
            "<p class=\"halt\">HALTED by host-4: ValidateService exit 1</p>",
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
        let page = render(&fleet, &local);
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
        let page = render(&fleet, &local);
        assert_only_own_markup(&page);
        assert!(
            !page.contains("<script") && !page.contains("<img"),
            "{page}"
        );
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
    fn a_group_without_a_release_and_an_empty_fleet_still_render() {
        let mut fleet = Fleet {
            node: "seed".into(),
            nodes: Vec::new(),
            groups: vec![FleetGroup {
                name: "db".into(),
                deployment: None,
                target: None,
                done: 0,
                total: 3,
                halted: None,
            }],
        };
        let (_, mut local) = self::fleet("seed", "db", "v1", "", "");
        local.groups.clear();
        let page = render(&fleet, &local);
        assert_only_own_markup(&page);
        assert!(page.contains("<p>no release yet (3 members)</p>"), "{page}");
        assert!(!page.contains("class=\"halt\""), "{page}");
        fleet.groups.clear();
        let page = render(&fleet, &local);
        assert_only_own_markup(&page);
        assert!(page.contains("0 nodes, 0 dead, 0 groups"), "{page}");
        assert!(!page.contains("Rollouts"), "{page}");
    }
}
