//! Across restarts: the anti-rollback floor holds (a new lower version is refused once), and a
//! release replaced in the store after it was seen is caught by the conditional re-check.

use shoal_shared::release::{RELEASE_NAMESPACE, Version};

use crate::backend::{Backend, manifest_text};
use crate::fixture::World;
use crate::poll_now;

over_stores!(
    a_version_below_the_persisted_floor_is_refused_once,
    a_release_replaced_in_the_store_is_refused_after_a_restart,
);

fn names(refusals: &[(String, shoal_agent::verify::Refusal)]) -> Vec<(String, &'static str)> {
    refusals
        .iter()
        .map(|(name, refusal)| (name.clone(), refusal.kind()))
        .collect()
}

async fn a_version_below_the_persisted_floor_is_refused_once(store: Backend) {
    let world = World::new();
    store
        .release(&world, "v1.2.0", &world.app_dir("a", "1.2"))
        .await;
    {
        let mut channel = store.channel(&world);
        let poll = poll_now(&world, &mut channel, &mut world.state()).await;
        assert_eq!(poll.newest.unwrap().version.name(), "v1.2.0");
    }
    // The agent restarts; meanwhile someone publishes an older version.
    store
        .release(&world, "v1.1.0", &world.app_dir("b", "1.1"))
        .await;
    let mut state = world.state();
    assert_eq!(state.floor(), Some(Version::parse("v1.2.0").unwrap()));
    let mut channel = store.channel(&world);
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(
        names(&poll.refusals),
        [("v1.1.0".to_owned(), "below_floor")]
    );
    let message = poll.refusals[0].1.to_string();
    assert!(
        message.starts_with("v1.1.0 is not above v1.2.0"),
        "{message}"
    );
    // The release at the floor is re-confirmed (unchanged), so a restarted daemon knows it.
    assert_eq!(poll.newest.unwrap().version.name(), "v1.2.0");
    let again = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        again.refusals.is_empty() && again.newest.is_none(),
        "{again:?}"
    );

    // Reported once for good: another restart does not repeat it.
    let mut channel = store.channel(&world);
    let poll = poll_now(&world, &mut channel, &mut world.state()).await;
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    assert_eq!(
        world.state().floor(),
        Some(Version::parse("v1.2.0").unwrap())
    );
}

async fn a_release_replaced_in_the_store_is_refused_after_a_restart(store: Backend) {
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("a", "first"))
        .await;
    {
        let mut channel = store.channel(&world);
        let poll = poll_now(&world, &mut channel, &mut world.state()).await;
        assert_eq!(poll.newest.unwrap().version.name(), "v1.0.0");
    }
    // Replaced by a properly signed release with other content, under the same version.
    let bundle = world.tar_gz(&world.app_dir("b", "second"));
    let manifest = manifest_text("v1.0.0", "bundle.tar.gz", &bundle);
    store
        .put_release(
            &world,
            "v1.0.0",
            &manifest,
            ("bundle.tar.gz", &bundle),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;

    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(poll.newest.is_none(), "{poll:?}");
    assert_eq!(
        names(&poll.refusals),
        [("v1.0.0".to_owned(), "changed_release")]
    );
    let message = poll.refusals[0].1.to_string();
    assert!(
        message.starts_with("release v1.0.0 changed (release.yaml sha256 "),
        "{message}"
    );
    let again = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        again.refusals.is_empty() && again.newest.is_none(),
        "{again:?}"
    );
}
