//! What each route answers: JSON for status, the fleet and deployments, text for `/live`, the
//! log and the metrics, the fleet as an HTML page for `/`, and `{ "error": … }` with
//! `application/json` for every error. Files are read on the blocking pool; a log is streamed,
//! never held whole in memory.

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use shoal_shared::status::{Fleet, Phase, Readiness};
use tokio::io::AsyncReadExt as _;

use super::reply::{Asked, Body, error, json, text};
use super::state::ServerState;
use super::{LOG_RESULT_HEADER, LOG_SIZE_HEADER, Route, control, fleet, page, private};
use crate::report::deployments::{self, DeploymentsError, LogSlice};
use crate::report::metrics::GroupGauges;

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How much of a log is read at a time while it is sent.
const LOG_CHUNK: u64 = 64 * 1024;

/// The answer to a request.
pub(super) async fn respond(state: &ServerState, asked: Asked<'_>) -> Response<Body> {
    let path = asked.path;
    match asked.route {
        Route::Live => text(StatusCode::OK, TEXT, "ok\n".to_owned()),
        Route::Ready => ready(state),
        Route::Status => {
            let mut status = state.board.snapshot();
            status.node.duplicated_by = duplicated_by(state);
            if !private::may_read(state, &asked) {
                for rollout in status.groups.iter_mut().filter_map(|g| g.rollout.as_mut()) {
                    rollout.failure_output.clear();
                }
            }
            json(StatusCode::OK, &status)
        }
        Route::Fleet => json(StatusCode::OK, &readable_fleet(state, &asked).await),
        Route::History { ref group } => history(state, group.as_deref(), &asked),
        Route::Page => fleet_page(state, &asked).await,
        Route::PageScript => page::script(),
        Route::Control { ref group, action } => control::answer(state, group, action, &asked).await,
        Route::Metrics => text(StatusCode::OK, OPENMETRICS, metrics(state).await),
        Route::Deployments => {
            let root = state.deployment_root.clone();
            match blocking(move || deployments::list(&root)).await {
                Ok(list) => json(StatusCode::OK, &list),
                Err(e) => deployments_error(&e),
            }
        }
        Route::Deployment { ref id } => {
            let (root, id) = (state.deployment_root.clone(), id.clone());
            let hide = !private::may_read(state, &asked);
            match blocking(move || deployments::detail(&root, &id)).await {
                Ok(mut detail) => {
                    if hide {
                        detail.log_tail.clear();
                        detail.log_hidden = true;
                    }
                    json(StatusCode::OK, &detail)
                }
                Err(e) => deployments_error(&e),
            }
        }
        Route::DeploymentLog { .. } if !private::may_read(state, &asked) => {
            private::refused(state, &asked)
        }
        Route::DeploymentLog { id, offset } => {
            let root = state.deployment_root.clone();
            match blocking(move || deployments::open_log(&root, &id, offset)).await {
                Ok(slice) => log(slice),
                Err(e) => deployments_error(&e),
            }
        }
        Route::MethodNotAllowed { allow } => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{path} answers {allow} only"),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
        Route::NotFound => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no endpoint {path}: try /v1/status, /v1/fleet, /v1/deployments, /metrics, \
                 /live or /ready"
            ),
        ),
        Route::BadRequest(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

/// The gossip addresses of the other live hosts that gossip under this host's node id.
fn duplicated_by(state: &ServerState) -> Vec<String> {
    let Some(mesh) = &state.mesh else {
        return Vec::new();
    };
    let own = mesh.gossip_addr();
    mesh.duplicates()
        .remove(&state.node)
        .unwrap_or_default()
        .into_iter()
        .filter(|addr| *addr != own)
        .map(|addr| addr.to_string())
        .collect()
}

fn ready(state: &ServerState) -> Response<Body> {
    let status = state.board.snapshot();
    let duplicated_by = duplicated_by(state);
    let waiting: Vec<String> = status
        .groups
        .iter()
        .filter(|g| !g.has_checked())
        .map(|g| g.name.clone())
        .collect();
    let stopping = status.groups.iter().any(|g| g.phase == Phase::Stopping);
    let (code, reason) = if stopping {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is shutting down".to_owned(),
        )
    } else if !duplicated_by.is_empty() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "another live host gossips under this node id {} (from {}): it takes no rollout slot until each host has its own node.id",
                state.node,
                duplicated_by.join(", ")
            ),
        )
    } else if status.node.ready {
        (
            StatusCode::OK,
            "every group has checked its channel or left it to its pollers".to_owned(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "waiting for the first channel check of {}",
                waiting.join(", ")
            ),
        )
    };
    let readiness = Readiness {
        ready: status.node.ready && !stopping && duplicated_by.is_empty(),
        reason,
        waiting,
    };
    json(code, &readiness)
}

/// The fleet page, with a policy that lets it load and run nothing.
/// `GET /v1/history`: every group's history, or one's (404 for a group this host does not
/// have); failed scripts' output only for a reader who may read hook output.
fn history(state: &ServerState, group: Option<&str>, asked: &Asked<'_>) -> Response<Body> {
    let mut histories = state.histories.get(group);
    if let Some(group) = group
        && histories.is_empty()
    {
        let names = state.groups.names().join(", ");
        return error(
            StatusCode::NOT_FOUND,
            &format!("no group `{group}` on this host: its groups are {names}"),
        );
    }
    if !private::may_read(state, asked) {
        for event in histories
            .iter_mut()
            .flat_map(|h| h.entries.iter_mut())
            .flat_map(|e| e.events.iter_mut())
        {
            event.output.clear();
        }
    }
    json(StatusCode::OK, &histories)
}

/// The fleet, with failed scripts' output only for a reader who may read hook output.
async fn readable_fleet(state: &ServerState, asked: &Asked<'_>) -> Fleet {
    let mut fleet = fleet::fleet(state).await;
    if !private::may_read(state, asked) {
        fleet::hide_output(&mut fleet);
    }
    fleet
}

async fn fleet_page(state: &ServerState, asked: &Asked<'_>) -> Response<Body> {
    let fleet = readable_fleet(state, asked).await;
    let histories = state.histories.get(None);
    let body = page::render(
        &fleet,
        &state.board.snapshot(),
        &histories,
        crate::clock::unix_now(),
    );
    let mut response = text(StatusCode::OK, HTML, body);
    let policy = HeaderValue::from_static(page::POLICY);
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, policy);
    response
}

fn deployments_error(failure: &BlockingError) -> Response<Body> {
    let status = match failure {
        BlockingError::Deployments(
            DeploymentsError::BadId { .. } | DeploymentsError::BadOffset { .. },
        ) => StatusCode::BAD_REQUEST,
        BlockingError::Deployments(DeploymentsError::NotFound { .. }) => StatusCode::NOT_FOUND,
        BlockingError::Deployments(DeploymentsError::OffsetPastEnd { .. }) => {
            StatusCode::RANGE_NOT_SATISFIABLE
        }
        BlockingError::Deployments(DeploymentsError::Read { .. }) | BlockingError::Panicked => {
            tracing::warn!(error = %failure, "cannot serve a deployment");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, &failure.to_string())
}

/// The log from its offset, streamed, with its size and the deployment's result as headers.
fn log(slice: LogSlice) -> Response<Body> {
    let length = slice.size - slice.offset;
    let body = match slice.file {
        Some(file) if length > 0 => file_body(tokio::fs::File::from_std(file), length),
        _ => Empty::new().map_err(|never| match never {}).boxed_unsync(),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(LOG_SIZE_HEADER, HeaderValue::from(slice.size));
    if let Ok(result) = HeaderValue::from_str(&slice.result) {
        headers.insert(LOG_RESULT_HEADER, result);
    }
    response
}

/// `length` bytes of `file`, read a chunk at a time as the client takes them.
fn file_body(file: tokio::fs::File, length: u64) -> Body {
    let chunks = futures::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0; usize::try_from(left.min(LOG_CHUNK)).unwrap_or(0)];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the log got shorter while it was sent",
                )),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                let left = left.saturating_sub(n as u64);
                Some((Ok(Frame::data(Bytes::from(buf))), (file, left)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// A failure of work done on the blocking pool.
#[derive(Debug, thiserror::Error)]
enum BlockingError {
    #[error(transparent)]
    Deployments(#[from] DeploymentsError),
    #[error("reading the deployment root failed unexpectedly (a bug: see the agent's log)")]
    Panicked,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DeploymentsError> + Send + 'static,
) -> Result<T, BlockingError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(e) => {
            tracing::error!(error = %e, "deployment reader panicked");
            Err(BlockingError::Panicked)
        }
    }
}

/// The metrics, with the state as it is now.
async fn metrics(state: &ServerState) -> String {
    if let Some(mesh) = &state.mesh {
        state.metrics.set_gossip_dropped(&mesh.dropped());
        if let Some((sent, received)) = mesh.traffic() {
            state.metrics.set_gossip_traffic(sent, received);
        }
        state.metrics.set_duplicate_ids(mesh.duplicates().len());
    }
    state
        .metrics
        .set_notifications(&state.notifications.stats());
    let fleet = fleet::fleet(state).await;
    let status = state.board.snapshot();
    let steered = state.groups.all();
    let groups: Vec<GroupGauges<'_>> = status
        .groups
        .iter()
        .map(|group| GroupGauges {
            status: group,
            fleet: fleet.groups.iter().find(|f| f.name == group.name),
            rollout: steered
                .iter()
                .find(|(name, _)| *name == group.name)
                .map(|(_, steer)| steer.rollout())
                .unwrap_or_default(),
        })
        .collect();
    let alive = fleet.nodes.iter().filter(|node| node.alive).count();
    let dead = fleet.nodes.len() - alive;
    state.metrics.encode_with(&groups, (alive, dead))
}
