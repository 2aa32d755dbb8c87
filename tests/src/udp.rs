//! A UDP relay that records: a node is told the relay is its peer; the relay passes every
//! datagram on both ways and keeps a copy of what the node sent, for replaying later.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

/// A running relay to one peer (its thread lives as long as the test process).
#[derive(Debug)]
pub struct Recorder {
    /// Where the node should send: the relay's own address.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    /// A relay to `peer` on 127.0.0.1.
    pub fn start(peer: SocketAddr) -> std::io::Result<Recorder> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = vec![0; 65_536];
            let mut node = None;
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                // The peer's answers go back to the node; the node's datagrams are kept.
                let next = if from == peer {
                    node
                } else {
                    node = Some(from);
                    if let Ok(mut kept) = kept.lock() {
                        kept.push(buf[..len].to_vec());
                    }
                    Some(peer)
                };
                if let Some(next) = next {
                    let _ = socket.send_to(&buf[..len], next);
                }
            }
        });
        Ok(Recorder { addr, seen })
    }

    /// Every datagram the node has sent so far.
    pub fn seen(&self) -> Vec<Vec<u8>> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
