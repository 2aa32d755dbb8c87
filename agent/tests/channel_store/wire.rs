//! What polling costs on the wire, measured with a counting proxy in front of moto: an idle
//! poll is exactly one LIST and downloads no object, a refused release is not fetched again,
//! and the re-check after a restart is one conditional GET answered 304 without a body.

use shoal_agent::channel::store::{StoreChannel, StoreSource};
use shoal_shared::release::RELEASE_NAMESPACE;
use shoal_tests::proxy::CountingProxy;

use crate::backend::{Backend, manifest_text};
use crate::fixture::{GROUP, World};
use crate::poll_now;

/// The channel, reaching moto through `proxy`.
fn channel_through(store: &Backend, proxy: &CountingProxy, world: &World) -> StoreChannel {
    let source = StoreSource {
        endpoint: Some(format!("http://{}", proxy.addr())),
        ..store.source.clone()
    };
    StoreChannel::open(&source, &store.env, &world.data_dir, GROUP, GROUP).unwrap()
}

/// The request lines moto logged since `mark` (its log length before).
fn requests_since(store: &Backend, mark: usize) -> Vec<String> {
    let log = store.moto.as_ref().unwrap().log();
    // Without the terminal colours moto puts around request lines.
    let plain: String = log[mark..]
        .split('\u{1b}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('m').map_or("", |(_, rest)| rest)
            }
        })
        .collect();
    plain
        .lines()
        .filter_map(|line| {
            line.split('"').nth(1).map(|request| {
                let status = line
                    .split('"')
                    .nth(2)
                    .unwrap_or("")
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                format!("{request} -> {status}")
            })
        })
        .collect()
}

fn log_len(store: &Backend) -> usize {
    store.moto.as_ref().unwrap().log().len()
}

#[tokio::test]
async fn an_idle_poll_is_one_list_request_and_downloads_no_object() {
    let store = Backend::s3();
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("app", "one"))
        .await;
    let proxy = CountingProxy::start(store.moto.as_ref().unwrap().addr());
    let mut channel = channel_through(&store, &proxy, &world);
    let mut state = world.state();

    let first = poll_now(&world, &mut channel, &mut state).await;
    assert!(first.newest.is_some());
    // LIST, the signature, the manifest, and a HEAD of the bundle for BUNDLE_ETAG.
    assert_eq!(proxy.stats().requests, 4, "{:?}", proxy.stats());

    // A refused release costs its two small GETs once.
    let bundle = world.tar_gz(&world.app_dir("evil", "x"));
    let manifest = manifest_text("v2.0.0", "bundle.tar.gz", &bundle);
    store
        .put_release(
            &world,
            "v2.0.0",
            &manifest,
            ("bundle.tar.gz", &bundle),
            (&world.stranger, RELEASE_NAMESPACE),
        )
        .await;
    proxy.reset();
    let refused = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(refused.refusals.len(), 1);
    assert_eq!(proxy.stats().requests, 3, "{:?}", proxy.stats());

    for _ in 0..3 {
        proxy.reset();
        let mark = log_len(&store);
        let idle = poll_now(&world, &mut channel, &mut state).await;
        assert!(
            idle.newest.is_none() && idle.refusals.is_empty(),
            "{idle:?}"
        );
        let stats = proxy.stats();
        assert_eq!(stats.requests, 1, "{stats:?}");
        let logged = requests_since(&store, mark);
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(
            logged[0].starts_with("GET /releases?")
                && logged[0].contains("delimiter=/&list-type=2"),
            "{logged:?}"
        );
        // The listing of two version directories, and no object body.
        assert!(stats.bytes_down < 2_000, "{stats:?}");
        eprintln!("idle poll: {stats:?} {logged:?}");
    }
}

#[tokio::test]
async fn the_recheck_after_a_restart_is_a_conditional_get_answered_304() {
    let store = Backend::s3();
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("app", "one"))
        .await;
    let proxy = CountingProxy::start(store.moto.as_ref().unwrap().addr());
    {
        let mut channel = channel_through(&store, &proxy, &world);
        let poll = poll_now(&world, &mut channel, &mut world.state()).await;
        assert!(poll.newest.is_some());
    }
    let mut channel = channel_through(&store, &proxy, &world);
    let mut state = world.state();
    proxy.reset();
    let mark = log_len(&store);
    let poll = poll_now(&world, &mut channel, &mut state).await;
    let release = poll.newest.expect("the floor release, re-confirmed");
    assert_eq!(release.version.name(), "v1.0.0");
    assert!(
        release
            .env
            .iter()
            .any(|(k, v)| k == "BUNDLE_ETAG" && v.starts_with('"'))
    );
    let logged = requests_since(&store, mark);
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(
        logged[1], "GET /releases/apps/web/v1.0.0/release.yaml HTTP/1.1 -> 304",
        "{logged:?}"
    );
    let stats = proxy.stats();
    assert_eq!(stats.requests, 2, "{stats:?}");
    eprintln!("restart re-check: {stats:?} {logged:?}");

    proxy.reset();
    let idle = poll_now(&world, &mut channel, &mut state).await;
    assert!(idle.newest.is_none());
    assert_eq!(proxy.stats().requests, 1);
}
