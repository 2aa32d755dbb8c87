//! Deploying again: what the previous install made is removed as the CodeDeploy agent does,
//! except files that are exactly what the new install would write, which stay in place.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::{Bundle, assert_exit, deploy, have, is_root, stderr};

fn inode(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// The Install event's note in the newest deployment record under `root`.
fn install_note(root: &Path) -> String {
    let newest = fs::read_dir(root.join("g"))
        .expect("group dir")
        .filter_map(|e| e.ok().map(|e| e.path().join("shoal-deployment.json")))
        .filter(|p| p.exists())
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("a deployment record");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(&newest).expect("read record")).expect("json");
    record["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["name"] == "Install")
        .and_then(|e| e["message"].as_str())
        .expect("an Install message")
        .to_owned()
}

fn release(dir: &Path, dest: &Path, files: &[(&str, &str)]) -> Bundle {
    let bundle = Bundle::new(dir);
    for (path, content) in files {
        bundle.file(&format!("app/{path}"), content);
    }
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\n",
        dest.display()
    ));
    bundle
}

#[test]
fn a_redeployment_keeps_unchanged_files_in_place_and_replaces_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dest, root) = (tmp.path().join("srv"), tmp.path().join("root"));
    let at = |p: &str| dest.join(p);
    let first = release(
        &tmp.path().join("b1"),
        &dest,
        &[
            ("same.txt", "same"),
            ("changed.txt", "v1"),
            ("run.sh", "#!/bin/sh\n"),
            ("touched.txt", "t"),
            ("gone.txt", "gone"),
            ("old/x", "x"),
            ("deep/er/y", "y"),
        ],
    );
    fs::set_permissions(
        first.dir.join("app/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    assert_exit(&deploy(&first.dir, &root, "g", "r1", &[]), 0);
    let before: Vec<(&str, u64)> = [
        "same.txt",
        "changed.txt",
        "run.sh",
        "touched.txt",
        "deep/er/y",
    ]
    .into_iter()
    .map(|p| (p, inode(&at(p))))
    .collect();
    let inode_before = |p: &str| before.iter().find(|(q, _)| *q == p).expect("known").1;

    // Someone opens a file while it is writable to them; it is closed to them again before the
    // next deployment. The file's bytes are the next release's, but its inode must not be.
    fs::set_permissions(at("touched.txt"), fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut kept_open = File::options()
        .append(true)
        .open(at("touched.txt"))
        .expect("open for writing");
    fs::set_permissions(at("touched.txt"), fs::Permissions::from_mode(0o644)).expect("chmod");

    let second = release(
        &tmp.path().join("b2"),
        &dest,
        &[
            ("same.txt", "same"),
            ("changed.txt", "v2"),
            ("run.sh", "#!/bin/sh\n"),
            ("touched.txt", "t"),
            ("new.txt", "new"),
            ("deep/er/y", "y"),
        ],
    );
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(second.dir.join("app/same.txt"))
        .and_then(|f| f.set_modified(stamp))
        .expect("set mtime");
    // Same bytes, another mode: a new file, as a copy would make.
    fs::set_permissions(
        second.dir.join("app/run.sh"),
        fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    let out = deploy(&second.dir, &root, "g", "r2", &[]);
    assert_exit(&out, 0);

    assert_eq!(
        inode(&at("same.txt")),
        inode_before("same.txt"),
        "kept in place"
    );
    assert_eq!(
        inode(&at("deep/er/y")),
        inode_before("deep/er/y"),
        "kept in place"
    );
    assert_eq!(
        fs::metadata(at("same.txt"))
            .and_then(|m| m.modified())
            .expect("mtime"),
        stamp,
        "a kept file takes the new release's modification time, as a copy does"
    );
    assert_ne!(inode(&at("changed.txt")), inode_before("changed.txt"));
    assert_eq!(fs::read_to_string(at("changed.txt")).expect("read"), "v2");
    assert_ne!(inode(&at("run.sh")), inode_before("run.sh"));
    assert_eq!(
        fs::metadata(at("run.sh")).expect("meta").mode() & 0o7777,
        0o700
    );
    assert_ne!(
        inode(&at("touched.txt")),
        inode_before("touched.txt"),
        "a file changed since the last install ended is written again"
    );
    kept_open.write_all(b" and more").expect("write");
    assert_eq!(
        fs::read_to_string(at("touched.txt")).expect("read"),
        "t",
        "a descriptor opened before reaches only the old file"
    );
    assert_eq!(fs::read_to_string(at("new.txt")).expect("read"), "new");
    for gone in ["gone.txt", "old/x", "old"] {
        assert!(!at(gone).exists(), "{gone} removed as the cleanup does");
    }
    let note = install_note(&root);
    // Removed: gone.txt, old/x, old and the touched file; the changed ones were replaced.
    assert!(
        note.contains("2 unchanged files kept in place")
            && note.contains("4 previous paths removed"),
        "{note}"
    );
    let cleanup =
        fs::read_to_string(root.join("deployment-instructions/g-cleanup")).expect("cleanup");
    for listed in ["same.txt", "deep/er/y", "deep/er", "new.txt"] {
        assert!(
            cleanup.lines().any(|l| Path::new(l) == at(listed)),
            "{listed} in the cleanup file: {cleanup}"
        );
    }
    assert!(!cleanup.contains("gone.txt"), "{cleanup}");

    // A deployment that stops at its plan leaves what the cleanup would have: nothing of r2.
    fs::create_dir_all(tmp.path().join("b3/app")).expect("mkdir");
    let third = release(&tmp.path().join("b3"), &dest, &[("same.txt", "same")]);
    fs::write(tmp.path().join("b3/appspec.yml"), format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\n  - source: app/same.txt\n    destination: {}\n",
        dest.display(),
        dest.display()
    ))
    .expect("appspec");
    let out = deploy(&third.dir, &root, "g", "r3", &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("same.txt"), "{}", stderr(&out));
    for gone in ["same.txt", "new.txt", "deep"] {
        assert!(
            !at(gone).exists(),
            "{gone} removed by the failed install's cleanup"
        );
    }
}

#[test]
fn a_file_given_away_by_the_last_release_is_written_again_for_one_that_does_not() {
    if !is_root() {
        eprintln!("skipped: giving files away needs the tests to run as root");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dest, root) = (tmp.path().join("srv"), tmp.path().join("root"));
    let (file, dir) = (dest.join("perm.txt"), dest.join("sub"));
    let files = [("perm.txt", "p"), ("sub/s.txt", "s")];
    let given = release(&tmp.path().join("b1"), &dest, &files);
    given.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {d}\npermissions:\n  - object: {d}/perm.txt\n    owner: nobody\n  - object: {d}\n    pattern: sub\n    type: [directory]\n    owner: nobody\n    mode: 700\n",
        d = dest.display()
    ));
    assert_exit(&deploy(&given.dir, &root, "g", "r1", &[]), 0);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("lookup")
        .expect("nobody exists");
    let before = fs::metadata(&file).expect("installed");
    assert_eq!(before.uid(), nobody.uid.as_raw());
    let dir_before = fs::metadata(&dir).expect("installed");
    assert_eq!(dir_before.uid(), nobody.uid.as_raw());

    let plain = release(&tmp.path().join("b2"), &dest, &files);
    assert_exit(&deploy(&plain.dir, &root, "g", "r2", &[]), 0);
    let after = fs::metadata(&file).expect("installed");
    assert_eq!(after.uid(), 0, "root's, as a copy is");
    assert_ne!(
        after.ino(),
        before.ino(),
        "not nobody's file chowned in place"
    );
    let dir_after = fs::metadata(&dir).expect("installed");
    assert_eq!(
        (dir_after.uid(), dir_after.mode() & 0o7777),
        (0, 0o755),
        "root's, as a mkdir makes it"
    );

    assert_exit(&deploy(&plain.dir, &root, "g", "r3", &[]), 0);
    assert_eq!(inode(&file), after.ino(), "the same again is kept");
    assert_eq!(inode(&dir), dir_after.ino(), "the same again is kept");
}

#[test]
fn a_file_in_a_directory_given_a_default_acl_since_is_written_again_to_inherit_it() {
    if !have("setfacl") || !have("getfacl") {
        eprintln!("skipped: setfacl/getfacl (package acl) are not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    // Two directories of the host (not the install's), one given a default ACL later.
    let (plain, inheriting) = (tmp.path().join("plain"), tmp.path().join("inheriting"));
    fs::create_dir(&plain).expect("mkdir");
    fs::create_dir(&inheriting).expect("mkdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.file("a/f.txt", "f").file("a/sub/g.txt", "g");
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: a\n    destination: {}\n  - source: a\n    destination: {}\n",
        plain.display(),
        inheriting.display()
    ));
    assert_exit(&deploy(&bundle.dir, &root, "g", "r1", &[]), 0);
    let files = ["f.txt", "sub/g.txt"];
    let before: Vec<u64> = files.iter().map(|f| inode(&plain.join(f))).collect();
    let set = std::process::Command::new("setfacl")
        .args(["-d", "-m", "u:nobody:r"])
        .arg(&inheriting)
        .status()
        .expect("run setfacl");
    assert!(set.success());

    assert_exit(&deploy(&bundle.dir, &root, "g", "r2", &[]), 0);
    for (n, file) in files.iter().enumerate() {
        assert_eq!(inode(&plain.join(file)), before[n], "{file} kept");
        // A new file (its inode number may be the old one's, freed just before).
        let new = inheriting.join(file);
        let acl = std::process::Command::new("getfacl")
            .arg(&new)
            .output()
            .expect("run getfacl");
        assert!(
            String::from_utf8_lossy(&acl.stdout).contains("user:nobody:r"),
            "{file} inherits the default ACL: {}",
            String::from_utf8_lossy(&acl.stdout)
        );
    }
}
