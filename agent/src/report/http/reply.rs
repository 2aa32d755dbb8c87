//! What every answer of the status endpoint is made of: a request as routed ([`Asked`]), the
//! body type, and the text, JSON and `{ "error": … }` responses, each marked `no-store`.

use std::io;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use shoal_shared::status::ErrorBody;

use super::Route;
use super::peer::Peer;

/// The body of every response.
pub(super) type Body = UnsyncBoxBody<Bytes, io::Error>;

const JSON: &str = "application/json";

/// A request, read and routed.
pub(super) struct Asked<'a> {
    /// Where it goes.
    pub route: Route,
    /// Its path (named in a 404 or 405).
    pub path: &'a str,
    /// Who sent it.
    pub peer: Peer,
    /// Its `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Its [`super::OPERATOR_HEADER`]: who the client says steers.
    pub operator: Option<&'a str>,
    /// Its body (bounded by the server).
    pub body: Bytes,
}

/// `{ "error": message }` with `status`.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        &ErrorBody {
            error: message.to_owned(),
        },
    )
}

pub(super) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(mut body) => {
            body.push('\n');
            text(status, JSON, body)
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            format!("{{\"error\":\"cannot encode the response as JSON: {e}\"}}\n"),
        ),
    }
}

pub(super) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
