//! A `file://` store watched with notify: a new release is seen within a second, without
//! waiting for the poll interval.

use std::time::Duration;

use shoal_agent::channel::store::{Publication, publish};
use shoal_agent::channel::watch::Watch;
use shoal_shared::release::{RELEASE_NAMESPACE, Version};

use crate::backend::{Backend, manifest_text};
use crate::fixture::World;
use crate::poll_now;

#[tokio::test]
async fn a_watched_file_store_sees_a_new_release_within_a_second() {
    let store = Backend::file();
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("a", "one"))
        .await;
    let mut channel = store.channel(&world);
    let mut state = world.state();
    assert!(
        poll_now(&world, &mut channel, &mut state)
            .await
            .newest
            .is_some()
    );
    let paths = channel.watch_paths().unwrap();
    assert_eq!(paths, [store.location.local_dir().unwrap()]);
    let mut watch = Watch::start(&paths).unwrap();
    assert!(store.channel(&world).watch_paths().is_some());
    assert_eq!(Backend::memory().channel(&world).watch_paths(), None);

    let bundle = world.tar_gz(&world.app_dir("b", "two"));
    let manifest = manifest_text("v1.1.0", "bundle.tar.gz", &bundle);
    let publication = Publication {
        version: Version::parse("v1.1.0").unwrap(),
        bundle_name: "bundle.tar.gz".to_owned(),
        bundle: bundle.into(),
        signature: world.sign(&world.key, RELEASE_NAMESPACE, &manifest),
        manifest,
    };
    let started = tokio::time::Instant::now();
    publish(store.store.as_ref(), &store.location, &publication)
        .await
        .unwrap();
    let deadline = started + Duration::from_secs(1);
    let mut wakes = 0;
    let release = loop {
        let woke = tokio::time::timeout_at(deadline, watch.changed()).await;
        assert_eq!(
            woke,
            Ok(true),
            "no change seen within a second of the upload"
        );
        wakes += 1;
        let poll = poll_now(&world, &mut channel, &mut state).await;
        if let Some(release) = poll.newest {
            break release;
        }
    };
    assert_eq!(release.version.name(), "v1.1.0");
    eprintln!(
        "seen {:?} after the upload started, after {wakes} wake(s)",
        started.elapsed()
    );
}
