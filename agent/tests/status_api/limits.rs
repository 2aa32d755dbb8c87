//! The endpoint's bounds: large bodies and heads are refused (never a hang), slow and idle
//! connections are closed, connections past the cap are closed at once, and shutdown stops
//! accepting.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use shoal_agent::report::http::Limits;

use crate::{Agent, DEADLINE, wire};

/// Whether the server closes `stream` (end of file or a reset) before the read timeout.
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    let mut buf = [0; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return true;
            }
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

#[test]
fn a_body_over_64_kib_is_refused_with_413() {
    let agent = Agent::start();
    let declared = wire::request(
        agent.addr,
        "GET",
        "/v1/status",
        &["Content-Length: 1000000\r\n"],
    );
    assert_eq!(declared.status, 413);
    assert!(declared.error().contains("over 64 KiB"));

    let chunk = vec![b'x'; 70 * 1024];
    let mut raw = format!(
        "GET /v1/status HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        chunk.len()
    )
    .into_bytes();
    raw.extend_from_slice(&chunk);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let streamed = wire::send(agent.addr, &raw).unwrap();
    assert_eq!(streamed.status, 413);
}

#[test]
fn a_body_that_never_comes_is_a_408() {
    let agent = Agent::start_with(Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let reply = wire::request(agent.addr, "GET", "/live", &["Content-Length: 5\r\n"]);
    assert_eq!(reply.status, 408);
    assert!(reply.error().contains("did not arrive in time"));
}

#[test]
fn a_64_kib_header_gets_an_error_or_a_closed_connection_not_a_hang() {
    let agent = Agent::start();
    let raw = format!(
        "GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    match wire::send(agent.addr, raw.as_bytes()) {
        Ok(reply) => assert_eq!(reply.status, 431, "{reply:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::InvalidData
            ),
            "{e}"
        ),
    }
    // The server is still there for the next client.
    assert_eq!(agent.get("/live").status, 200);
}

#[test]
fn idle_and_slow_connections_are_closed() {
    let agent = Agent::start_with(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    // Kept alive after an answer, then silent.
    let mut idle = wire::connect(agent.addr);
    idle.write_all(b"GET /live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(wire::read_one(&mut idle).unwrap().status, 200);
    assert!(closed_by_server(&mut idle));
    // Half a request head, then silent.
    let mut slow = wire::connect(agent.addr);
    slow.write_all(b"GET /live HTTP/1.1\r\nHost:").unwrap();
    assert!(closed_by_server(&mut slow));
}

#[test]
fn a_connection_past_the_cap_makes_the_oldest_idle_one_close() {
    let agent = Agent::start_with(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let mut first = wire::connect(agent.addr);
    let mut second = wire::connect(agent.addr);
    // The second is served, so both were accepted before the third.
    second
        .write_all(b"GET /live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(wire::read_one(&mut second).unwrap().status, 200);
    let mut third = wire::connect(agent.addr);
    third
        .write_all(b"GET /live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(wire::read_one(&mut third).unwrap().status, 200);
    assert!(
        closed_by_server(&mut first),
        "the oldest idle one makes room"
    );
}

/// A local user who holds every connection and says nothing cannot keep the endpoint from
/// others: each new connection makes the oldest idle one close.
#[test]
fn idle_connections_held_by_one_client_do_not_keep_others_out() {
    let agent = Agent::start();
    let idle: Vec<_> = (0..64).map(|_| wire::connect(agent.addr)).collect();
    let reply = wire::send(
        agent.addr,
        b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .expect("served past 64 idle connections");
    assert!(matches!(reply.status, 200 | 503), "{}", reply.status);
    drop(idle);
}

#[test]
fn shutdown_stops_accepting_and_closes_kept_alive_connections() {
    let mut agent = Agent::start();
    let mut kept = wire::connect(agent.addr);
    kept.write_all(b"GET /live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(wire::read_one(&mut kept).unwrap().status, 200);
    assert!(agent.stop(), "serve did not return after shutdown");
    assert!(closed_by_server(&mut kept));
    let refused = std::net::TcpStream::connect_timeout(&agent.addr, DEADLINE);
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(ErrorKind::ConnectionRefused)
    );
}

/// A page a browser on this host loaded from elsewhere reaches 127.0.0.1 only under a name of
/// its own (DNS rebinding): a request from this host whose Host header names another host is
/// refused, for reading as for steering; the addresses, `localhost` and the hostname pass.
#[test]
fn a_request_from_this_host_for_another_hosts_name_is_a_403() {
    let agent = Agent::start();
    let port = agent.addr.port();
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        "evil.example".to_owned(),
    ] {
        for path in ["/v1/status", "/", "/v1/deployments"] {
            let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let reply = wire::send(agent.addr, head.as_bytes()).unwrap();
            assert_eq!(reply.status, 403, "{host} {path}: {}", reply.text());
            assert!(
                reply.error().contains("does not name this host"),
                "{}",
                reply.text()
            );
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("{hostname}:{port}"),
    ] {
        let head = format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let reply = wire::send(agent.addr, head.as_bytes()).unwrap();
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
}
