//! What the notification tests share: events and targets, and a webhook receiver, a real
//! HTTP/1.1 server on 127.0.0.1:0, plain or over TLS (rustls, with a certificate `openssl`
//! makes), that answers each request as scripted and hands it to the test.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shoal_shared::history::{EventKind, FleetEvent};
use tokio::sync::mpsc;

use super::{Backoff, Events, NotifyStats, WebhookTarget};

/// How long a test waits for what should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// A quick backoff: 10 ms, 20 ms, 40 ms; `attempts` attempts.
pub fn quick(attempts: u32) -> Backoff {
    Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
        attempts,
    }
}

/// Event `kind` of deployment `d-<n>` of group `web`.
pub fn event(kind: EventKind, n: u32) -> FleetEvent {
    FleetEvent {
        event: kind,
        group: "web".into(),
        deployment: format!("d-{n}"),
        revision: "v2".into(),
        at: "2026-01-02T03:04:05Z".into(),
        host: Some("web-2".into()),
        by: None,
        reason: (kind == EventKind::HostFailed).then(|| "ValidateService exited 1".into()),
        output: Vec::new(),
        node: "web-1".into(),
    }
}

/// A webhook to `url` for every event, unsigned, with a 5 s timeout.
pub fn webhook(url: url::Url) -> WebhookTarget {
    WebhookTarget {
        url,
        secret: None,
        events: Events::all(),
        timeout: Duration::from_secs(5),
    }
}

/// Polls `stats` until `done` holds of them, for at most [`WAIT`]; returns the last seen.
pub async fn stats_until(
    stats: impl Fn() -> NotifyStats,
    done: impl Fn(&NotifyStats) -> bool,
) -> NotifyStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = stats();
        if done(&now) || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// With this status and an empty body.
    Status(u16),
    /// Never: the connection stays open and silent.
    Silence,
}

/// One request as the receiver read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    requests_rx: mpsc::UnboundedReceiver<Request>,
}

impl Receiver {
    /// Plain HTTP, answering with `script` in order, then `then` for ever.
    pub fn start(script: &[Answer], then: Answer) -> Self {
        Self::serve(script, then, None)
    }

    /// HTTPS under `tls`.
    pub fn start_tls(script: &[Answer], then: Answer, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::serve(script, then, Some(tls))
    }

    fn serve(script: &[Answer], then: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        let mut script: VecDeque<Answer> = script.iter().copied().collect();
        std::thread::spawn(move || {
            // Silent connections stay open for as long as the receiver lives.
            let mut silent: Vec<Box<dyn Send>> = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let answer = script.pop_front().unwrap_or(then);
                let kept = match &tls {
                    None => exchange(stream, answer, &requests_tx),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                            return;
                        };
                        let tls_stream = rustls::StreamOwned::new(conn, stream);
                        exchange(tls_stream, answer, &requests_tx)
                    }
                };
                silent.extend(kept);
            }
        });
        Self {
            addr,
            scheme,
            requests_rx,
        }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> url::Url {
        let text = format!("{}://{}{path}", self.scheme, self.addr);
        url::Url::parse(&text).expect("url")
    }

    /// The next request, if one comes `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Request> {
        tokio::time::timeout(within, self.requests_rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// A request that already came and was not taken yet.
    pub fn pending(&mut self) -> Option<Request> {
        self.requests_rx.try_recv().ok()
    }
}

/// Reads one request from `stream`, hands it over and answers it; a silent stream is returned
/// to be kept open.
fn exchange<S: Read + Write + Send + 'static>(
    mut stream: S,
    answer: Answer,
    requests_tx: &mpsc::UnboundedSender<Request>,
) -> Option<Box<dyn Send>> {
    let request = read_request(&mut stream)?;
    let _ = requests_tx.send(request);
    match answer {
        Answer::Status(code) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {code} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.flush();
            None
        }
        Answer::Silence => Some(Box::new(stream)),
    }
}

fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = (headers.iter())
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&buf[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A CA and a certificate for 127.0.0.1 it signed, made in `dir` with `openssl`: the server's
/// TLS config and the CA the client must trust.
pub fn tls_for_localhost(dir: &Path) -> (Arc<rustls::ServerConfig>, reqwest::Certificate) {
    let openssl = |args: &str| {
        let out = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args}: {out:?}");
    };
    openssl(
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
         -subj /CN=shoal-test-CA -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem",
    );
    openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out server.key");
    openssl("req -new -key server.key -subj /CN=localhost -out server.csr");
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.pem",
    );
    let cert = CertificateDer::from_pem_file(dir.join("server.pem")).expect("server.pem");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let ca = std::fs::read(dir.join("ca.pem")).expect("ca.pem");
    let ca = reqwest::Certificate::from_pem(&ca).expect("a CA certificate");
    (Arc::new(config), ca)
}
