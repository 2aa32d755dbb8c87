//! Proxies from the environment: `HTTPS_PROXY` (as the systemd unit tells operators to set
//! it) carries the fetch through an HTTP CONNECT proxy, and `NO_PROXY` bypasses it. The proxy
//! here is a small real one: it reads `CONNECT host:port`, connects, answers 200 and relays.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use super::{Home, served, verify};

/// An HTTP CONNECT proxy on a free port of 127.0.0.1 that records the targets it tunnelled to.
pub struct ConnectProxy {
    addr: SocketAddr,
    tunnels: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (seen, stop) = (tunnels.clone(), stopping.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), seen) = (client, seen.clone()) else {
                    continue;
                };
                thread::spawn(move || tunnel(client, &seen));
            }
        });
        ConnectProxy {
            addr,
            tunnels,
            stopping,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `host:port` of every tunnel asked for so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut client = client;
    let Some(target) = request
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
    else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    seen.lock().unwrap().push(target.to_owned());
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
    let mut client_write = client.try_clone().unwrap();
    // The reader hands on first what it buffered past the request head.
    let forward = thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = forward.join();
}

#[test]
fn https_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it() {
    let Some((scene, servers, name)) = served("https-proxy") else {
        return;
    };
    let home = Home::new();
    let proxy = ConnectProxy::start();
    let url = servers.https_url(servers.https_port, "127.0.0.1", &name);
    let ca = servers.ca.to_str().unwrap();
    let target = format!("127.0.0.1:{}", servers.https_port);

    let through = [("GIT_SSL_CAINFO", ca), ("HTTPS_PROXY", &proxy.url())];
    let (ok, said) = verify(&home, &scene, &url, &[], &through);
    assert!(ok, "{said}");
    assert!(
        proxy.tunnels().contains(&target),
        "the fetch did not go through the proxy: {:?}",
        proxy.tunnels()
    );

    let before = proxy.tunnels().len();
    let bypass = [
        ("GIT_SSL_CAINFO", ca),
        ("HTTPS_PROXY", &proxy.url()),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let (ok, said) = verify(&home, &scene, &url, &[], &bypass);
    assert!(ok, "{said}");
    assert_eq!(proxy.tunnels().len(), before, "NO_PROXY was not honoured");

    // A proxy that is down is named as the proxy, not as the server.
    let gone = format!("http://127.0.0.1:{}", super::servers::free_port());
    let (ok, said) = verify(
        &home,
        &scene,
        &url,
        &[],
        &[("GIT_SSL_CAINFO", ca), ("HTTPS_PROXY", &gone)],
    );
    super::refused_saying(ok, &said, &[&format!("the proxy {gone} did not connect")]);
}
