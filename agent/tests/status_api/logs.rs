//! `GET /v1/deployments/{id}/log` (with the admin token): the whole hook output, and from
//! `?offset=` on with the size and result a follower needs to go on.

use shoal_agent::execute::deployment::Status;

use crate::{Agent, append_log, record};

const ID: &str = "d-0123456789ab";

#[test]
fn the_whole_log_is_served_as_text_with_its_size() {
    let agent = Agent::start();
    let log: String = (0..20_000)
        .map(|i| format!("[Install] [stdout] line {i}\n"))
        .collect();
    agent.deployment(ID, &record("web", ID, Status::Succeeded, 1), Some(&log));
    let reply = agent.get_admin(&format!("/v1/deployments/{ID}/log"));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        reply.header("x-log-size"),
        Some(log.len().to_string().as_str())
    );
    assert_eq!(reply.header("x-deployment-result"), Some("succeeded"));
    assert!(reply.text() == log, "the log came back changed");
}

#[test]
fn a_follower_reads_on_from_the_offset_it_reached() {
    let agent = Agent::start();
    let dir = agent.deployment(
        ID,
        &record("web", ID, Status::InProgress, 1),
        Some("first\n"),
    );
    let first = agent.get_admin(&format!("/v1/deployments/{ID}/log?offset=0"));
    assert_eq!((first.status, first.text().as_str()), (200, "first\n"));
    assert_eq!(first.header("x-log-size"), Some("6"));
    assert_eq!(first.header("x-deployment-result"), Some("in-progress"));

    let idle = agent.get_admin(&format!("/v1/deployments/{ID}/log?offset=6"));
    assert_eq!((idle.status, idle.body.len()), (200, 0));
    assert_eq!(idle.header("x-log-size"), Some("6"));

    append_log(&dir, "second\n");
    record("web", ID, Status::Succeeded, 1).save(&dir).unwrap();
    let rest = agent.get_admin(&format!("/v1/deployments/{ID}/log?offset=6"));
    assert_eq!(rest.text(), "second\n");
    assert_eq!(rest.header("x-log-size"), Some("13"));
    assert_eq!(rest.header("x-deployment-result"), Some("succeeded"));
}

#[test]
fn a_deployment_without_output_has_an_empty_log() {
    let agent = Agent::start();
    agent.deployment(ID, &record("web", ID, Status::InProgress, 1), None);
    let reply = agent.get_admin(&format!("/v1/deployments/{ID}/log"));
    assert_eq!((reply.status, reply.body.len()), (200, 0));
    assert_eq!(reply.header("x-log-size"), Some("0"));
}

#[test]
fn offsets_past_the_end_or_not_numbers_are_json_errors() {
    let agent = Agent::start();
    agent.deployment(
        ID,
        &record("web", ID, Status::Succeeded, 1),
        Some("12345\n"),
    );
    let past = agent.get_admin(&format!("/v1/deployments/{ID}/log?offset=7"));
    assert_eq!(past.status, 416);
    assert!(
        past.error()
            .contains("offset 7 is past the end of the log (6 bytes)")
    );
    for offset in ["-1", "x", ""] {
        let bad = agent.get_admin(&format!("/v1/deployments/{ID}/log?offset={offset}"));
        assert_eq!(bad.status, 400, "{offset}");
        assert!(bad.error().contains("is not a byte count"), "{offset}");
    }
}
