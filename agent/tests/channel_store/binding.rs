//! Releases are bound to their application: `release.yaml` names it (`application: web`,
//! inside the signed bytes), and a group takes only releases bound to its own application.
//!
//! The attack: two applications share a signing key, and someone who may write under the
//! second one's prefix copies the first one's signed release there, byte for byte. The copy
//! must not install, nor raise the second group's floor, nor be recorded.

use shoal_agent::channel::store::StoreChannel;
use shoal_agent::verify::state::ChannelState;
use shoal_shared::release::RELEASE_NAMESPACE;

use crate::backend::{Backend, manifest_text};
use crate::fixture::World;
use crate::poll_now;

over_stores!(cli: a_release_copied_from_another_applications_prefix_is_refused);
over_stores!(an_unbound_release_is_refused_with_the_sentence_that_republishes_it);

/// The group (and application) of the second application.
const OTHER: &str = "api";

async fn a_release_copied_from_another_applications_prefix_is_refused(store: Backend) {
    let world = World::new();
    store
        .release(&world, "9.0.0", &world.app_dir("web-9", "web 9"))
        .await;
    let api = store.sibling(OTHER);
    store.copy_version("9.0.0", &api).await;

    let data_dir = world.path().join("data-api");
    let state_path = ChannelState::path_for(&data_dir, OTHER);
    let open = || StoreChannel::open(&api.source, &api.env, &data_dir, OTHER, OTHER).unwrap();
    let mut channel = open();
    let mut state = ChannelState::load(&state_path).unwrap();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        poll.newest.is_none(),
        "group {OTHER} took web's release 9.0.0 copied into its prefix: {:?}",
        poll.newest.as_ref().map(|r| r.version.name())
    );
    let kinds: Vec<_> = poll
        .refusals
        .iter()
        .map(|(name, r)| (name.as_str(), r.kind()))
        .collect();
    assert_eq!(kinds, [("9.0.0", "wrong_application")]);
    let message = poll.refusals[0].1.to_string();
    assert!(
        message.starts_with(
            "release 9.0.0 is signed for application `web`, not `api` (this group's `application`)"
        ) && message.contains("`shoal release --application api`"),
        "{message}"
    );
    let state = ChannelState::load(&state_path).unwrap();
    assert_eq!(
        state.floor(),
        None,
        "a copied release must not raise the floor"
    );
    assert_eq!(state.identity("9.0.0"), None, "nor be recorded as seen");

    // api's own release, lower than the copy, still goes through, also after a restart.
    let out = api.shoal_release(
        "1.0.0",
        &world.app_dir("api-1", "api 1"),
        &world.key.private,
        &["--application", OTHER],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut channel = open();
    let mut state = ChannelState::load(&state_path).unwrap();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(
        poll.newest.as_ref().map(|r| r.version.name()),
        Some("1.0.0"),
        "{:?}",
        poll.refusals
    );
    assert_eq!(state.floor().unwrap().name(), "1.0.0");
}

async fn an_unbound_release_is_refused_with_the_sentence_that_republishes_it(store: Backend) {
    let world = World::new();
    let bundle = world.tar_gz(&world.app_dir("old", "old"));
    // A release.yaml as shoal wrote it before releases named their application.
    let manifest =
        manifest_text("v1.2.0", "bundle.tar.gz", &bundle).replace("application: web\n", "");
    assert!(!manifest.contains("application"), "{manifest}");
    store
        .put_release(
            &world,
            "v1.2.0",
            &manifest,
            ("bundle.tar.gz", &bundle),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;
    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(poll.newest.is_none(), "{poll:?}");
    assert_eq!(poll.refusals.len(), 1, "{:?}", poll.refusals);
    let (name, refusal) = &poll.refusals[0];
    assert_eq!((name.as_str(), refusal.kind()), ("v1.2.0", "unbound"));
    assert_eq!(
        refusal.to_string(),
        "release v1.2.0 names no application it is for (its release.yaml has no `application:`); \
         publish it again with `shoal release --application web --version v1.2.0 ...` (after \
         removing `v1.2.0/`, or as a new version), since shoal installs only releases bound to \
         their application"
    );
    assert_eq!(world.state().floor(), None);
    assert_eq!(world.state().identity("v1.2.0"), None);
}

#[test]
fn shoal_release_needs_the_application_and_checks_it() {
    let store = Backend::file();
    let world = World::new();
    let app = world.app_dir("app", "hi");
    // `shoal_release` adds `--application web` unless told one: run the binary without it.
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "release",
            "--store",
            &store.source.url,
            "--version",
            "v1.0.0",
        ])
        .arg("--bundle")
        .arg(&app)
        .arg("--key")
        .arg(&world.key.private)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("--application <APP>"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let empty = store.shoal_release("v1.0.0", &app, &world.key.private, &["--application", ""]);
    assert_eq!(empty.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&empty.stderr),
        "error: --application: must not be empty\n"
    );
}
