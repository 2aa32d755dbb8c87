//! Bundles that are refused, each naming the entry, leaving nothing behind.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_agent::bundle::{self, Limits, Owners};
use tar::EntryType;
use tempfile::TempDir;

use super::helpers::*;

#[test]
fn hostile_tar_entries_are_refused_by_name() {
    let cases: Vec<(&str, Vec<Entry<'_>>, &str, &str)> = vec![
        (
            "absolute path",
            vec![file("ok"), file("/etc/cron.d/evil")],
            "absolute-path",
            "/etc/cron.d/evil",
        ),
        ("parent dir", vec![file("../x")], "parent-dir", "../x"),
        (
            "parent dir inside",
            vec![file("a/../../x")],
            "parent-dir",
            "a/../../x",
        ),
        (
            "file written through a symlink",
            vec![
                ("sub/", EntryType::Directory, b"", None),
                ("l", EntryType::Symlink, b"", Some("sub")),
                ("l/evil", EntryType::Regular, b"x", None),
            ],
            "through-non-directory",
            "l/evil",
        ),
        (
            "file written through a symlink to /etc",
            vec![
                ("etc", EntryType::Symlink, b"", Some("/etc")),
                ("etc/cron.d/evil", EntryType::Regular, b"x", None),
            ],
            "through-non-directory",
            "etc/cron.d/evil",
        ),
        (
            "file written through chained symlinks climbing out",
            vec![
                ("d/up", EntryType::Symlink, b"", Some("..")),
                ("d/x", EntryType::Symlink, b"", Some("up/../..")),
                ("d/x/evil", EntryType::Regular, b"x", None),
            ],
            "through-non-directory",
            "d/x/evil",
        ),
        (
            "file written through a file",
            vec![file("f"), file("f/g")],
            "through-non-directory",
            "f/g",
        ),
        (
            "hard link to /etc/passwd",
            vec![("h", EntryType::Link, b"", Some("/etc/passwd"))],
            "hard-link-target",
            "h",
        ),
        (
            "hard link climbing out",
            vec![("h", EntryType::Link, b"", Some("../x"))],
            "hard-link-target",
            "h",
        ),
        (
            "hard link to nothing",
            vec![("h", EntryType::Link, b"", Some("missing"))],
            "hard-link-target",
            "h",
        ),
        (
            "char device",
            vec![("dev/tty", EntryType::Char, b"", None)],
            "special-file",
            "dev/tty",
        ),
        (
            "block device",
            vec![("sda", EntryType::Block, b"", None)],
            "special-file",
            "sda",
        ),
        (
            "fifo",
            vec![("pipe", EntryType::Fifo, b"", None)],
            "special-file",
            "pipe",
        ),
        (
            "unknown entry type",
            vec![("vol", EntryType::new(b'Z'), b"", None)],
            "unknown-entry-type",
            "vol",
        ),
        (
            "directory replaced by a file",
            vec![("d/", EntryType::Directory, b"", None), file("d")],
            "replaces-directory",
            "d",
        ),
    ];
    for (story, entries, kind, entry) in cases {
        let tmp = TempDir::new().unwrap();
        let bundle = tar_of(tmp.path(), &entries);
        let dest = tmp.path().join("deployment-archive");
        eprintln!("case: {story}");
        assert_refused(unpack(&bundle, &dest), &dest, kind, entry);
        assert_only_bundle_left(tmp.path());
    }
}

#[test]
fn a_bundle_over_the_byte_limit_is_refused() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(
        tmp.path(),
        &[
            ("small", EntryType::Regular, &[1; 600], None),
            ("big", EntryType::Regular, &[2; 600], None),
        ],
    );
    let dest = tmp.path().join("out");
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&bundle, &dest, APPSPEC, &limits, Owners::Recorded),
        &dest,
        "too-large",
        "big",
    );
}

#[test]
fn a_gzip_bundle_over_the_byte_limit_is_refused_while_streaming() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("zeros"), vec![0u8; 5 << 20]).unwrap();
    let tgz = tmp.path().join("bomb.tgz");
    tar_create("-czf", &tgz, &src, "zeros");
    assert!(
        fs::metadata(&tgz).unwrap().len() < 64 << 10,
        "compresses well"
    );

    let dest = tmp.path().join("out");
    let limits = Limits {
        max_total_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&tgz, &dest, APPSPEC, &limits, Owners::Recorded),
        &dest,
        "too-large",
        "zeros",
    );
}

#[test]
fn a_bundle_over_the_entry_limit_is_refused() {
    let tmp = TempDir::new().unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| file(n)).collect();
    let bundle = tar_of(tmp.path(), &entries);
    let dest = tmp.path().join("out");
    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&bundle, &dest, APPSPEC, &limits, Owners::Recorded),
        &dest,
        "too-many-entries",
        "f3",
    );
}

#[test]
fn a_tar_cut_off_inside_a_file_is_a_corrupt_archive() {
    let tmp = TempDir::new().unwrap();
    let data = vec![5u8; 100_000];
    let bundle = tar_of(
        tmp.path(),
        &[file("a"), ("big", EntryType::Regular, &data, None)],
    );
    let cut = File::options().write(true).open(&bundle).unwrap();
    cut.set_len(3 * 512 + 50_000).unwrap();
    for bundle in [bundle.clone(), gzip(&bundle)] {
        let dest = tmp.path().join("out");
        let err = unpack(&bundle, &dest).unwrap_err();
        assert_eq!(err.kind(), "corrupt-archive", "{err}");
        assert!(!dest.exists() && !partial(&dest).exists());
    }
}

/// Compresses `path` with the real `gzip`, keeping the original.
fn gzip(path: &Path) -> PathBuf {
    let out = Command::new("gzip").arg("-c").arg(path).output().unwrap();
    assert!(out.status.success());
    let gz = path.with_extension("tar.gz");
    fs::write(&gz, out.stdout).unwrap();
    gz
}

#[test]
fn a_refusal_leaves_a_destination_that_was_empty_untouched_or_absent() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(tmp.path(), &[file("ok"), file("../x")]);
    let dest = tmp.path().join("out");
    fs::create_dir(&dest).unwrap();
    let err = unpack(&bundle, &dest).unwrap_err();
    assert_eq!(err.kind(), "parent-dir");
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    assert!(!partial(&dest).exists());
}

#[test]
fn a_destination_with_content_is_refused() {
    let tmp = TempDir::new().unwrap();
    let bundle = tar_of(tmp.path(), &[file("appspec.yml")]);
    let dest = tmp.path().join("out");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), "mine").unwrap();
    let err = unpack(&bundle, &dest).unwrap_err();
    assert_eq!(err.kind(), "destination-not-empty");
    assert_eq!(fs::read_to_string(dest.join("keep")).unwrap(), "mine");
}

// ---------------------------------------------------------------------------------------------
// Refusals: hostile zip archives

#[test]
fn a_directory_bundle_with_a_fifo_or_socket_is_refused() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("run")).unwrap();
    fs::write(src.join("appspec.yml"), "").unwrap();
    nix::unistd::mkfifo(
        &src.join("run/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let dest = tmp.path().join("out");
    assert_refused(unpack(&src, &dest), &dest, "special-file", "run/pipe");

    fs::remove_file(src.join("run/pipe")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("run/sock")).unwrap();
    assert_refused(unpack(&src, &dest), &dest, "special-file", "run/sock");
}

#[test]
fn a_directory_bundle_keeps_links_that_point_outside_as_links() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("appspec.yml"), "").unwrap();
    let links = [("etc", "/etc"), ("lib/up", "../../outside")];
    for (link, target) in links {
        symlink(target, src.join(link)).unwrap();
    }
    let dest = tmp.path().join("out");
    unpack(&src, &dest).expect("links are kept");
    for (link, target) in links {
        assert_eq!(fs::read_link(dest.join(link)).unwrap(), Path::new(target));
    }
}

#[test]
fn a_directory_bundle_over_the_limits_is_refused() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), vec![0; 700]).unwrap();
    fs::write(src.join("b"), vec![0; 700]).unwrap();
    let dest = tmp.path().join("out");
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&src, &dest, APPSPEC, &limits, Owners::Recorded),
        &dest,
        "too-large",
        "b",
    );
    let limits = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&src, &dest, APPSPEC, &limits, Owners::Recorded),
        &dest,
        "too-many-entries",
        "b",
    );
}

#[test]
fn a_directory_bundle_cannot_unpack_into_itself() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("appspec.yml"), "").unwrap();
    let dest = src.join("deployment-archive");
    let err = unpack(&src, &dest).unwrap_err();
    assert_eq!(err.kind(), "destination-inside-bundle");
    assert!(!dest.exists() && !partial(&dest).exists());
}

// ---------------------------------------------------------------------------------------------
// Benchmark
