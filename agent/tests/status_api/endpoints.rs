//! Every endpoint and its status codes: liveness, the ready flip, the board as JSON, the
//! deployments newest first, one deployment's detail, and the JSON errors (404, 405, 400).

use shoal_agent::execute::deployment::Status;
use shoal_shared::status::{
    DeploymentDetail, DeploymentSummary, NodeStatus, Notice, Phase, Readiness,
};

use crate::{Agent, record, wire};

#[test]
fn live_answers_ok_as_text() {
    let agent = Agent::start();
    let reply = agent.get("/live");
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let head = wire::request(agent.addr, "HEAD", "/live", &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
}

#[test]
fn ready_waits_for_every_group_to_check_its_channel() {
    let agent = Agent::start();
    let reply = agent.get("/ready");
    assert_eq!(reply.status, 503);
    let readiness: Readiness = reply.json();
    assert!(!readiness.ready);
    assert_eq!(readiness.waiting, ["web", "db"]);
    assert!(readiness.reason.contains("web, db"), "{}", readiness.reason);

    agent.board.update("web", |g| {
        g.last_check = Some("2026-05-01T10:00:05Z".into());
    });
    let readiness: Readiness = agent.get("/ready").json();
    assert_eq!(readiness.waiting, ["db"]);

    // A failed first check counts: the agent is up and says why the channel failed.
    agent.board.update("db", |g| {
        g.last_channel_error = Some(Notice {
            message: "connection refused".into(),
            when: "2026-05-01T10:00:06Z".into(),
        });
    });
    let reply = agent.get("/ready");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let readiness: Readiness = reply.json();
    assert!(readiness.ready && readiness.waiting.is_empty());

    // Shutting down: no longer ready, while /live still answers.
    agent.board.update("web", |g| g.phase = Phase::Stopping);
    let reply = agent.get("/ready");
    assert_eq!(reply.status, 503, "{}", reply.text());
    let readiness: Readiness = reply.json();
    assert_eq!(readiness.reason, "the agent is shutting down");
    assert_eq!(agent.get("/live").status, 200);
}

#[test]
fn status_is_the_board_as_json() {
    let agent = Agent::start();
    agent.board.update("web", |g| {
        g.current_revision = Some("v1.2.0".into());
        g.last_check = Some("2026-05-01T10:00:05Z".into());
    });
    let reply = agent.get("/v1/status");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let status: NodeStatus = reply.json();
    assert_eq!(status, agent.board.snapshot());
    assert_eq!(status.groups[0].current_revision.as_deref(), Some("v1.2.0"));
}

#[test]
fn deployments_are_listed_newest_first_across_groups() {
    let agent = Agent::start();
    assert_eq!(
        agent
            .get("/v1/deployments")
            .json::<Vec<DeploymentSummary>>(),
        []
    );
    let old = "d-aaaaaaaaaaaa";
    agent.deployment(old, &record("web", old, Status::Failed, 1_000), None);
    agent.deployment(
        "d-aaaaaaaaaaaa.2",
        &record("web", old, Status::Succeeded, 3_000),
        None,
    );
    let db = "d-bbbbbbbbbbbb";
    agent.deployment(db, &record("db", db, Status::InProgress, 2_000), None);
    let list: Vec<DeploymentSummary> = agent.get("/v1/deployments").json();
    let ids: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|d| (d.id.as_str(), d.group.as_str(), d.result.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("d-aaaaaaaaaaaa.2", "web", "succeeded"),
            ("d-bbbbbbbbbbbb", "db", "in-progress"),
            ("d-aaaaaaaaaaaa", "web", "failed"),
        ]
    );
    assert_eq!(list[2].events[1].exit_code, Some(1));
    assert_eq!(list[2].started, "1970-01-01T00:00:01Z");
}

#[test]
fn a_deployment_carries_its_events_warnings_and_log_tail() {
    let agent = Agent::start();
    let id = "d-0123456789ab";
    let log = "[BeforeInstall] [stdout] installing\n[AfterInstall] [stderr] boom\n";
    agent.deployment(id, &record("web", id, Status::Failed, 1_000), Some(log));
    let reply = agent.get_admin(&format!("/v1/deployments/{id}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let detail: DeploymentDetail = reply.json();
    assert_eq!(detail.summary.id, id);
    assert_eq!(detail.summary.result, "failed");
    assert_eq!(
        detail.summary.error.as_deref(),
        Some("AfterInstall failed: exit code 1")
    );
    assert_eq!(detail.summary.events.len(), 2);
    assert_eq!(detail.warnings.len(), 1);
    assert_eq!(
        (detail.log_tail.as_str(), detail.log_size),
        (log, log.len() as u64)
    );
}

#[test]
fn a_long_log_is_tailed_from_a_line_start() {
    let agent = Agent::start();
    let id = "d-0123456789ab";
    let log: String = (0..5_000)
        .map(|i| format!("line {i:05} of the hook output\n"))
        .collect();
    agent.deployment(id, &record("web", id, Status::Succeeded, 1), Some(&log));
    let detail: DeploymentDetail = agent.get_admin(&format!("/v1/deployments/{id}")).json();
    assert_eq!(detail.log_size, log.len() as u64);
    assert!(detail.log_tail.len() <= 64 * 1024);
    assert!(
        detail.log_tail.starts_with("line "),
        "{}",
        &detail.log_tail[..40]
    );
    assert!(log.ends_with(&detail.log_tail));
    assert!(detail.log_tail.ends_with("line 04999 of the hook output\n"));
}

#[test]
fn an_unknown_deployment_is_a_json_404() {
    let agent = Agent::start();
    for path in [
        "/v1/deployments/d-ffffffffffff",
        "/v1/deployments/d-ffffffffffff/log",
    ] {
        let reply = agent.get_admin(path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(
            reply
                .error()
                .contains("no deployment `d-ffffffffffff` on this host"),
            "{path}: {reply:?}"
        );
    }
}

#[test]
fn ids_that_could_leave_the_deployment_root_are_refused() {
    let agent = Agent::start();
    // A deployment-looking directory outside the root, which a traversal would reach.
    let outside = agent.root.parent().unwrap().join("web/d-0123456789ab");
    record("web", "d-0123456789ab", Status::Succeeded, 1)
        .save(&outside)
        .unwrap();
    for (path, status) in [
        ("/v1/deployments/..%2f..%2fweb%2fd-0123456789ab", 400),
        ("/v1/deployments/..%2f", 400),
        ("/v1/deployments/%2e%2e", 400),
        ("/v1/deployments/d-..%2fx", 400),
        ("/v1/deployments/..", 400),
        ("/v1/deployments/d-../x", 404),
        ("/v1/deployments/../web/d-0123456789ab", 404),
        ("/v1/deployments/d-0123456789ab/../../x", 404),
    ] {
        let reply = agent.get(path);
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        let error = reply.error();
        if status == 400 {
            assert!(error.contains("is not a deployment id"), "{path}: {error}");
        }
    }
}

#[test]
fn unknown_paths_are_json_404s_and_other_methods_405s() {
    let agent = Agent::start();
    for path in [
        "/index.html",
        "/v2/status",
        "/v1/status/extra",
        "/metrics.txt",
    ] {
        let reply = agent.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.error().contains("/v1/status"), "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let reply = wire::request(agent.addr, method, "/v1/status", &["Content-Length: 0\r\n"]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
        assert!(reply.error().contains("GET, HEAD"), "{method}");
    }
}
