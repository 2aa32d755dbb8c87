//! The mirror stays bounded across many releases: a few packs at most (libgit2 adds one per
//! fetch; the channel repacks), no pack held open between polls, every release still
//! readable after a repack, no larger than a fresh `git clone --mirror`, and what no tag
//! reaches any more is dropped.

use std::path::Path;

use shoal_agent::channel::Digest;
use shoal_agent::channel::git::{GitChannel, MAX_PACKS};
use shoal_tests::command::{clean, stdout};

use crate::fixture::{NOW, Scene, newest};

/// Files under `dir` whose name ends with `suffix`.
fn count(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|read| {
            read.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(suffix))
            })
            .count()
        })
        .unwrap_or(0)
}

/// The bytes of every file under `dir`.
fn size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// This process's open files inside `dir`.
fn open_files_under(dir: &Path) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .map(|target| target.display().to_string())
        .collect()
}

/// Text that does not compress away: `len` hex digits from a seeded xorshift.
fn noise(seed: u64, len: usize) -> String {
    let mut x = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

/// Commits new content and tags it `v1.0.<n>`, then polls: the tag must be the newest release.
fn release_and_poll(scene: &Scene, channel: &mut GitChannel, n: u64) {
    scene
        .repo
        .commit_file("payload.txt", &noise(n, 16_384), &format!("release {n}"));
    let tag = format!("v1.0.{n}");
    scene.repo.tag_signed(&tag, "release", &scene.key, None);
    assert_eq!(newest(&scene.poll(channel)), Some(tag.as_str()));
}

#[test]
fn a_mirror_keeps_a_few_packs_and_none_open_between_polls() {
    let scene = Scene::new();
    let mut channel = scene.channel();
    let mirror = channel.mirror_path().to_owned();
    let packs = mirror.join("objects/pack");
    let mut most = 0;
    for n in 1..=3 * MAX_PACKS as u64 {
        release_and_poll(&scene, &mut channel, n);
        most = most.max(count(&packs, ".pack"));
        assert_eq!(
            count(&packs, ".pack"),
            count(&packs, ".idx"),
            "a pack without its index"
        );
        let open = open_files_under(&mirror);
        assert!(open.is_empty(), "open after poll {n}: {open:?}");
    }
    assert!(most <= MAX_PACKS, "{most} packs at once");
    assert!(mirror.join("packed-refs").is_file(), "tags not packed");

    // Every release is still there to read: the first verifies and exports again.
    let state = scene.state();
    let first = channel
        .verified_release("v1.0.1", &scene.signers(), &state, NOW)
        .unwrap()
        .expect("v1.0.1 verifies after the repacks");
    let tree = channel.materialize(&first, &scene.cache()).unwrap();
    let payload = std::fs::read_to_string(tree.join("payload.txt")).unwrap();
    assert_eq!(payload, noise(1, 16_384));

    let fresh = scene.path("fresh.git");
    stdout(
        clean("git", scene.dir.path())
            .args(["clone", "-q", "--mirror", "--no-local"])
            .arg(scene.repo.dir())
            .arg(&fresh),
    );
    let (ours, theirs) = (size(&mirror.join("objects")), size(&fresh.join("objects")));
    assert!(
        ours <= 2 * theirs,
        "mirror objects {ours} B, fresh clone {theirs} B"
    );
}

#[test]
fn a_repack_drops_what_no_tag_reaches_any_more() {
    let scene = Scene::new();
    let mut channel = scene.channel();
    scene.repo.git(&["checkout", "-q", "-b", "side"]);
    let side = scene.repo.commit_file("side.txt", &noise(99, 4096), "side");
    scene.repo.tag_signed("v0.9.0", "side", &scene.key, None);
    scene.repo.git(&["checkout", "-q", "main"]);
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v0.9.0"));
    scene.repo.git(&["tag", "-d", "v0.9.0"]);
    scene.repo.git(&["branch", "-q", "-D", "side"]);

    let mirror = channel.mirror_path().to_owned();
    let has_side = || {
        git2::Repository::open_bare(&mirror)
            .unwrap()
            .find_commit(git2::Oid::from_str(&side).unwrap())
            .is_ok()
    };
    assert!(has_side());
    for n in 1..=MAX_PACKS as u64 {
        release_and_poll(&scene, &mut channel, n);
    }
    assert!(!has_side(), "the untagged commit survived the repack");
    let digest = Digest::Commit(scene.repo.head());
    let release = channel
        .verified_release(
            &format!("v1.0.{MAX_PACKS}"),
            &scene.signers(),
            &scene.state(),
            NOW,
        )
        .unwrap()
        .unwrap();
    assert_eq!(release.digest, digest);
}
