//! One plain HTTP/1.1 request on a new connection: what the CLI asks the agent's status
//! endpoint with (GET, and POST for the controls), and what an `http:` health check asks a local
//! service with. No TLS, no redirects.

use std::io;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, header};
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
    send(addr, request(Method::GET, host, path, None, None)?).await
}

/// `method path` with `Host: host`, shoal's `User-Agent`, `Authorization: Bearer token` when
/// a `bearer` token is given, and a JSON `body` when one is given.
pub fn request(
    method: Method,
    host: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Request<Full<Bytes>>, GetError> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, USER_AGENT);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(GetError::Request)
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
