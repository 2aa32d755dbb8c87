//! Polling: a published release verifies and unpacks; untrusted, wrongly namespaced and
//! tampered releases are refused with their reason; the newest wins; non-versions are ignored
//! once; an upload without its signature yet is skipped quietly.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use object_store::ObjectStoreExt;
use shoal_agent::channel::Digest;
use shoal_shared::release::{GIT_NAMESPACE, RELEASE_NAMESPACE, Version};

use crate::backend::{Backend, Kind, manifest_text};
use crate::fixture::{PRINCIPAL, World, sha256_hex};
use crate::poll_now;

over_stores!(
    a_release_verifies_and_unpacks_into_the_cache,
    a_key_outside_allowed_signers_is_refused,
    a_signature_for_another_namespace_is_refused,
    a_manifest_edited_after_signing_is_refused,
    the_newest_release_wins_and_non_versions_are_ignored_once,
    an_upload_without_its_signature_is_skipped_until_it_lands,
);

async fn a_release_verifies_and_unpacks_into_the_cache(store: Backend) {
    let world = World::new();
    let app = world.app_dir("app", "hello");
    store.release(&world, "v1.0.0", &app).await;

    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        poll.refusals.is_empty() && poll.ignored.is_empty(),
        "{poll:?}"
    );
    let release = poll.newest.expect("a verified release");
    assert_eq!(release.version.name(), "v1.0.0");
    assert_eq!(release.signer.principal, PRINCIPAL);

    let bundle_path = store.location.object("v1.0.0", "bundle.tar.gz");
    let bundle = store.store.get(&bundle_path).await.unwrap();
    let etag = bundle.meta.e_tag.clone().unwrap();
    let bytes = bundle.bytes().await.unwrap();
    assert_eq!(release.digest, Digest::Sha256(sha256_hex(&bytes)));
    let env = |name: &str| {
        release
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env("BUNDLE_KEY"), Some(store.location.key(&bundle_path)));
    assert_eq!(env("BUNDLE_ETAG"), Some(etag.clone()));
    assert_eq!(env("BUNDLE_VERSION"), None, "versioning is off");
    if store.kind == Kind::S3 {
        assert_eq!(env("BUNDLE_BUCKET").as_deref(), Some("releases"));
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert_eq!(
            env("BUNDLE_KEY").as_deref(),
            Some("apps/web/v1.0.0/bundle.tar.gz")
        );
    } else {
        assert_eq!(env("BUNDLE_BUCKET"), None);
    }
    assert_eq!(
        world.state().floor(),
        Some(Version::parse("v1.0.0").unwrap())
    );

    let cache = world.cache();
    let tree = channel.materialize(&release, &cache).await.unwrap();
    assert_eq!(tree, cache.tree_path(&release.digest));
    assert_eq!(
        fs::read_to_string(tree.join("appspec.yml")).unwrap(),
        "version: 0.0\nos: linux\n"
    );
    let script = tree.join("scripts/start.sh");
    assert_eq!(
        fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::read_to_string(tree.join("app.conf")).unwrap(),
        "greeting = hello\n"
    );
    assert_eq!(
        world.cache_entries(),
        [
            format!("blobs/sha256-{}", sha256_hex(&bytes)),
            format!("trees/sha256-{}", sha256_hex(&bytes)),
        ]
    );
    // Cached: the same tree again, nothing downloaded.
    assert_eq!(channel.materialize(&release, &cache).await.unwrap(), tree);

    let again = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        again.newest.is_none() && again.refusals.is_empty(),
        "{again:?}"
    );
}

/// Publishes an honest bundle and manifest signed by `key` in `namespace`, polls once and
/// returns the refusal kinds; nothing verified and the floor did not move.
async fn refusal_kinds(
    store: &Backend,
    world: &World,
    signed_by_stranger: bool,
    namespace: &str,
) -> Vec<(String, String)> {
    let bundle = world.tar_gz(&world.app_dir("app", "hi"));
    let manifest = manifest_text("v1.0.0", "bundle.tar.gz", &bundle);
    let key = if signed_by_stranger {
        &world.stranger
    } else {
        &world.key
    };
    store
        .put_release(
            world,
            "v1.0.0",
            &manifest,
            ("bundle.tar.gz", &bundle),
            (key, namespace),
        )
        .await;
    poll_refusals(store, world).await
}

async fn poll_refusals(store: &Backend, world: &World) -> Vec<(String, String)> {
    let mut channel = store.channel(world);
    let mut state = world.state();
    let poll = poll_now(world, &mut channel, &mut state).await;
    assert!(poll.newest.is_none(), "{poll:?}");
    assert_eq!(world.state().floor(), None);
    // Refused once: the next poll says nothing more.
    let again = poll_now(world, &mut channel, &mut state).await;
    assert!(
        again.refusals.is_empty() && again.newest.is_none(),
        "{again:?}"
    );
    poll.refusals
        .iter()
        .map(|(name, refusal)| {
            eprintln!("{name}: {refusal}");
            (name.clone(), refusal.kind().to_owned())
        })
        .collect()
}

async fn a_key_outside_allowed_signers_is_refused(store: Backend) {
    let world = World::new();
    let kinds = refusal_kinds(&store, &world, true, RELEASE_NAMESPACE).await;
    assert_eq!(kinds, [("v1.0.0".to_owned(), "untrusted_key".to_owned())]);

    // Overtaken by a trusted release, the refused one is not reported again after a restart.
    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(poll.refusals.len(), 1, "a restarted agent looks again");
    store
        .release(&world, "v1.1.0", &world.app_dir("next", "ok"))
        .await;
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(poll.newest.unwrap().version.name(), "v1.1.0");
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    let poll = poll_now(&world, &mut store.channel(&world), &mut world.state()).await;
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
}

async fn a_signature_for_another_namespace_is_refused(store: Backend) {
    let world = World::new();
    let kinds = refusal_kinds(&store, &world, false, GIT_NAMESPACE).await;
    assert_eq!(kinds, [("v1.0.0".to_owned(), "wrong_namespace".to_owned())]);
}

async fn a_manifest_edited_after_signing_is_refused(store: Backend) {
    let world = World::new();
    let bundle = world.tar_gz(&world.app_dir("app", "hi"));
    let honest = manifest_text("v1.0.0", "bundle.tar.gz", &bundle);
    store
        .put_release(
            &world,
            "v1.0.0",
            &honest,
            ("bundle.tar.gz", &bundle),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;
    let evil = world.tar_gz(&world.app_dir("evil", "pwned"));
    let edited = manifest_text("v1.0.0", "bundle.tar.gz", &evil);
    assert_ne!(edited, honest);
    store.put("v1.0.0", "bundle.tar.gz", evil).await;
    store.put("v1.0.0", "release.yaml", edited).await;
    let kinds = poll_refusals(&store, &world).await;
    assert_eq!(kinds, [("v1.0.0".to_owned(), "bad_signature".to_owned())]);
}

async fn the_newest_release_wins_and_non_versions_are_ignored_once(store: Backend) {
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("one", "1"))
        .await;
    store
        .release(&world, "v1.10.0", &world.app_dir("ten", "10"))
        .await;
    store
        .release(&world, "v1.9.0", &world.app_dir("nine", "9"))
        .await;
    store.put("latest", "README", "not a release").await;

    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(
        poll.newest.map(|r| r.version.name().to_owned()).as_deref(),
        Some("v1.10.0")
    );
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    let ignored: Vec<_> = poll.ignored.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(ignored, ["latest"]);
    assert!(
        poll.ignored[0].1.contains("is not a semver version"),
        "{:?}",
        poll.ignored
    );

    let again = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        again.newest.is_none() && again.refusals.is_empty() && again.ignored.is_empty(),
        "{again:?}"
    );
}

async fn an_upload_without_its_signature_is_skipped_until_it_lands(store: Backend) {
    let world = World::new();
    let bundle = world.tar_gz(&world.app_dir("app", "hi"));
    let manifest = manifest_text("v2.0.0", "bundle.tar.gz", &bundle);
    store.put("v2.0.0", "bundle.tar.gz", bundle.clone()).await;
    store.put("v2.0.0", "release.yaml", manifest.clone()).await;

    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(
        poll.newest.is_none() && poll.refusals.is_empty(),
        "{poll:?}"
    );

    let signature = world.sign(&world.key, RELEASE_NAMESPACE, &manifest);
    store.put("v2.0.0", "release.yaml.sig", signature).await;
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(
        poll.newest.map(|r| r.version.name().to_owned()).as_deref(),
        Some("v2.0.0")
    );
}

/// In a bucket with versioning on, hooks get the bundle object's version id in
/// `BUNDLE_VERSION`, as the CodeDeploy agent sets it for S3 revisions; it stays with the
/// release across a restart.
#[tokio::test]
async fn a_versioned_bucket_gives_hooks_the_bundle_version() {
    let store = Backend::s3_versioned();
    let world = World::new();
    let app = world.app_dir("app", "hello");
    store.release(&world, "v1.0.0", &app).await;
    let bundle_path = store.location.object("v1.0.0", "bundle.tar.gz");
    let version = store
        .store
        .head(&bundle_path)
        .await
        .unwrap()
        .version
        .expect("moto gives a version id in a versioned bucket");

    for _start in 0..2 {
        let mut channel = store.channel(&world);
        let poll = poll_now(&world, &mut channel, &mut world.state()).await;
        let release = poll.newest.expect("a verified release");
        let bundle_version = release
            .env
            .iter()
            .find(|(k, _)| k == "BUNDLE_VERSION")
            .map(|(_, v)| v.clone());
        assert_eq!(bundle_version.as_ref(), Some(&version), "{:?}", release.env);
    }
}
