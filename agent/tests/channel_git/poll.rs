//! What a channel remembers across polls and restarts: moved tags stay refused, versions at or
//! below the floor are refused once when first seen, names that are not versions are ignored
//! with a warning once, and only tags matching the glob are looked at.

use shoal_agent::channel::git::GitSource;

use shoal_agent::verify::state::ChannelState;
use shoal_tests::command::{clean, stdout};

use crate::fixture::{GROUP, Scene, newest, refusals};

#[test]
fn a_moved_tag_is_refused_every_poll_and_after_a_restart() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "release", &scene.key, None);
    let mut channel = scene.channel();
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.0.0"));

    let other = scene.repo.commit_file("evil.sh", "curl | sh", "swap");
    scene.repo.move_tag("v1.0.0", &other, &scene.key);
    for _ in 0..2 {
        let poll = scene.poll(&mut channel);
        assert_eq!(newest(&poll), None);
        assert_eq!(refusals(&poll), [("v1.0.0".to_owned(), "moved_tag")]);
    }
    // A restarted agent: a new channel over the same mirror, the state reloaded from disk.
    drop(channel);
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(refusals(&poll), [("v1.0.0".to_owned(), "moved_tag")]);
    let (_, refusal) = &poll.refusals[0];
    assert!(refusal.to_string().contains("moved from"), "{refusal}");
}

#[test]
fn a_moved_tag_is_caught_even_below_the_floor() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    let mut channel = scene.channel();
    scene.poll(&mut channel);
    scene.repo.commit_file("b", "b", "two");
    scene.repo.tag_signed("v2.0.0", "two", &scene.key, None);
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v2.0.0"));
    let head = scene.repo.head();
    scene.repo.move_tag("v1.0.0", &head, &scene.key);
    let poll = scene.poll(&mut channel);
    assert_eq!(refusals(&poll), [("v1.0.0".to_owned(), "moved_tag")]);
}

#[test]
fn a_new_version_below_the_floor_is_refused_once_after_a_restart() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    scene.repo.commit_file("b", "b", "two");
    scene.repo.tag_signed("v2.0.0", "two", &scene.key, None);
    let mut channel = scene.channel();
    let first = scene.poll(&mut channel);
    // The first look: the newest verifies; the older one is superseded, not refused.
    assert_eq!(newest(&first), Some("v2.0.0"));
    assert!(first.refusals.is_empty(), "{:?}", first.refusals);

    drop(channel);
    scene
        .repo
        .tag_signed("v1.5.0", "an old branch", &scene.key, None);
    scene
        .repo
        .tag_signed("v2.0.0-rc.1", "a late rc", &scene.key, None);
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), None);
    assert_eq!(
        refusals(&poll),
        [
            ("v2.0.0-rc.1".to_owned(), "below_floor"),
            ("v1.5.0".to_owned(), "below_floor")
        ]
    );
    assert_eq!(scene.state().floor().unwrap().name(), "v2.0.0");
    // Reported at its first sighting only; known old tags are silent.
    let quiet = scene.poll(&mut channel);
    assert!(quiet.refusals.is_empty(), "{:?}", quiet.refusals);
}

#[test]
fn names_that_are_not_versions_are_ignored_once_per_channel() {
    let scene = Scene::new();
    scene
        .repo
        .tag_signed("vlatest", "not a version", &scene.key, None);
    scene
        .repo
        .tag_signed("v1.2", "not semver", &scene.key, None);
    scene
        .repo
        .tag_signed("v1.0.0", "a release", &scene.key, None);
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), Some("v1.0.0"));
    let mut ignored: Vec<_> = poll.ignored.iter().map(|(n, _)| n.as_str()).collect();
    ignored.sort_unstable();
    assert_eq!(ignored, ["v1.2", "vlatest"]);
    assert!(
        poll.ignored[0].1.contains("not a semver version"),
        "{:?}",
        poll.ignored
    );
    assert!(poll.refusals.is_empty());
    assert!(scene.poll(&mut channel).ignored.is_empty(), "reported once");
    // A restarted channel says it again: the warning is per run, not persisted.
    let mut restarted = scene.channel();
    assert_eq!(scene.poll(&mut restarted).ignored.len(), 2);
}

#[test]
fn only_tags_matching_the_glob_are_releases() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    scene.repo.commit_file("b", "b", "two");
    scene.repo.tag_signed("v2.0.0", "two", &scene.key, None);
    scene.repo.tag_lightweight("latest");
    scene.repo.tag_lightweight("v1.x");
    let mut source = scene.source();
    source.tags = "v1.*".to_owned();
    let mut channel = scene.channel_for(source);
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), Some("v1.0.0"), "v2.0.0 does not match v1.*");
    assert!(poll.refusals.is_empty());
    let ignored: Vec<_> = poll.ignored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        ignored,
        ["v1.x"],
        "`latest` does not match, so it is not even mentioned"
    );
}

#[test]
fn tags_deleted_upstream_are_pruned_from_the_mirror() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    scene.repo.tag_lightweight("v0.1.0");
    let mut channel = scene.channel();
    scene.poll(&mut channel);
    let mirror = git2::Repository::open_bare(channel.mirror_path()).unwrap();
    assert!(mirror.find_reference("refs/tags/v0.1.0").is_ok());
    scene.repo.git(&["tag", "-d", "v0.1.0"]);
    scene.poll(&mut channel);
    assert!(mirror.find_reference("refs/tags/v0.1.0").is_err());
    assert!(mirror.find_reference("refs/tags/v1.0.0").is_ok());
}

#[test]
fn a_file_url_is_a_local_repository_too() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    let url = format!("file://{}", scene.repo.dir().display());
    let mut channel = scene.channel_for(GitSource::new(url));
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.0.0"));
    assert!(
        channel
            .mirror_path()
            .starts_with(scene.data_dir().join("mirrors"))
    );
    assert_eq!(
        channel.watch_paths(),
        Some(vec![scene.repo.dir().join(".git")])
    );
}

#[test]
fn a_lightweight_tag_does_not_squat_the_name_of_the_signed_release() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    let mut channel = scene.channel();
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.0.0"));
    // Someone pushes a lightweight v1.1.0 first; it is refused.
    scene.repo.commit_file("b", "b", "two");
    scene.repo.tag_lightweight("v1.1.0");
    let poll = scene.poll(&mut channel);
    assert_eq!(refusals(&poll), [("v1.1.0".to_owned(), "lightweight_tag")]);
    // It is deleted and the release manager pushes the signed v1.1.0: that is the release,
    // in this run and after a restart.
    scene.repo.git(&["tag", "-d", "v1.1.0"]);
    scene.repo.tag_signed("v1.1.0", "two", &scene.key, None);
    let poll = scene.poll(&mut channel);
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    assert_eq!(newest(&poll), Some("v1.1.0"));
    let mut channel = scene.channel();
    let state = scene.state();
    let again = channel
        .verified_release("v1.1.0", &scene.signers(), &state, crate::fixture::NOW)
        .unwrap();
    assert!(again.is_some(), "the signed v1.1.0 is still the release");
    assert!(scene.poll(&mut channel).refusals.is_empty());
}

#[test]
fn thousands_of_unsigned_tags_cost_no_state_write_and_are_not_kept() {
    use std::os::unix::fs::MetadataExt;

    const TAGS: usize = 2_500;
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "one", &scene.key, None);
    let mut channel = scene.channel();
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.0.0"));
    let path = ChannelState::path_for(&scene.data_dir(), GROUP);
    let inode = std::fs::metadata(&path).unwrap().ino();
    let before = std::fs::read_to_string(&path).unwrap();

    // Lightweight and unsigned annotated tags above the floor, in one `git update-ref --stdin`.
    scene.repo.commit_file("b", "b", "two");
    let head = scene.repo.head();
    scene.repo.tag_annotated_unsigned("v1.0.1", "unsigned");
    let refs: String = (2..TAGS)
        .map(|n| format!("create refs/tags/v1.0.{n} {head}\n"))
        .collect();
    let refs_file = scene.path("refs.txt");
    std::fs::write(&refs_file, refs).unwrap();
    stdout(
        clean("git", scene.dir.path())
            .current_dir(scene.repo.dir())
            .args(["update-ref", "--stdin"])
            .stdin(std::fs::File::open(&refs_file).unwrap()),
    );
    let mut state = scene.state();
    let poll = channel
        .poll(&scene.signers(), &mut state, crate::fixture::NOW)
        .unwrap();
    assert_eq!(newest(&poll), None);
    assert_eq!(poll.refusals.len(), TAGS - 1);
    assert_eq!(state.writes(), 0, "nothing verified, nothing written");
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "the file was not replaced"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    // A signed release among them: one write, holding none of the unsigned names.
    scene.repo.tag_signed("v2.0.0", "two", &scene.key, None);
    let poll = channel
        .poll(&scene.signers(), &mut state, crate::fixture::NOW)
        .unwrap();
    assert_eq!(newest(&poll), Some("v2.0.0"));
    assert_eq!(state.writes(), 1, "one write for the poll");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("v1.0.1") && !text.contains("v1.0.2\""),
        "{text}"
    );
    // Passed over by v2.0.0, they are below the floor now: not reported again in this run,
    // and nothing is written.
    let poll = channel
        .poll(&scene.signers(), &mut state, crate::fixture::NOW)
        .unwrap();
    assert!(
        poll.refusals.is_empty() && poll.newest.is_none(),
        "{:?}",
        poll.refusals
    );
    assert_eq!(state.writes(), 1);
}
