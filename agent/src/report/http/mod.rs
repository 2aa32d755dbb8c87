//! The status endpoint: which request goes where ([`route`], pure), what each answers
//! ([`handlers`]) and the hyper server with its limits ([`server`]).

mod handlers;
mod server;

use hyper::Method;

use super::deployments::{DeploymentsError, is_deployment_id};
pub use server::{Limits, ServerState, serve, serve_with};

/// The methods every endpoint answers (HEAD as GET without the body).
pub const ALLOW: &str = "GET, HEAD";

/// The response header that carries the size of a deployment's log when it was read.
pub const LOG_SIZE_HEADER: &str = "x-log-size";

/// The response header that carries a deployment's result when its log was read; anything
/// but `in-progress` means the log will not grow any more.
pub const LOG_RESULT_HEADER: &str = "x-deployment-result";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/live`: the process answers.
    Live,
    /// `/ready`: every group has checked its channel.
    Ready,
    /// `/v1/status`.
    Status,
    /// `/v1/deployments`.
    Deployments,
    /// `/v1/deployments/{id}`.
    Deployment {
        /// A valid deployment id.
        id: String,
    },
    /// `/v1/deployments/{id}/log[?offset=N]`.
    DeploymentLog {
        /// A valid deployment id.
        id: String,
        /// The first byte wanted (0 without `?offset=`).
        offset: u64,
    },
    /// `/metrics`.
    Metrics,
    /// A known path with a method other than GET or HEAD.
    MethodNotAllowed,
    /// No such path.
    NotFound,
    /// A known path with a bad id or query; the message says what is wrong.
    BadRequest(String),
}

/// Where a request for `path` (with `query`, without its `?`) goes.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Route {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let target = match segments.as_slice() {
        ["live"] => Route::Live,
        ["ready"] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["v1", "status"] => Route::Status,
        ["v1", "deployments"] => Route::Deployments,
        ["v1", "deployments", id] => with_id(id, |id| Route::Deployment { id }),
        ["v1", "deployments", id, "log"] => match offset(query) {
            Ok(offset) => with_id(id, |id| Route::DeploymentLog { id, offset }),
            Err(message) => Route::BadRequest(message),
        },
        _ => return Route::NotFound,
    };
    if method == Method::GET || method == Method::HEAD {
        target
    } else {
        Route::MethodNotAllowed
    }
}

fn with_id(id: &str, make: impl FnOnce(String) -> Route) -> Route {
    if is_deployment_id(id) {
        make(id.to_owned())
    } else {
        Route::BadRequest(DeploymentsError::BadId { id: id.to_owned() }.to_string())
    }
}

/// `offset=N` from a query string (0 when absent); other parameters are ignored.
fn offset(query: Option<&str>) -> Result<u64, String> {
    let Some(value) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("offset="))
    else {
        return Ok(0);
    };
    value.parse().map_err(|_| {
        format!("offset `{value}` is not a byte count: use ?offset=N with N a whole number >= 0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Route {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        route(&Method::GET, path, query)
    }

    #[test]
    fn each_endpoint_has_its_route() {
        assert_eq!(get("/live"), Route::Live);
        assert_eq!(get("/ready"), Route::Ready);
        assert_eq!(get("/metrics"), Route::Metrics);
        assert_eq!(get("/v1/status"), Route::Status);
        assert_eq!(get("/v1/deployments"), Route::Deployments);
        assert_eq!(get("/v1/deployments/"), Route::Deployments);
        assert_eq!(
            get("/v1/deployments/d-0123456789ab.2"),
            Route::Deployment {
                id: "d-0123456789ab.2".into()
            }
        );
        assert_eq!(
            get("/v1/deployments/d-0123456789ab/log"),
            Route::DeploymentLog {
                id: "d-0123456789ab".into(),
                offset: 0
            }
        );
        assert_eq!(
            get("/v1/deployments/d-0123456789ab-local/log?x=1&offset=42"),
            Route::DeploymentLog {
                id: "d-0123456789ab-local".into(),
                offset: 42
            }
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/",
            "",
            "/v1",
            "/v1/status/x",
            "/v1/deployments/d-1/logs",
            "/v1/deployments/d-../x",
            "/v1/deployments/../../etc/passwd",
            "//live",
            "/LIVE",
        ] {
            assert_eq!(get(path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn ids_that_are_not_deployment_ids_are_bad_requests() {
        for id in ["..", "..%2f", "%2e%2e", "x-1", "d-", "d-1%2f..", "d-a b"] {
            let route = get(&format!("/v1/deployments/{id}"));
            let Route::BadRequest(message) = route else {
                panic!("{id}: {route:?}");
            };
            assert!(message.contains("is not a deployment id"), "{message}");
        }
    }

    #[test]
    fn a_bad_offset_is_a_bad_request() {
        for query in [
            "offset=",
            "offset=-1",
            "offset=1e3",
            "offset=99999999999999999999",
        ] {
            let route = get(&format!("/v1/deployments/d-1/log?{query}"));
            assert!(
                matches!(&route, Route::BadRequest(m) if m.contains("byte count")),
                "{query}: {route:?}"
            );
        }
    }

    #[test]
    fn other_methods_are_not_allowed_on_known_paths_only() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(route(&method, "/v1/status", None), Route::MethodNotAllowed);
            assert_eq!(route(&method, "/nope", None), Route::NotFound);
        }
        assert_eq!(route(&Method::HEAD, "/live", None), Route::Live);
    }
}
