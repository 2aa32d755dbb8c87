//! `report::http::route`, which maps a request line onto the status endpoint's handlers: the
//! first byte picks the method (or, from 200 up, the bytes up to the first space spell it), the
//! rest is the path and, after the first `?`, the query. Whatever the request, routing answers;
//! a deployment id it hands on is one safe path component; a steering call names a group
//! without `/`; and only the methods a path answers reach its handler.
#![no_main]

use std::path::{Component, Path};

use hyper::Method;
use libfuzzer_sys::fuzz_target;
use shoal_agent::report::deployments::is_deployment_id;
use shoal_agent::report::http::{ALLOW, ALLOW_CONTROL, Route, route};

const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::PATCH,
    Method::TRACE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (method, rest) = if usize::from(first) < 200 {
        (METHODS[usize::from(first) % METHODS.len()].clone(), rest)
    } else {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        match Method::from_bytes(&rest[..end]) {
            Ok(method) => (method, &rest[(end + 1).min(rest.len())..]),
            Err(_) => return,
        }
    };
    let target = String::from_utf8_lossy(rest);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (&*target, None),
    };
    let routed = route(&method, path, query);
    match &routed {
        Route::Deployment { id } | Route::DeploymentLog { id, .. } => {
            assert!(is_deployment_id(id), "{id:?}");
            assert!(!id.contains('/') && id != "." && id != "..", "{id:?}");
            let components: Vec<_> = Path::new(id).components().collect();
            assert!(
                matches!(components.as_slice(), [Component::Normal(_)]),
                "{id:?} is not one path component"
            );
            assert!(path.split('/').any(|segment| segment == id));
            assert!(
                ALLOW.split(", ").any(|m| m == method.as_str()),
                "{method} {path}"
            );
        }
        Route::Control { group, .. } => {
            assert!(!group.is_empty() && !group.contains('/'), "{group:?}");
            assert_eq!(method.as_str(), ALLOW_CONTROL);
        }
        Route::MethodNotAllowed { allow } => {
            assert!(
                !allow.split(", ").any(|m| m == method.as_str()),
                "{method} {path}"
            );
            // The same path answers the methods it names.
            let allowed = Method::from_bytes(allow.split(", ").next().unwrap_or("GET").as_bytes())
                .expect("a method");
            let again = route(&allowed, path, query);
            assert!(
                !matches!(again, Route::MethodNotAllowed { .. } | Route::NotFound),
                "{allowed} {path} -> {again:?}"
            );
        }
        Route::NotFound => {
            for other in [Method::GET, Method::POST] {
                assert_eq!(
                    route(&other, path, query),
                    Route::NotFound,
                    "{other} {path}"
                );
            }
        }
        Route::BadRequest(message) => assert!(!message.is_empty()),
        Route::Page
        | Route::Live
        | Route::Ready
        | Route::Status
        | Route::Fleet
        | Route::Deployments
        | Route::Metrics => {
            assert!(
                ALLOW.split(", ").any(|m| m == method.as_str()),
                "{method} {path}"
            );
        }
    }
});
