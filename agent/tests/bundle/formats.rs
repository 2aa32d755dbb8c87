//! Bundles that unpack: every format, stripping, links, detection.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use shoal_agent::bundle::{self, BundleKind};
use tar::EntryType;
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

use super::helpers::*;

#[test]
fn directory_tar_tgz_and_zip_bundles_unpack_to_the_same_tree() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    app_tree(&src);
    let expected = snapshot(&src);
    let expected_bytes: u64 = ["appspec.yml", "scripts/start.sh", "scripts/setgid-tool"]
        .iter()
        .chain(&[
            "config/secret.env",
            "config/conf.d/app name é.conf",
            "empty.txt",
            "big.bin",
        ])
        .map(|f| fs::metadata(src.join(f)).unwrap().len())
        .sum();

    let tar_path = tmp.path().join("app.tar");
    tar_create("-cf", &tar_path, &src, ".");
    let tgz_path = tmp.path().join("app.tgz");
    tar_create("-czf", &tgz_path, &src, ".");
    let mut bundles = vec![
        (src.clone(), BundleKind::Directory),
        (tar_path, BundleKind::Tar),
        (tgz_path, BundleKind::TarGz),
    ];
    if have("zip") {
        let zip_path = tmp.path().join("app.zip");
        run(Command::new("zip")
            .arg("-qry")
            .arg(&zip_path)
            .arg(".")
            .current_dir(&src));
        bundles.push((zip_path, BundleKind::Zip));
    } else {
        eprintln!("zip is not installed: skipping the zip bundle made by the zip command");
    }

    for (bundle, kind) in bundles {
        let dest = tmp.path().join(format!("out-{kind}"));
        let unpacked = unpack(&bundle, &dest).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(unpacked.kind, kind);
        assert_eq!(unpacked.stripped_prefix, None, "{kind}");
        assert_eq!(unpacked.files, 10, "{kind}: 7 files and 3 symlinks");
        assert_eq!(unpacked.bytes, expected_bytes, "{kind}");
        assert_eq!(
            snapshot(&dest),
            expected,
            "{kind} differs from the source tree"
        );
        let root_mode = fs::metadata(&dest).unwrap().mode() & 0o7777;
        assert_eq!(root_mode, 0o755, "{kind}");
        assert!(!partial(&dest).exists());
    }
}

#[test]
fn a_single_top_directory_holding_the_appspec_is_stripped() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    app_tree(&src.join("acme-app-1a2b3c"));
    let expected = snapshot(&src.join("acme-app-1a2b3c"));
    fs::set_permissions(
        src.join("acme-app-1a2b3c"),
        fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    set_mtime(&src.join("acme-app-1a2b3c"), 1_650_000_000);
    let tgz = tmp.path().join("app.tgz");
    tar_create("-czf", &tgz, &src, "acme-app-1a2b3c");

    let dest = tmp.path().join("deployment-archive");
    let unpacked = unpack(&tgz, &dest).unwrap();
    assert_eq!(unpacked.stripped_prefix.as_deref(), Some("acme-app-1a2b3c"));
    assert_eq!(snapshot(&dest), expected);
    let root = fs::metadata(&dest).unwrap();
    assert_eq!((root.mode() & 0o7777, root.mtime()), (0o775, 1_650_000_000));
    assert!(!partial(&dest).exists());
}

#[test]
fn a_single_top_directory_without_an_appspec_is_kept() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("site/appspec.yml.d")).unwrap();
    fs::write(src.join("site/index.html"), "hi").unwrap();
    let tar_path = tmp.path().join("site.tar");
    tar_create("-cf", &tar_path, &src, "site");

    let dest = tmp.path().join("out");
    let unpacked = unpack(&tar_path, &dest).unwrap();
    assert_eq!(unpacked.stripped_prefix, None);
    assert!(dest.join("site/index.html").is_file());
}

#[test]
fn a_top_directory_is_kept_when_the_root_has_other_entries_too() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(
        tmp.path(),
        &[
            ("app/", EntryType::Directory, b"", None),
            file("app/appspec.yml"),
            file("README"),
        ],
    );
    let dest = tmp.path().join("out");
    assert_eq!(unpack(&bundle, &dest).unwrap().stripped_prefix, None);
    assert!(dest.join("app/appspec.yml").is_file() && dest.join("README").is_file());
}

#[test]
fn a_github_style_tarball_from_git_archive_is_stripped() {
    if !have("git") {
        eprintln!("git is not installed: skipping the git archive tarball");
        return;
    }
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    fs::create_dir_all(repo.join("scripts")).unwrap();
    fs::write(repo.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    fs::write(repo.join("scripts/start.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        repo.join("scripts/start.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&repo));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "app"]);
    let tgz = tmp.path().join("github.tar.gz");
    // `git archive` writes the pax global header (the commit id) that GitHub tarballs carry.
    run(Command::new("git")
        .args([
            "archive",
            "--format=tar.gz",
            "--prefix=acme-app-0123abc/",
            "-o",
        ])
        .arg(&tgz)
        .arg("HEAD")
        .current_dir(&repo));

    let dest = tmp.path().join("out");
    let unpacked = unpack(&tgz, &dest).unwrap();
    assert_eq!(
        unpacked.stripped_prefix.as_deref(),
        Some("acme-app-0123abc")
    );
    assert!(dest.join("appspec.yml").is_file());
    // git archive writes executables as 0777 less its tar.umask, 0002 by default.
    let mode = fs::metadata(dest.join("scripts/start.sh")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o775);
}

#[test]
fn hard_links_in_a_tar_stay_hard_links() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("a/one"), "same").unwrap();
    fs::hard_link(src.join("a/one"), src.join("two")).unwrap();
    let tar_path = tmp.path().join("links.tar");
    tar_create("-cf", &tar_path, &src, ".");

    let dest = tmp.path().join("out");
    unpack(&tar_path, &dest).unwrap();
    let one = fs::metadata(dest.join("a/one")).unwrap();
    let two = fs::metadata(dest.join("two")).unwrap();
    assert_eq!(one.ino(), two.ino());
    assert_eq!(fs::read_to_string(dest.join("two")).unwrap(), "same");
}

#[test]
fn a_later_entry_replaces_an_earlier_file_or_symlink_as_tar_does() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(
        tmp.path(),
        &[
            ("f", EntryType::Regular, b"old", None),
            ("f", EntryType::Regular, b"new", None),
            ("l", EntryType::Symlink, b"", Some("f")),
            ("l", EntryType::Regular, b"plain", None),
        ],
    );
    let dest = tmp.path().join("out");
    unpack(&bundle, &dest).unwrap();
    assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "new");
    assert!(fs::symlink_metadata(dest.join("l")).unwrap().is_file());
    assert_eq!(fs::read_to_string(dest.join("l")).unwrap(), "plain");
}

#[test]
fn an_empty_destination_directory_is_used_and_a_stale_partial_is_replaced() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(tmp.path(), &[file("appspec.yml")]);
    let dest = tmp.path().join("out");
    fs::create_dir(&dest).unwrap();
    fs::create_dir_all(partial(&dest).join("stale")).unwrap();
    unpack(&bundle, &dest).unwrap();
    assert!(dest.join("appspec.yml").is_file());
    assert!(!partial(&dest).exists());
}

#[test]
fn an_old_style_directory_entry_marked_only_by_its_slash_is_a_directory() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(
        tmp.path(),
        &[("d/", EntryType::Regular, b"", None), file("d/f")],
    );
    let dest = tmp.path().join("out");
    unpack(&bundle, &dest).unwrap();
    assert!(dest.join("d/f").is_file());
}

#[test]
fn a_destination_written_with_a_trailing_slash_is_staged_beside_it() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(tmp.path(), &[file("appspec.yml")]);
    let dest = tmp.path().join("out/");
    unpack(&bundle, &dest).unwrap();
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "bundle.tar and out only: {names:?}");
    assert!(tmp.path().join("out/appspec.yml").is_file());
}

// ---------------------------------------------------------------------------------------------
// detect

#[test]
fn detect_goes_by_content_not_by_extension() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("appspec.yml"), "version: 0.0\n").unwrap();
    let tar_cmd = |flags: &str, name: &str| {
        let path = tmp.path().join(name);
        tar_create(flags, &path, &src, ".");
        path
    };
    assert_eq!(
        bundle::detect(&tar_cmd("-czf", "really-gzip.zip")).unwrap(),
        BundleKind::TarGz
    );
    assert_eq!(
        bundle::detect(&tar_cmd("-cf", "really-tar.tgz")).unwrap(),
        BundleKind::Tar
    );
    let zip_path = tmp.path().join("really-zip.tar");
    let mut zip = zip::ZipWriter::new(File::create(&zip_path).unwrap());
    zip.start_file("appspec.yml", SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"version: 0.0\n").unwrap();
    zip.finish().unwrap();
    assert_eq!(bundle::detect(&zip_path).unwrap(), BundleKind::Zip);
    assert_eq!(bundle::detect(&src).unwrap(), BundleKind::Directory);

    // A misleadingly named file of the wrong content also unpacks by its content.
    let dest = tmp.path().join("out");
    assert_eq!(unpack(&zip_path, &dest).unwrap().kind, BundleKind::Zip);
    assert!(dest.join("appspec.yml").is_file());
}

#[test]
fn detect_refuses_what_is_no_bundle() {
    let tmp = TempDir::new().unwrap();
    let junk = tmp.path().join("junk.tar");
    fs::write(&junk, vec![b'x'; 2048]).unwrap();
    let err = bundle::detect(&junk).unwrap_err();
    assert_eq!(err.kind(), "unsupported-format");
    assert!(err.to_string().contains("junk.tar"), "{err}");

    let dest = tmp.path().join("out");
    assert_eq!(
        unpack(&junk, &dest).unwrap_err().kind(),
        "unsupported-format"
    );
    assert!(!dest.exists() && !partial(&dest).exists());
}

// ---------------------------------------------------------------------------------------------
// Refusals: hostile tar archives

#[test]
fn a_directory_keeps_its_owners_only_when_asked() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: giving files away needs the tests to run as root");
        return;
    }
    let tmp = TempDir::new().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    fs::write(tree.join("owned.txt"), "x").unwrap();
    let (uid, gid) = (4242, 4343);
    nix::unistd::chown(
        &tree.join("owned.txt"),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
    let owner = |dir: &std::path::Path| {
        let meta = fs::metadata(dir.join("owned.txt")).unwrap();
        (meta.uid(), meta.gid())
    };
    for (owners, expected) in [
        (bundle::Owners::Kept, (uid, gid)),
        (bundle::Owners::Recorded, (0, 0)),
    ] {
        let dest = tmp.path().join(format!("{owners:?}"));
        bundle::unpack(&tree, &dest, APPSPEC, &bundle::Limits::default(), owners).unwrap();
        assert_eq!(owner(&dest), expected, "{owners:?}");
    }
}
