//! Benchmarks, ignored by default; each prints its figures on stderr:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-git cargo test --release -p shoal-agent --test channel_git \
//!     -- --ignored --nocapture bench_
//! ```

use std::time::SystemTime;

use shoal_agent::channel::git::GitSource;
use shoal_tests::git_daemon::GitDaemon;
use shoal_tests::proxy::CountingProxy;

use crate::fixture::Scene;
use shoal_tests::command::{clean, stdout};

fn seconds_since(start: SystemTime) -> f64 {
    start.elapsed().unwrap_or_default().as_secs_f64()
}

/// An idle poll (no new tag) of a repository with 50 signed releases, over `git://` through a
/// counting proxy, after a warm first poll.
#[test]
#[ignore = "benchmark: prints the cost of an idle git poll"]
fn bench_git_idle_poll() {
    let scene = Scene::new();
    for i in 0..50 {
        scene
            .repo
            .commit_file("version.txt", &format!("{i}\n"), &format!("release {i}"));
        let tag = format!("v1.{i}.0");
        scene.repo.tag_signed(&tag, &tag, &scene.key, None);
    }
    let base = scene.path("served");
    std::fs::create_dir(&base).unwrap();
    stdout(
        clean("git", scene.dir.path())
            .args(["clone", "-q", "--bare"])
            .arg(scene.repo.dir())
            .arg(base.join("app.git")),
    );
    let daemon = GitDaemon::serve(scene.dir.path(), &base);
    let proxy = CountingProxy::start(daemon.addr);
    let url = format!("git://{}/app.git", proxy.addr());
    let mut channel = scene.channel_for(GitSource::new(url));

    let started = SystemTime::now();
    let first = scene.poll(&mut channel);
    let first_secs = seconds_since(started);
    assert_eq!(
        first.newest.map(|r| r.version.name().to_owned()).as_deref(),
        Some("v1.49.0")
    );
    let warm = proxy.stats();
    eprintln!(
        "git first poll (50 tags): {:.3} s, {} connections, {} bytes up, {} bytes down",
        first_secs, warm.connections, warm.bytes_up, warm.bytes_down
    );
    for round in 1..=3 {
        proxy.reset();
        let started = SystemTime::now();
        let idle = scene.poll(&mut channel);
        let secs = seconds_since(started);
        assert!(idle.newest.is_none() && idle.refusals.is_empty());
        let stats = proxy.stats();
        eprintln!(
            "git idle poll {round}: {:.3} s, {} connections, {} bytes up, {} bytes down",
            secs, stats.connections, stats.bytes_up, stats.bytes_down
        );
    }
}

/// Verifying and caching a release of one 100 MB file (poll + materialize, from a local
/// repository), against `sha256sum` of the same file.
#[test]
#[ignore = "benchmark: prints the time to verify and cache a 100 MB git release"]
fn bench_git_materialize_100mb() {
    let scene = Scene::new();
    let blob = scene.repo.dir().join("payload.bin");
    stdout(
        clean("head", scene.dir.path())
            .args(["-c", "100000000", "/dev/urandom"])
            .stdout(std::fs::File::create(&blob).unwrap()),
    );
    scene.repo.git(&["add", "payload.bin"]);
    scene.repo.git(&["commit", "-q", "-m", "payload"]);
    scene.repo.tag_signed("v1.0.0", "big", &scene.key, None);

    let started = SystemTime::now();
    stdout(clean("sha256sum", scene.dir.path()).arg(&blob));
    let sha_secs = seconds_since(started);

    let mut channel = scene.channel();
    let started = SystemTime::now();
    let release = scene.poll(&mut channel).newest.expect("verifies");
    let poll_secs = seconds_since(started);
    let started = SystemTime::now();
    let dir = channel.materialize(&release, &scene.cache()).unwrap();
    let export_secs = seconds_since(started);
    assert_eq!(
        std::fs::metadata(dir.join("payload.bin")).unwrap().len(),
        100_000_000
    );
    eprintln!(
        "git 100 MB release: poll (fetch + verify) {poll_secs:.3} s, materialize {export_secs:.3} s, \
         total {:.3} s; sha256sum {sha_secs:.3} s; ratio {:.1}",
        poll_secs + export_secs,
        (poll_secs + export_secs) / sha_secs
    );
}
