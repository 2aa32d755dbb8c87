//! Bundles that do not match their signed manifest, or that try to get out of the cache: each
//! is refused with its reason, the download of an oversized one stops early, and nothing is
//! left behind in the cache or written outside it.

use shoal_agent::channel::Release;
use shoal_agent::channel::store::{StoreChannel, StoreError};
use shoal_shared::release::RELEASE_NAMESPACE;

use crate::backend::{Backend, Kind, manifest_text, pinned_manifest};
use crate::fixture::{RawTar, World, sha256_hex};
use crate::poll_now;

over_stores!(
    a_bundle_with_another_digest_is_refused,
    a_bundle_larger_than_pinned_stops_downloading,
    hostile_bundles_are_refused_and_write_nothing_outside_the_cache,
);

/// Publishes `bundle` under a manifest pinning `sha256` and `size`, polls, and returns the
/// verified release with the channel that verified it.
async fn publish_pinned(
    store: &Backend,
    world: &World,
    version: &str,
    bundle: &[u8],
    (sha256, size): (&str, u64),
) -> (StoreChannel, Release) {
    let manifest = pinned_manifest(version, "bundle.tar.gz", sha256, size);
    store
        .put_release(
            world,
            version,
            &manifest,
            ("bundle.tar.gz", bundle),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;
    let mut channel = store.channel(world);
    let mut state = world.state();
    let poll = poll_now(world, &mut channel, &mut state).await;
    let Some(release) = poll.newest else {
        panic!("{version} did not verify: {:?}", poll.refusals);
    };
    (channel, release)
}

fn refusal(result: Result<std::path::PathBuf, StoreError>) -> (String, String) {
    match result {
        Err(StoreError::Refused { refusal, .. }) => {
            (refusal.kind().to_owned(), refusal.to_string())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_bundle_with_another_digest_is_refused(store: Backend) {
    let world = World::new();
    let bundle = world.tar_gz(&world.app_dir("app", "hi"));
    let mut other = bundle.clone();
    other[20] ^= 0xff;
    let pinned = sha256_hex(&other);
    let (channel, release) = publish_pinned(
        &store,
        &world,
        "v1.0.0",
        &bundle,
        (&pinned, bundle.len() as u64),
    )
    .await;
    let (kind, message) = refusal(channel.materialize(&release, &world.cache()).await);
    assert_eq!(kind, "digest_mismatch", "{message}");
    assert_eq!(
        message,
        format!(
            "bundle sha256 is {}, but release.yaml pins {pinned}",
            sha256_hex(&bundle)
        )
    );
    assert!(
        world.cache_entries().is_empty(),
        "{:?}",
        world.cache_entries()
    );
}

async fn a_bundle_larger_than_pinned_stops_downloading(store: Backend) {
    let world = World::new();
    // 8 MiB that does not compress, pinned as its first 1000 bytes.
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let pinned = sha256_hex(&big[..1000]);
    let (channel, release) = publish_pinned(&store, &world, "v1.0.0", &big, (&pinned, 1000)).await;
    let result = channel.materialize(&release, &world.cache()).await;
    let Err(StoreError::Refused {
        refusal: shoal_agent::verify::Refusal::SizeMismatch { expected, actual },
        ..
    }) = result
    else {
        panic!("expected a size mismatch, got {result:?}");
    };
    assert_eq!(expected, 1000);
    // The in-memory store hands over the whole object as one chunk: nothing to stop there.
    let bound = if store.kind == Kind::Memory {
        big.len() as u64
    } else {
        big.len() as u64 / 2
    };
    assert!(
        actual > 1000 && actual <= bound,
        "stopped after {actual} of {} bytes",
        big.len()
    );
    assert!(
        world.cache_entries().is_empty(),
        "{:?}",
        world.cache_entries()
    );

    // Shorter than pinned is refused too, once the stream ends.
    let small = world.tar_gz(&world.app_dir("app", "hi"));
    let (channel, release) = publish_pinned(
        &store,
        &world,
        "v1.1.0",
        &small,
        (&sha256_hex(&small), small.len() as u64 + 10),
    )
    .await;
    let (kind, message) = refusal(channel.materialize(&release, &world.cache()).await);
    assert_eq!(kind, "size_mismatch");
    assert_eq!(
        message,
        format!(
            "bundle is {} bytes, but release.yaml pins {}",
            small.len(),
            small.len() + 10
        )
    );
}

async fn hostile_bundles_are_refused_and_write_nothing_outside_the_cache(store: Backend) {
    let world = World::new();
    let marker = world.marker();
    let appspec: &[u8] = b"version: 0.0\nos: linux\n";
    let absolute = format!("{}/{marker}", world.path().display());
    let cases = [
        (
            "v1.0.1",
            RawTar::default()
                .file("appspec.yml", appspec)
                .file(&format!("../../../../../../{marker}"), b"x")
                .gz(),
            "parent-dir",
        ),
        (
            "v1.0.2",
            RawTar::default()
                .file("appspec.yml", appspec)
                .file(&absolute, b"x")
                .gz(),
            "absolute-path",
        ),
        (
            "v1.0.3",
            RawTar::default()
                .file("appspec.yml", appspec)
                .symlink("out", "../../../../..")
                .file(&format!("out/{marker}"), b"x")
                .gz(),
            "through-non-directory",
        ),
        (
            "v1.0.4",
            RawTar::default()
                .file("appspec.yml", appspec)
                .declared_only("huge.bin", 9 << 30)
                .gz(),
            "too-large",
        ),
    ];
    for (version, archive, expected) in cases {
        let manifest = manifest_text(version, "bundle.tar.gz", &archive);
        store
            .put_release(
                &world,
                version,
                &manifest,
                ("bundle.tar.gz", &archive),
                (&world.key, RELEASE_NAMESPACE),
            )
            .await;
        let mut channel = store.channel(&world);
        let mut state = world.state();
        let poll = poll_now(&world, &mut channel, &mut state).await;
        let Some(release) = poll.newest else {
            panic!("{version}: {:?}", poll.refusals);
        };
        assert_eq!(release.version.name(), version);
        let result = channel.materialize(&release, &world.cache()).await;
        let Err(StoreError::Refused {
            refusal: shoal_agent::verify::Refusal::Bundle(error),
            ..
        }) = &result
        else {
            panic!("{version}: expected a bundle refusal, got {result:?}");
        };
        assert_eq!(error.kind(), expected, "{version}: {error}");
        eprintln!("{version}: {}", result.as_ref().unwrap_err());
        assert!(
            world.cache_entries().is_empty(),
            "{version}: {:?}",
            world.cache_entries()
        );
    }
    assert_eq!(world.find_named(&marker), Vec::<std::path::PathBuf>::new());
    assert_eq!(world.find_named("out"), Vec::<std::path::PathBuf>::new());
}
