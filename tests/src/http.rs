//! A one-request HTTP/1.1 client over a plain `TcpStream`, enough for test servers (moto) and
//! for exact byte accounting through the counting proxy; no TLS, no redirects, no chunking.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take before it fails with a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What came back from one [`request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code, such as 200.
    pub status: u16,
    /// Everything after the response head, as text (a chunked body is not decoded).
    pub body: String,
    /// Bytes written to the connection: head and body of the request.
    pub bytes_sent: u64,
    /// Bytes read from the connection: head and body of the response.
    pub bytes_received: u64,
}

/// Sends `method path` with `body` to `addr` on a new connection, with `Connection: close`, and
/// reads the whole response. No `Content-Type` is sent, so S3 servers store `body` as is.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut sent = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    sent.extend_from_slice(body);
    stream.write_all(&sent)?;
    let mut received = Vec::new();
    stream.read_to_end(&mut received)?;
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no HTTP status line from {addr}: {head:?}"),
            )
        })?;
    Ok(Reply {
        status,
        body: body.to_owned(),
        bytes_sent: sent.len() as u64,
        bytes_received: received.len() as u64,
    })
}
