//! Materialising a verified release: the tagged commit's tree lands in the content-addressed
//! cache with its modes and links, once; a tree whose links escape it is refused like an
//! archive would be, and nothing is written outside the cache.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::fixture::{Scene, tree};

#[test]
fn a_verified_release_exports_its_tree_with_modes_and_links() {
    let scene = Scene::new();
    let repo = &scene.repo;
    std::fs::create_dir_all(repo.dir().join("scripts")).unwrap();
    std::fs::write(repo.dir().join("scripts/start.sh"), "#!/bin/sh\necho up\n").unwrap();
    std::fs::set_permissions(
        repo.dir().join("scripts/start.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(repo.dir().join("config.yml"), "port: 80\n").unwrap();
    std::os::unix::fs::symlink("scripts/start.sh", repo.dir().join("run")).unwrap();
    repo.git(&["add", "-A"]);
    // A submodule (a gitlink): releases carry their own files only, so it is skipped.
    let elsewhere = repo.head();
    let gitlink = format!("160000,{elsewhere},vendor/lib");
    repo.git(&["update-index", "--add", "--cacheinfo", &gitlink]);
    repo.git(&["commit", "-q", "-m", "app"]);
    let commit = repo.head();
    repo.tag_signed("v1.0.0", "release", &scene.key, None);

    let mut channel = scene.channel();
    let release = scene.poll(&mut channel).newest.expect("verifies");
    let cache = scene.cache();
    let dir = channel.materialize(&release, &cache).unwrap();
    assert_eq!(
        dir,
        scene
            .data_dir()
            .join(format!("releases/trees/git-{commit}"))
    );
    assert_eq!(
        tree(&dir),
        [
            "appspec.yml",
            "config.yml",
            "run",
            "scripts",
            "scripts/start.sh",
            "vendor"
        ],
        "the submodule's directory is there, its content is not"
    );
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("scripts/start.sh"), 0o755, "the exec bit is kept");
    assert_eq!(
        mode("config.yml") & 0o111,
        0,
        "plain files are not executable"
    );
    assert!(dir.join("run").symlink_metadata().unwrap().is_symlink());
    assert_eq!(
        std::fs::read_link(dir.join("run")).unwrap().to_str(),
        Some("scripts/start.sh")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("config.yml")).unwrap(),
        "port: 80\n"
    );
    assert!(
        tree(&scene.data_dir().join("releases/tmp")).is_empty(),
        "the temporary tar is gone"
    );
    // Cached: a second call (even from a restarted channel) reuses the tree.
    std::fs::write(dir.join("marker"), "kept").unwrap();
    let again = scene.channel().materialize(&release, &cache).unwrap();
    assert_eq!(again, dir);
    assert!(again.join("marker").exists());
}

#[test]
fn links_out_of_the_tree_stay_links_and_nothing_lands_outside_the_cache() {
    let scene = Scene::new();
    let outside = scene.path("outside");
    let repo = &scene.repo;
    std::os::unix::fs::symlink("../../../../outside", repo.dir().join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.dir().join("abs")).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "hostile links"]);
    repo.tag_signed(
        "v1.0.0",
        "signed by a trusted but careless key",
        &scene.key,
        None,
    );
    let before = tree(scene.dir.path());

    let mut channel = scene.channel();
    let release = scene
        .poll(&mut channel)
        .newest
        .expect("the signature is fine");
    let dir = channel
        .materialize(&release, &scene.cache())
        .expect("links that point out of the bundle are kept as links");
    for (name, target) in [
        ("up", PathBuf::from("../../../../outside")),
        ("abs", outside.clone()),
    ] {
        assert!(dir.join(name).symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read_link(dir.join(name)).unwrap(), target);
    }
    assert!(!outside.exists());
    let after = tree(scene.dir.path());
    let new: Vec<_> = after
        .iter()
        .filter(|p| !before.contains(p))
        .filter(|p| !p.starts_with("data/"))
        .collect();
    assert!(new.is_empty(), "written outside the data dir: {new:?}");
    assert!(
        tree(&scene.data_dir().join("releases/tmp")).is_empty(),
        "the temporary tar is gone"
    );
}
