//! The status endpoint's accept loops (hyper, HTTP/1): one task per connection, a cap on how
//! many run at once in all and per client (the oldest idle one makes room, see `slots`),
//! bounded request heads and bodies, timeouts for slow or idle clients, and a shutdown that
//! stops accepting and gives requests in flight a short grace. Each request is answered knowing
//! its peer: a TCP address (the steering calls are for this host only), or root on this host
//! over the control socket, which steers without a token and has connections of its own.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::auth::{is_local, names_this_host};
use super::handlers;
use super::peer::{Peer, accept_control, root_peer};
use super::reply::{Asked, Body, error};
use super::route;
use super::slots::{Busy, Slots};
use super::state::ServerState;

/// The endpoint's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections held at once. A new one past it makes the oldest idle one close; it is
    /// closed at once only when every other is busy answering.
    pub max_connections: usize,
    /// Connections held at once from one client address (an IPv6 /64).
    pub max_connections_per_peer: usize,
    /// Connections held at once on the control socket (apart from the others).
    pub max_control_connections: usize,
    /// The largest request head (request line and headers); a larger one gets 431.
    pub max_header_bytes: usize,
    /// The largest request body; a larger one gets 413 (only the steering calls take a body,
    /// and a smaller one: [`MAX_CONTROL_BODY`]).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request head. It also closes a kept-alive
    /// connection that sends no next request within this time.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_read_timeout: Duration,
    /// How long one connection may stay open in all.
    pub max_connection_age: Duration,
    /// How long requests in flight may go on once shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_connections_per_peer: 16,
            max_control_connections: 8,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// The largest body a steering call takes (a halt's `{"reason": …}`).
pub const MAX_CONTROL_BODY: usize = 4 * 1024;

/// hyper refuses a buffer smaller than this.
const MIN_BUF_SIZE: usize = 8192;

/// The pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the status endpoint on `listener`, and steering for root on `control`, with the
/// default [`Limits`] until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    control: Option<UnixListener>,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
) {
    serve_all(listener, control, state, Limits::default(), shutdown).await;
}

/// Serves the status endpoint on `listener` alone until `shutdown` completes.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<ServerState>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    serve_all(listener, None, state, limits, shutdown).await;
}

/// Serves the status endpoint on `listener` and the control socket `control` until `shutdown`
/// completes; then stops accepting, lets requests in flight finish within
/// `limits.shutdown_grace`, and cuts the rest.
pub async fn serve_all(
    listener: TcpListener,
    control: Option<UnixListener>,
    state: Arc<ServerState>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let hostname: Arc<str> = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into())
        .unwrap_or_else(|_| "".into());
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_peer);
    let control_permits = Arc::new(Semaphore::new(limits.max_control_connections));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let serving = Serving {
        state,
        limits: Arc::clone(&limits),
        hostname,
        stop_rx,
    };
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = slots.admit(peer.ip()) else {
                        tracing::debug!(peer = %peer, "status connections all busy: closing a new one");
                        continue;
                    };
                    let serving = serving.clone();
                    connections.spawn(async move {
                        let requests = slot.requests();
                        let busy = move || Some(requests.start());
                        serving.connection(stream, Peer::Tcp(peer), busy, slot.evicted()).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a status connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            accepted = accept_control(control.as_ref()) => match accepted {
                Ok(stream) => {
                    let Some(peer) = root_peer(&stream) else {
                        continue;
                    };
                    let Ok(permit) = Arc::clone(&control_permits).try_acquire_owned() else {
                        tracing::debug!("too many control connections: closing a new one");
                        continue;
                    };
                    let serving = serving.clone();
                    connections.spawn(async move {
                        let _permit = permit;
                        serving.connection(stream, peer, || None, std::future::pending()).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a control connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    drop(control);
    drop(serving);
    drop(stop_tx);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            left = connections.len(),
            "status connections cut at shutdown"
        );
    }
    connections.shutdown().await;
}

/// What every connection task shares.
#[derive(Clone)]
struct Serving {
    state: Arc<ServerState>,
    limits: Arc<Limits>,
    hostname: Arc<str>,
    stop_rx: watch::Receiver<()>,
}

impl Serving {
    /// Serves one connection until the client closes it, it gets too old, it is `evicted`, or
    /// shutdown starts; a request in progress holds what `busy` gives.
    async fn connection<S, B>(
        mut self,
        stream: S,
        peer: Peer,
        busy: B,
        evicted: impl Future<Output = ()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        B: Fn() -> Option<Busy> + Clone + Send + 'static,
    {
        let service = {
            let state = Arc::clone(&self.state);
            let limits = Arc::clone(&self.limits);
            let hostname = Arc::clone(&self.hostname);
            service_fn(move |request| {
                let state = Arc::clone(&state);
                let limits = Arc::clone(&limits);
                let hostname = Arc::clone(&hostname);
                let busy = busy();
                async move {
                    let mut response = handle(&state, &limits, &hostname, peer, request).await;
                    drop(busy);
                    // No body of ours is to be read as anything but its Content-Type (a hook's
                    // output in a log is text, whatever it looks like).
                    response.headers_mut().insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let limits = Arc::clone(&self.limits);
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE));
        let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), service));
        let mut evicted = std::pin::pin!(evicted);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, error = %e, "status connection ended");
                }
                return;
            }
            _ = self.stop_rx.changed() => {}
            () = &mut evicted => tracing::debug!(peer = %peer, "status connection closed to make room"),
            () = tokio::time::sleep(limits.max_connection_age) => {}
        }
        conn.as_mut().graceful_shutdown();
        match tokio::time::timeout(limits.shutdown_grace, conn).await {
            Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "status connection ended"),
            Err(_) => tracing::debug!(peer = %peer, "status connection cut"),
            Ok(Ok(())) => {}
        }
    }
}

/// Answers one request: routes it, reads (and bounds) its body, answers, logs it at debug.
async fn handle(
    state: &ServerState,
    limits: &Limits,
    hostname: &str,
    peer: Peer,
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if let Some(refused) = foreign_host(&request, hostname, peer) {
        tracing::debug!(method = %method, path = %path, client.addr = %peer, "status request for another host's name");
        return refused;
    }
    let route = route(&method, &path, request.uri().query());
    let header_text = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header_text(header::AUTHORIZATION.as_str());
    let operator = header_text(super::OPERATOR_HEADER);
    let limit = if route.takes_body() {
        limits.max_body_bytes.min(MAX_CONTROL_BODY)
    } else {
        limits.max_body_bytes
    };
    let response = match read_body(request, limit, limits.body_read_timeout).await {
        Ok(body) => {
            let asked = Asked {
                route,
                path: &path,
                peer,
                authorization: authorization.as_deref(),
                operator: operator.as_deref(),
                body,
            };
            handlers::respond(state, asked).await
        }
        Err(mut response) => {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    tracing::debug!(
        method = %method,
        path = %path,
        client.addr = %peer,
        status = response.status().as_u16(),
        "status request"
    );
    response
}

/// The 403 for a request from this host whose `Host` header names another host (see
/// [`names_this_host`]). Requests from other hosts reached an address the operator opened.
fn foreign_host(request: &Request<Incoming>, hostname: &str, peer: Peer) -> Option<Response<Body>> {
    let Peer::Tcp(peer) = peer else {
        return None; // no browser reaches the control socket
    };
    if !is_local(peer) {
        return None;
    }
    let host = request.headers().get(header::HOST)?;
    let host = host.to_str().unwrap_or("");
    if names_this_host(host, hostname) {
        return None;
    }
    let mut refused = error(
        StatusCode::FORBIDDEN,
        &format!(
            "the Host header {host:?} does not name this host; ask for 127.0.0.1, localhost or {hostname:?} (a proxy on this host must pass one of them)"
        ),
    );
    refused
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(refused)
}

/// Reads the request body (at most `limit` bytes), or the error response when it is too large,
/// too slow or broken.
async fn read_body(
    request: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        let what = if limit < 1024 {
            format!("{limit} bytes")
        } else {
            format!("{} KiB", limit / 1024)
        };
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request body is over {what}; only a halt takes a body, \
                 {{\"reason\": \"…\"}} of at most {} KiB",
                MAX_CONTROL_BODY / 1024
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), limit).collect();
    match tokio::time::timeout(timeout, body).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read the request body: {e}"),
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
    }
}
