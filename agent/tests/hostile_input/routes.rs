//! Request lines for the status endpoint: ids and groups read from a path are one safe
//! component each, and only routed paths answer 405.

use std::path::{Component, Path};

use hyper::Method;
use proptest::prelude::*;
use shoal_agent::report::deployments::is_deployment_id;
use shoal_agent::report::http::{ALLOW, ALLOW_CONTROL, Route, route};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ]),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a method")),
    ]
}

fn request_target() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "v1",
        "deployments",
        "groups",
        "log",
        "fleet",
        "status",
        "metrics",
        "live",
        "ready",
        "halt",
        "resume",
        "promote",
        "d-0123456789ab",
        "d-0123456789ab.2",
        "d-..",
        "d-",
        "..",
        ".",
        "%2f",
        "web.eu-1",
        "?",
        "offset=",
        "42",
        "-1",
        "&",
        "é",
        " ",
        "",
    ]);
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn routes_hand_on_only_safe_ids_and_groups(method in method(), target in request_target()) {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target.as_str(), None),
        };
        match route(&method, path, query) {
            Route::Deployment { id } | Route::DeploymentLog { id, .. } => {
                prop_assert!(is_deployment_id(&id), "{}", id);
                let components: Vec<_> = Path::new(&id).components().collect();
                prop_assert!(matches!(components.as_slice(), [Component::Normal(_)]), "{}", id);
                prop_assert!(!id.contains('/'));
                prop_assert!(ALLOW.split(", ").any(|m| m == method.as_str()));
            }
            Route::Control { group, .. } => {
                prop_assert!(!group.is_empty() && !group.contains('/'), "{}", group);
                prop_assert_eq!(method.as_str(), ALLOW_CONTROL);
            }
            Route::MethodNotAllowed { allow } => {
                prop_assert!(!allow.split(", ").any(|m| m == method.as_str()));
            }
            _ => {}
        }
    }
}
