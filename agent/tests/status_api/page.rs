//! `GET /`: the fleet view as an HTML page, on the in-process endpoint (its headers, HEAD, an
//! operator's hostile halt reason shown escaped) and on a real agent after a deployment.

use shoal_shared::rollout::Policy;

use crate::daemon::{Hooks, Host};
use crate::{Agent, wire};

const HTML: &str = "text/html; charset=utf-8";
const POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'";

/// The page's headers are those of a page that runs its own script only and is never cached.
fn assert_page_headers(reply: &wire::Reply) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some(HTML));
    assert_eq!(reply.header("content-security-policy"), Some(POLICY));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[test]
fn the_page_is_html_that_runs_its_own_script_only_and_lists_this_host() {
    let agent = Agent::start();
    let reply = agent.get("/");
    assert_page_headers(&reply);
    let page = reply.text();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    let script = agent.get("/fleet.js");
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.text().contains("DOMParser"), "{}", script.text());
    for part in [
        "<script src=\"/fleet.js\" defer=\"\"></script>",
        "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>",
        "<main id=\"fleet\">",
        "seen from <b>web-1</b>",
        "1 node, 0 dead, 2 groups",
        "<th>db</th><th>web</th>",
        "<td>web-1 (this host)</td><td class=\"alive\">alive</td>",
        "<p>no release yet (1 member)</p>",
    ] {
        assert!(page.contains(part), "{part}\nnot in\n{page}");
    }

    let head = wire::request(agent.addr, "HEAD", "/", &[]);
    assert_page_headers(&head);
    assert!(head.body.is_empty());
    let post = wire::post(agent.addr, "/", None, b"");
    assert_eq!(post.status, 405, "{}", post.text());
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    for path in ["/index.html", "/v1", "/fleet"] {
        assert_eq!(agent.get(path).status, 404, "{path}");
    }
}

#[test]
fn a_halt_shows_in_red_with_its_reason_escaped() {
    let agent = Agent::start();
    agent.release("web", "v2.0.0", Policy::default());
    let body = br#"{"reason": "<script>alert('x')</script> & \"more\""}"#;
    assert_eq!(agent.steer("web", "halt", body).status, 202);
    let reply = agent.get("/");
    assert_page_headers(&reply);
    let page = reply.text();
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    let halt = "<div class=\"halt\"><p>HALTED by web-1: halted by token@web-1: \
                &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;</p>";
    assert!(page.contains(halt), "{halt}\nnot in\n{page}");
    assert!(
        page.contains("<h3>web <code>v2.0.0</code>"),
        "the halted group's target: {page}"
    );
}

#[test]
fn the_page_of_a_real_agent_shows_its_deployment() {
    let host = Host::start();
    host.publish("v1.0.0", Hooks::Good);
    host.wait_web("v1.0.0 deployed", |g| {
        g["current_revision"] == "v1.0.0" && g["rollout"]["step"] == "done"
    });
    let reply = wire::get(host.agent.addr(), "/");
    assert_page_headers(&reply);
    let page = reply.text();
    for part in [
        "seen from <b>test-node</b>",
        "<th>web</th>",
        "<td>test-node (this host)</td><td class=\"alive\">alive</td>\
         <td><code>v1.0.0</code> <span class=\"idle\">idle</span>",
        "<h3>web <code>v1.0.0</code>",
        "<b>1/1 done</b>",
        "this host runs <code>v1.0.0</code>, idle; step <b>done</b> on <code>v1.0.0</code>",
    ] {
        assert!(page.contains(part), "{part}\nnot in\n{page}");
    }
}
