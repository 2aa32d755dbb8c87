//! Real UDP on 127.0.0.1: port 0 binds a free port, that port is advertised and logged, and
//! three agents find each other through it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_agent::coordinate::{GroupValues, Mesh, MeshError};
use shoal_shared::gossip::Step;

use crate::{eventually, exclusive, settings, state};

const INTERVAL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(20);

/// Log lines written by the JSON subscriber, kept for the test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The address of the first `gossip listening` line, as a harness reading the log would find it.
fn logged_addr(lines: &Lines) -> Option<String> {
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text.lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = entry.get("fields")?;
        (fields.get("message")?.as_str()? == "gossip listening")
            .then(|| fields.get("gossip.addr")?.as_str().map(str::to_owned))?
    })
}

#[tokio::test(flavor = "current_thread")]
async fn three_agents_over_udp_on_port_zero() {
    let _one = exclusive().await;
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let first = Mesh::start(settings("a", &[], INTERVAL), &["web".to_owned()])
        .await
        .unwrap();
    drop(guard);
    let addr = first.gossip_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(logged_addr(&lines), Some(addr.to_string()));

    let mut nodes = vec![first];
    for name in ["b", "c"] {
        let mesh = Mesh::start(settings(name, &[addr], INTERVAL), &["web".to_owned()])
            .await
            .unwrap();
        nodes.push(mesh);
    }
    let running = GroupValues {
        state: Some(state("v1", Step::Running)),
        ..GroupValues::default()
    };
    nodes[2].publish("web", &running).await;
    eventually(
        DEADLINE,
        "a and b to see c's state, everyone alive",
        || async {
            for mesh in &nodes[..2] {
                let web = mesh.group("web").await;
                let all_alive = web.peers.len() == 2 && web.peers.iter().all(|p| p.alive);
                if !all_alive || web.peer("c")?.state != running.state {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for mesh in nodes {
        mesh.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_taken_port_is_a_bind_error_naming_it() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut busy = settings("a", &[], INTERVAL);
    busy.listen = taken.local_addr().unwrap();
    let err = Mesh::start(busy, &[])
        .await
        .err()
        .expect("the port is taken");
    assert!(matches!(err, MeshError::Bind { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&taken.local_addr().unwrap().to_string())
    );
}
