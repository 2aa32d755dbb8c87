//! Raw HTTP/1.1 over `std::net::TcpStream`: requests written byte for byte (so tests can send
//! what no client library would) and responses read with their headers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::DEADLINE;

/// One response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not the JSON expected ({e}): {}", self.text()))
    }

    /// The `error` of a JSON error body, after checking it is one.
    pub fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let body: shoal_shared::status::ErrorBody = self.json();
        body.error
    }
}

/// A connection with the deadline as its read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// `GET path` with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[])
}

/// `method path` with `extra` header lines (each ending in CRLF) and `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for line in extra {
        head.push_str(line);
    }
    head.push_str("\r\n");
    send(addr, head.as_bytes()).unwrap()
}

/// Writes `raw` on a new connection (a write error is ignored: the server may close early)
/// and reads the response to the end of the connection.
pub fn send(addr: SocketAddr, raw: &[u8]) -> io::Result<Reply> {
    let mut stream = connect(addr);
    let _ = stream.write_all(raw);
    let mut received = Vec::new();
    stream.read_to_end(&mut received)?;
    parse(&received)
}

/// Reads one response off a kept-alive `stream` (its body sized by Content-Length).
pub fn read_one(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut received = Vec::new();
    let mut byte = [0; 1];
    while !received.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        received.push(byte[0]);
    }
    let mut reply = parse(&received)?;
    let length: usize = reply
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    reply.body = vec![0; length];
    stream.read_exact(&mut reply.body)?;
    Ok(reply)
}

fn parse(received: &[u8]) -> io::Result<Reply> {
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(received))?;
    let head = String::from_utf8_lossy(&received[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(received))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: received[split + 4..].to_vec(),
    })
}

fn invalid(received: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(received)
        ),
    )
}

/// `POST path` with `Authorization: <authorization>` when given, and `body`.
pub fn post(addr: SocketAddr, path: &str, authorization: Option<&str>, body: &[u8]) -> Reply {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(value) = authorization {
        raw.push_str(&format!("Authorization: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    send(addr, &raw).unwrap()
}
