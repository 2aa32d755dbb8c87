//! Key validity is judged at the agent's clock when a release is first seen, never at the
//! `created` time the signer wrote into `release.yaml`: `ssh-keygen -Y verify` refuses the
//! same signatures. A release verified earlier keeps its verdict after its key expires.

use shoal_shared::release::manifest::BundleRef;
use shoal_shared::release::{AllowedSigners, Manifest, RELEASE_NAMESPACE, Version};
use shoal_tests::signing::{allowed_signers_line, ssh_verify};

use crate::backend::Backend;
use crate::fixture::{PRINCIPAL, World, sha256_hex};
use crate::now;

/// Trusts the world's key with `options` only; returns the parsed file and its path.
fn signers_with(world: &World, options: &str) -> (AllowedSigners, std::path::PathBuf) {
    let line = allowed_signers_line(PRINCIPAL, &world.key, options);
    let path = world.path().join("allowed_signers.validity");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    (AllowedSigners::parse(&line).unwrap(), path)
}

/// Publishes `version` with a manifest whose `created` is `created`, signed by the world's key.
async fn publish_created(store: &Backend, world: &World, version: &str, created: i64) -> String {
    let bundle = world.tar_gz(&world.app_dir(version, "hi"));
    let manifest = Manifest {
        version: Version::parse(version).unwrap(),
        application: crate::fixture::GROUP.to_owned(),
        bundle: BundleRef {
            path: "bundle.tar.gz".to_owned(),
            sha256: sha256_hex(&bundle),
            size: bundle.len() as u64,
        },
        created,
        rollout: None,
    }
    .render();
    store
        .put_release(
            world,
            version,
            &manifest,
            ("bundle.tar.gz", &bundle),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;
    manifest
}

/// Polls at the real clock: the release is refused as signed by a key not valid now, and
/// `ssh-keygen -Y verify` refuses the same manifest and signature.
async fn assert_refused_now_as_ssh_keygen_does(options: &str, created: i64) {
    let store = Backend::memory();
    let world = World::new();
    let (signers, signers_path) = signers_with(&world, options);
    let manifest = publish_created(&store, &world, "v1.0.0", created).await;
    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = channel.poll(&signers, &mut state, now()).await.unwrap();
    assert!(poll.newest.is_none(), "{poll:?}");
    let kinds: Vec<_> = poll
        .refusals
        .iter()
        .map(|(n, r)| (n.as_str(), r.kind()))
        .collect();
    assert_eq!(kinds, [("v1.0.0", "key_not_valid_then")]);
    assert_eq!(world.state().floor(), None);

    let file = world.path().join("release.yaml");
    std::fs::write(&file, &manifest).unwrap();
    let sig = world.path().join("release.yaml.sig");
    std::fs::write(&sig, world.sign(&world.key, RELEASE_NAMESPACE, &manifest)).unwrap();
    let (ok, said) = ssh_verify(&signers_path, PRINCIPAL, RELEASE_NAMESPACE, &file, &sig);
    assert!(!ok, "ssh-keygen -Y verify accepted it: {said}");
}

#[tokio::test]
async fn a_manifest_backdated_by_an_expired_key_is_refused_as_ssh_keygen_does() {
    // created: 2019-06-01, inside the window the key had before it was retired.
    assert_refused_now_as_ssh_keygen_does("valid-before=\"20200101\"", 1_559_347_200).await;
}

#[tokio::test]
async fn a_manifest_postdated_by_a_not_yet_valid_key_is_refused_as_ssh_keygen_does() {
    // created: 2099-06-01, inside the window of a key that is not valid yet.
    assert_refused_now_as_ssh_keygen_does("valid-after=\"20990101\"", 4_083_955_200).await;
}

#[tokio::test]
async fn a_verified_store_release_keeps_its_verdict_after_its_key_expires() {
    // Key valid until 2030-01-01; verified on 2029-12-31; the agent restarts in 2030-06.
    let (before, after) = (1_893_369_600, 1_909_008_000);
    let store = Backend::memory();
    let world = World::new();
    let (signers, _) = signers_with(&world, "valid-before=\"20300101\"");
    publish_created(&store, &world, "v1.0.0", before).await;
    let mut channel = store.channel(&world);
    let poll = channel
        .poll(&signers, &mut world.state(), before)
        .await
        .unwrap();
    assert_eq!(poll.newest.unwrap().version.name(), "v1.0.0");

    // The restarted channel re-checks the release at the floor and still offers it.
    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = channel.poll(&signers, &mut state, after).await.unwrap();
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    assert_eq!(poll.newest.unwrap().version.name(), "v1.0.0");
    // A release the expired key signs now is refused, whatever `created` it writes.
    publish_created(&store, &world, "v1.1.0", before).await;
    let poll = channel.poll(&signers, &mut state, after).await.unwrap();
    assert!(poll.newest.is_none(), "{poll:?}");
    let kinds: Vec<_> = poll
        .refusals
        .iter()
        .map(|(n, r)| (n.as_str(), r.kind()))
        .collect();
    assert_eq!(kinds, [("v1.1.0", "key_not_valid_then")]);
}
