//! A local repository is watched: `git tag -s` wakes the channel's watch within a second, and
//! the next poll finds the tag. Remote repositories are polled, not watched.

use std::time::Duration;

use shoal_agent::channel::git::GitSource;
use shoal_agent::channel::watch::Watch;

use crate::fixture::{Scene, newest};

#[tokio::test]
async fn a_new_tag_in_a_local_repository_wakes_the_watch_within_a_second() {
    let scene = Scene::new();
    let mut channel = scene.channel();
    assert!(scene.poll(&mut channel).newest.is_none());
    let paths = channel
        .watch_paths()
        .expect("a local repository is watched");
    let mut watch = Watch::start(&paths).unwrap();

    scene.repo.tag_signed("v1.0.0", "release", &scene.key, None);
    let woke = tokio::time::timeout(Duration::from_secs(1), watch.changed()).await;
    assert_eq!(woke, Ok(true), "no wake-up within 1 s of `git tag -s`");
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.0.0"));

    // Fetching from the repository only reads it: a poll must not wake the watch, or a
    // watched channel would poll in a loop. (A bounded wait for an absence.)
    for _ in 0..10 {
        let settled = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await;
        if settled.is_err() {
            break;
        }
    }
    scene.poll(&mut channel);
    let quiet = tokio::time::timeout(Duration::from_millis(300), watch.changed()).await;
    assert!(quiet.is_err(), "a poll woke the watch");
}

#[test]
fn remote_repositories_are_polled_not_watched() {
    let scene = Scene::new();
    for url in [
        "https://example.invalid/acme/app.git",
        "ssh://git@example.invalid/acme/app.git",
        "git@example.invalid:acme/app.git",
    ] {
        let channel = scene.channel_for(GitSource::new(url));
        assert_eq!(channel.watch_paths(), None, "{url}");
    }
}

#[test]
fn a_bare_repository_is_watched_at_its_own_directory() {
    let scene = Scene::new();
    let bare = scene.path("bare.git");
    shoal_tests::command::stdout(
        shoal_tests::command::clean("git", scene.dir.path())
            .args(["clone", "-q", "--bare"])
            .arg(scene.repo.dir())
            .arg(&bare),
    );
    let channel = scene.channel_for(GitSource::new(bare.to_str().unwrap()));
    assert_eq!(channel.watch_paths(), Some(vec![bare]));
}
