//! A benchmark, not a timed test: what an idle poll costs (requests and bytes) for S3 and
//! file://, and how long verifying and caching a 100 MB release takes (download, sha256,
//! unpack) next to `sha256sum` of the same file. Run it with
//! `cargo test --release -p shoal-agent --test channel_store -- --ignored --nocapture bench`.

use std::fs;
use std::process::Command;
use std::time::Duration;

use object_store::ObjectStoreExt;
use shoal_agent::channel::cache::ReleaseCache;
use shoal_agent::channel::store::StoreChannel;
use shoal_agent::verify::state::ChannelState;
use shoal_tests::proxy::CountingProxy;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::fixture::{GROUP, World};
use crate::poll_now;

const SIZE: usize = 100 << 20;

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

fn run(cmd: &mut Command) -> Duration {
    let (out, took) = timed(|| cmd.output().unwrap());
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture bench"]
async fn bench_idle_poll_and_a_100_mb_release() {
    let world = World::new();
    let app = world.app_dir("big", "big");
    // Data that does not compress, so the bundle is about 100 MB on the wire.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    fs::write(app.join("data.bin"), &data).unwrap();

    let file = Backend::file();
    let (out, packaged) = timed(|| file.shoal_release("v1.0.0", &app, &world.key.private, &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle_path = file.location.object("v1.0.0", "bundle.tar.gz");
    let bundle = file
        .store
        .get(&bundle_path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    eprintln!(
        "shoal release (package {} MB, sign, publish to file://): {packaged:.2?}",
        bundle.len() / 1_000_000
    );

    let s3 = Backend::s3();
    for name in ["bundle.tar.gz", "release.yaml", "release.yaml.sig"] {
        let object = file
            .store
            .get(&file.location.object("v1.0.0", name))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        s3.put("v1.0.0", name, object.to_vec()).await;
    }
    let proxy = CountingProxy::start(s3.moto.as_ref().unwrap().addr());

    for (label, store) in [
        ("file://", &file),
        ("s3 (moto, through the counting proxy)", &s3),
    ] {
        let data_dir = world.path().join(format!("data-{}", label.len()));
        let source = shoal_agent::channel::store::StoreSource {
            endpoint: store
                .source
                .endpoint
                .as_ref()
                .map(|_| format!("http://{}", proxy.addr())),
            ..store.source.clone()
        };
        let mut channel = StoreChannel::open(&source, &store.env, &data_dir, GROUP, GROUP).unwrap();
        let mut state = ChannelState::load(&ChannelState::path_for(&data_dir, GROUP)).unwrap();
        let cache = ReleaseCache::new(&data_dir);

        proxy.reset();
        let started = Instant::now();
        let poll = poll_now(&world, &mut channel, &mut state).await;
        let release = poll.newest.unwrap();
        let verified = started.elapsed();
        let tree = channel.materialize(&release, &cache).await.unwrap();
        let cached = started.elapsed();
        let first = proxy.stats();

        proxy.reset();
        let idle_started = Instant::now();
        let idle = poll_now(&world, &mut channel, &mut state).await;
        let idle_took = idle_started.elapsed();
        assert!(idle.newest.is_none());
        let idle_stats = proxy.stats();

        let blob = cache.blob_path(match &release.digest {
            shoal_agent::channel::Digest::Sha256(hex) => hex,
            other => panic!("{other:?}"),
        });
        let sha256sum = run(Command::new("sha256sum").arg(&blob));
        let untar_dir = world.path().join(format!("untar-{}", label.len()));
        fs::create_dir_all(&untar_dir).unwrap();
        let untar = run(Command::new("tar")
            .arg("-xzf")
            .arg(&blob)
            .arg("-C")
            .arg(&untar_dir));
        assert!(tree.join("data.bin").is_file());
        eprintln!("--- {label}");
        if store.moto.is_some() {
            eprintln!(
                "idle poll: {} request(s), {} bytes up, {} bytes down, {idle_took:.2?}",
                idle_stats.requests, idle_stats.bytes_up, idle_stats.bytes_down
            );
            eprintln!(
                "first poll + materialize: {} requests, {} bytes down",
                first.requests, first.bytes_down
            );
        } else {
            eprintln!("idle poll: one directory listing, 0 bytes read, {idle_took:.2?}");
        }
        eprintln!(
            "verify {verified:.2?}; verify + download + sha256 + unpack {} MB: {cached:.2?}; sha256sum of the same file {sha256sum:.2?} (ratio {:.1}); tar -xzf {untar:.2?}",
            bundle.len() / 1_000_000,
            cached.as_secs_f64() / sha256sum.as_secs_f64()
        );
    }
}
