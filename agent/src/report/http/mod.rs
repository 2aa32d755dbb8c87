//! The status endpoint: which request goes where ([`route`], pure), what each answers
//! ([`handlers`]; the fleet view in [`fleet`], as a page for a browser in [`page`], the steering
//! calls in [`control`], guarded as [`auth`] says; hook output guarded as [`private`] says) and
//! the hyper server with its limits ([`server`], connections shared out by [`slots`], who
//! asks told by [`peer`]). Server and answers share what is served ([`state`]) and what a
//! response is made of ([`reply`]).

mod auth;
mod control;
mod fleet;
mod handlers;
mod page;
mod peer;
mod private;
mod reply;
mod server;
mod slots;
mod state;
mod steer;

use hyper::Method;

use super::deployments::{DeploymentsError, is_deployment_id};
pub use auth::AdminToken;
pub use fleet::fleet as fleet_view;
pub use peer::Peer;
pub use server::{Limits, serve, serve_all, serve_with};
pub use state::{ServerState, Steering};
pub use steer::{Steer, SteerError};

/// The control socket of the agent whose data directory is `data_dir`: root on this host
/// steers through it without a token, and no other user can reach it.
pub fn control_socket(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("control.sock")
}

/// The methods every reading endpoint answers (HEAD as GET without the body).
pub const ALLOW: &str = "GET, HEAD";

/// The method the steering calls (`/v1/groups/{group}/{halt|resume|promote}`) answer.
pub const ALLOW_CONTROL: &str = "POST";

/// The request header a steering client names its user in (`shoal halt` sends the user who
/// ran it, `$SUDO_USER` under sudo): recorded, with this node, as who steered.
pub const OPERATOR_HEADER: &str = "x-shoal-operator";

/// The response header that carries the size of a deployment's log when it was read.
pub const LOG_SIZE_HEADER: &str = "x-log-size";

/// The response header that carries a deployment's result when its log was read; anything
/// but `in-progress` means the log will not grow any more.
pub const LOG_RESULT_HEADER: &str = "x-deployment-result";

/// An operator's command to a group's rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `shoal halt`: no host starts the deployment any more; hosts that moved go back.
    Halt,
    /// `shoal resume`: lifts the halt in force.
    Resume,
    /// `shoal promote`: lets a canary deployment go on past its canaries.
    Promote,
    /// `shoal forget`: drops a dead member from the group, on every host.
    Forget,
    /// `shoal leave`: this host leaves the group for good.
    Leave,
    /// `shoal rollback`: the order to sign, or the signed order given.
    Rollback,
}

impl Control {
    /// The name in the path and in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Resume => "resume",
            Self::Promote => "promote",
            Self::Forget => "forget",
            Self::Leave => "leave",
            Self::Rollback => "rollback",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Self::Halt,
            Self::Resume,
            Self::Promote,
            Self::Forget,
            Self::Leave,
            Self::Rollback,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the fleet view as an HTML page.
    Page,
    /// `/fleet.js`: the page's script, which keeps it up to date in place.
    PageScript,
    /// `/live`: the process answers.
    Live,
    /// `/ready`: every group has checked its channel (or left it to its pollers).
    Ready,
    /// `/v1/status`.
    Status,
    /// `/v1/fleet`.
    Fleet,
    /// `/v1/history[?group=NAME]`.
    History {
        /// Only this group's.
        group: Option<String>,
    },
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
    /// `POST /v1/groups/{group}/{halt|resume|promote}`.
    Control {
        /// The group named in the path (not checked against the config here).
        group: String,
        /// What to do.
        action: Control,
    },
    /// A known path with a method it does not answer.
    MethodNotAllowed {
        /// The methods it answers (the `Allow` header).
        allow: &'static str,
    },
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
    let (target, allow) = match segments.as_slice() {
        [""] => (Route::Page, ALLOW),
        ["fleet.js"] => (Route::PageScript, ALLOW),
        ["live"] => (Route::Live, ALLOW),
        ["ready"] => (Route::Ready, ALLOW),
        ["metrics"] => (Route::Metrics, ALLOW),
        ["v1", "status"] => (Route::Status, ALLOW),
        ["v1", "fleet"] => (Route::Fleet, ALLOW),
        ["v1", "history"] => (
            Route::History {
                group: query_value(query, "group").map(str::to_owned),
            },
            ALLOW,
        ),
        ["v1", "deployments"] => (Route::Deployments, ALLOW),
        ["v1", "deployments", id] => (with_id(id, |id| Route::Deployment { id }), ALLOW),
        ["v1", "deployments", id, "log"] => match offset(query) {
            Ok(offset) => (with_id(id, |id| Route::DeploymentLog { id, offset }), ALLOW),
            Err(refused) => (Route::BadRequest(refused.to_string()), ALLOW),
        },
        ["v1", "groups", group, action] if !group.is_empty() => match Control::parse(action) {
            Some(action) => {
                let group = (*group).to_owned();
                (Route::Control { group, action }, ALLOW_CONTROL)
            }
            None => return Route::NotFound,
        },
        _ => return Route::NotFound,
    };
    if allow.split(", ").any(|allowed| allowed == method.as_str()) {
        target
    } else {
        Route::MethodNotAllowed { allow }
    }
}

impl Route {
    /// Whether the request may carry a body (the steering calls: a halt's reason).
    pub fn takes_body(&self) -> bool {
        matches!(self, Self::Control { .. })
    }
}

fn with_id(id: &str, make: impl FnOnce(String) -> Route) -> Route {
    if is_deployment_id(id) {
        make(id.to_owned())
    } else {
        Route::BadRequest(DeploymentsError::BadId { id: id.to_owned() }.to_string())
    }
}

/// The value of `name=` in a query string, if there.
fn query_value<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// `offset=N` from a query string (0 when absent); other parameters are ignored.
fn offset(query: Option<&str>) -> Result<u64, DeploymentsError> {
    let Some(value) = query_value(query, "offset") else {
        return Ok(0);
    };
    value.parse().map_err(|_| DeploymentsError::BadOffset {
        offset: value.to_owned(),
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
        assert_eq!(get("/"), Route::Page);
        assert_eq!(get("/fleet.js"), Route::PageScript);
        assert_eq!(route(&Method::HEAD, "/", None), Route::Page);
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
            "",
            "/index.html",
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
            for path in ["/", "/v1/status", "/v1/fleet", "/live"] {
                assert_eq!(
                    route(&method, path, None),
                    Route::MethodNotAllowed { allow: ALLOW },
                    "{method} {path}"
                );
            }
            assert_eq!(route(&method, "/nope", None), Route::NotFound);
        }
        assert_eq!(route(&Method::HEAD, "/live", None), Route::Live);
        assert_eq!(route(&Method::HEAD, "/v1/fleet", None), Route::Fleet);
    }

    #[test]
    fn the_fleet_has_its_route() {
        assert_eq!(get("/v1/fleet"), Route::Fleet);
        assert_eq!(get("/v1/history"), Route::History { group: None });
        assert_eq!(
            route(&Method::GET, "/v1/history", Some("x=1&group=web")),
            Route::History {
                group: Some("web".into())
            }
        );
        assert_eq!(get("/v1/fleet/"), Route::Fleet);
        assert_eq!(get("/v1/fleet/x"), Route::NotFound);
    }

    #[test]
    fn steering_calls_are_posts_to_a_group() {
        for (name, action) in [
            ("halt", Control::Halt),
            ("resume", Control::Resume),
            ("promote", Control::Promote),
            ("forget", Control::Forget),
            ("leave", Control::Leave),
        ] {
            let path = format!("/v1/groups/web.eu-1/{name}");
            assert_eq!(
                route(&Method::POST, &path, None),
                Route::Control {
                    group: "web.eu-1".into(),
                    action
                }
            );
            assert!(route(&Method::POST, &path, None).takes_body());
            for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
                assert_eq!(
                    route(&method, &path, None),
                    Route::MethodNotAllowed {
                        allow: ALLOW_CONTROL
                    },
                    "{method} {path}"
                );
            }
        }
        assert!(!get("/v1/status").takes_body());
    }

    #[test]
    fn other_group_paths_are_not_found() {
        for path in [
            "/v1/groups",
            "/v1/groups/web",
            "/v1/groups/web/stop",
            "/v1/groups/web/HALT",
            "/v1/groups//halt",
            "/v1/groups/web/halt/now",
        ] {
            assert_eq!(route(&Method::POST, path, None), Route::NotFound, "{path}");
        }
    }
}
