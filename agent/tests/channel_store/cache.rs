//! The release cache under a real store channel: a release unpacks through `tmp/` into
//! `trees/`, its archive goes at the next clean, and a release the group no longer holds goes
//! with it while the one it holds stays whole.

use crate::backend::Backend;
use crate::fixture::{GROUP, World};
use crate::poll_now;

over_stores!(a_clean_keeps_the_held_release_and_removes_the_rest);

async fn a_clean_keeps_the_held_release_and_removes_the_rest(store: Backend) {
    let world = World::new();
    let mut channel = store.channel(&world);
    let mut state = world.state();
    let cache = world.cache();
    let mut releases = Vec::new();
    for (version, greeting) in [("v1.0.0", "one"), ("v1.1.0", "two")] {
        let app = world.app_dir(version, greeting);
        store.release(&world, version, &app).await;
        let release = poll_now(&world, &mut channel, &mut state)
            .await
            .newest
            .expect("verified");
        cache.fetching(GROUP, &release.digest);
        channel.materialize(&release, &cache).await.unwrap();
        cache.fetched(GROUP, &release.digest, 0);
        releases.push(release);
    }
    let [old, new] = [&releases[0], &releases[1]];
    let (old_tree, new_tree) = (cache.tree_path(&old.digest), cache.tree_path(&new.digest));
    let entries = world.cache_entries();
    assert_eq!(
        entries.iter().filter(|e| e.starts_with("blobs/")).count(),
        2
    );
    assert!(
        entries.iter().all(|e| !e.starts_with("tmp/")),
        "{entries:?}"
    );

    cache.holds(GROUP, [new.digest.clone()], 0);
    let cleaned = cache.clean().unwrap();
    assert_eq!((cleaned.trees, cleaned.blobs), (1, 2), "{cleaned:?}");
    assert_eq!(
        world.cache_entries(),
        [format!("trees/{}", new.digest.file_name())]
    );
    assert!(!old_tree.exists());
    assert_eq!(
        std::fs::read_to_string(new_tree.join("app.conf")).unwrap(),
        "greeting = two\n"
    );
}
