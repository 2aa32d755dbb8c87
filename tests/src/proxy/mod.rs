//! A TCP proxy that counts what passes through it: connections, HTTP requests and bytes each
//! way. It sits between a client and a server (an S3 store, `git daemon`) to measure what an
//! operation costs on the wire.

mod requests;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use requests::RequestCounter;

/// What went through the proxy since it started or was last [`reset`](CountingProxy::reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client connections accepted.
    pub connections: u64,
    /// HTTP request heads sent upstream (see below for what counts).
    pub requests: u64,
    /// Bytes from clients to the upstream.
    pub bytes_up: u64,
    /// Bytes from the upstream to clients.
    pub bytes_down: u64,
}

/// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`, one thread
/// per direction. Counters move before bytes are forwarded, so once a client has its response
/// the stats include the exchange.
///
/// Requests are counted by reading each connection's upstream bytes as HTTP/1.1: a head that
/// starts with a method and ends at its blank line counts one, keep-alive and pipelined heads
/// included, and a `Content-Length` body (a PUT's content) is skipped. A chunked body, or bytes
/// that are not HTTP (the git protocol), end request counting for that connection; bytes are
/// always counted.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    connections: AtomicU64,
    requests: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    stopping: AtomicBool,
    /// Both ends of each connection still open, so dropping the proxy can cut them.
    open: Mutex<HashMap<u64, [TcpStream; 2]>>,
}

impl CountingProxy {
    /// Starts forwarding to `upstream`; panics if it cannot listen.
    pub fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the proxy's address: {e}"));
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, upstream, &shared))
        };
        CountingProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            connections: s.connections.load(Ordering::SeqCst),
            requests: s.requests.load(Ordering::SeqCst),
            bytes_up: s.bytes_up.load(Ordering::SeqCst),
            bytes_down: s.bytes_down.load(Ordering::SeqCst),
        }
    }

    /// Sets every counter back to zero (open connections stay open).
    pub fn reset(&self) {
        let s = &self.shared;
        for counter in [&s.connections, &s.requests, &s.bytes_up, &s.bytes_down] {
            counter.store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for CountingProxy {
    /// Stops accepting, then cuts the connections still open.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in `accept`; it sees `stopping` and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for stream in open.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    for (id, client) in (0u64..).zip(listener.incoming()) {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect(upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        // A writing end for each direction, and both ends kept for `Drop` to cut.
        let (Ok(to_client), Ok(to_server), Ok(kept_client), Ok(kept_server)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        let mut open = shared.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.insert(id, [kept_client, kept_server]);
        drop(open);
        let directions = Arc::new(AtomicUsize::new(2));
        for (from, to, up) in [(client, to_server, true), (server, to_client, false)] {
            let (shared, directions) = (Arc::clone(shared), Arc::clone(&directions));
            std::thread::spawn(move || {
                pump(from, to, up, &shared);
                // The last direction to finish forgets the connection.
                if directions.fetch_sub(1, Ordering::SeqCst) == 1 {
                    let mut open = shared.open.lock().unwrap_or_else(PoisonError::into_inner);
                    open.remove(&id);
                }
            });
        }
    }
}

/// Copies `from` to `to` until end of stream, counting; passes a half-close on.
fn pump(mut from: TcpStream, mut to: TcpStream, up: bool, shared: &Shared) {
    let mut requests = RequestCounter::default();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let bytes = &buf[..n];
        if up {
            shared.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
            shared
                .requests
                .fetch_add(requests.feed(bytes), Ordering::SeqCst);
        } else {
            shared.bytes_down.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(bytes).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
