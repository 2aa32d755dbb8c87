//! One plain HTTP/1.1 request on a new connection: what the CLI asks the agent's status
//! endpoint with (GET, and POST for the controls), and what an `http:` health check asks a local
//! service with. No TLS, no redirects.

use std::io;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, ToSocketAddrs};

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// The connection could not be made.
    #[error("cannot connect ({0})")]
    Connect(#[source] io::Error),
    /// The connection was made but HTTP failed on it.
    #[error("{0}")]
    Http(#[source] hyper::Error),
    /// `path` or `host` cannot go into a request.
    #[error("cannot build the request: {0}")]
    Request(#[source] hyper::http::Error),
}

/// `GET path` to `addr` with `Host: host`; the response once its head arrived. The caller
/// bounds the time it may take.
pub async fn get(
    addr: impl ToSocketAddrs,
    host: &str,
    path: &str,
) -> Result<Response<Incoming>, GetError> {
    let request = Request::get(path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::new()))
        .map_err(GetError::Request)?;
    send(addr, request).await
}

/// What shoal says it is in requests.
pub const USER_AGENT: &str = concat!("shoal/", env!("CARGO_PKG_VERSION"));

/// Sends `request` to `addr` on a new connection; the response once its head arrived.
pub async fn send(
    addr: impl ToSocketAddrs,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, GetError> {
    let stream = TcpStream::connect(addr).await.map_err(GetError::Connect)?;
    send_on(stream, request).await
}

/// Sends `request` on `stream`, a new connection of any kind (TCP, a Unix socket); the
/// response once its head arrived.
pub async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, GetError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(GetError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "http connection ended");
        }
    });
    sender.send_request(request).await.map_err(GetError::Http)
}
