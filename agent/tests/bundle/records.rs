//! tar's records that describe the next entry (GNU long names and links, pax headers): read as
//! the real `tar` writes them, and refused past their bounds before they are read.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_agent::bundle::BundleError;
use tar::{EntryType, Header};
use tempfile::TempDir;

use super::helpers::*;

/// A tree whose paths and link target need more than a ustar header's 100 bytes.
fn long_tree(root: &Path) -> (PathBuf, String) {
    let dir = "d".repeat(120);
    let name = "f".repeat(150);
    fs::create_dir_all(root.join(&dir)).unwrap();
    let file = root.join(&dir).join(&name);
    fs::write(&file, b"far down\n").unwrap();
    let target = format!("{dir}/{name}");
    symlink(&target, root.join("link")).unwrap();
    fs::write(root.join("appspec.yml"), b"version: 0.0\nos: linux\n").unwrap();
    (file, target)
}

#[test]
fn long_names_and_link_targets_unpack_from_gnu_and_pax_archives() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    let (file, target) = long_tree(&src);
    // Nanoseconds survive only in a pax header.
    run(Command::new("touch")
        .args(["-d", "2023-11-14 22:13:20.123456789"])
        .arg(&file));
    let rel = file.strip_prefix(&src).unwrap();
    for format in ["gnu", "posix"] {
        for flags in ["-cf", "-czf"] {
            let archive = tmp.path().join(format!("{format}{flags}.tar"));
            run(Command::new("tar")
                .arg(format!("--format={format}"))
                .arg(flags)
                .arg(&archive)
                .arg("-C")
                .arg(&src)
                .arg("."));
            let dest = tmp.path().join(format!("out-{format}{flags}"));
            unpack(&archive, &dest).unwrap_or_else(|e| panic!("{format} {flags}: {e}"));
            let what = format!("{format} {flags}");
            assert_eq!(fs::read(dest.join(rel)).unwrap(), b"far down\n", "{what}");
            assert_eq!(
                fs::read_link(dest.join("link")).unwrap(),
                PathBuf::from(&target),
                "{what}"
            );
            let mtime = fs::metadata(dest.join(rel)).unwrap();
            assert_eq!(mtime.mtime(), 1_700_000_000, "{what}");
            let nanos = if format == "posix" { 123_456_789 } else { 0 };
            assert_eq!(mtime.mtime_nsec(), nanos, "{what}");
        }
    }
}

/// A tar.gz (compressed by the real `gzip`) of `header` followed by `data` and nothing else:
/// the archive may declare far more than it holds.
fn tgz_of(dir: &Path, header: &Header, data: &[u8]) -> PathBuf {
    let tar = dir.join("records.tar");
    let mut out = File::create(&tar).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    out.write_all(data).unwrap();
    drop(out);
    let gz = Command::new("gzip").arg("-c").arg(&tar).output().unwrap();
    assert!(gz.status.success());
    let path = dir.join("records.tar.gz");
    fs::write(&path, gz.stdout).unwrap();
    path
}

/// Asserts a refusal of `kind` whose message says `says`, leaving nothing behind.
fn assert_refused_with(
    result: Result<impl std::fmt::Debug, BundleError>,
    dest: &Path,
    kind: &str,
    says: &str,
) {
    let err = result.expect_err("refused");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.to_string().contains(says), "{err}");
    assert!(!dest.exists() && !partial(dest).exists(), "{err}");
}

/// A record that declares more than its bound is refused from its header, before any of its
/// data is read into memory: these archives hold 4 MiB of the gigabyte they declare.
#[test]
fn a_long_name_or_pax_header_past_its_bound_is_refused_unread() {
    let tmp = TempDir::new().unwrap();
    let zeros = vec![0u8; 4 << 20];
    for (kind, record, limit) in [
        (EntryType::GNULongName, "GNU long name", 64 << 10),
        (EntryType::GNULongLink, "GNU long link", 64 << 10),
        (EntryType::XHeader, "pax header", 1 << 20),
        (EntryType::XGlobalHeader, "global pax header", 1 << 20),
    ] {
        let bundle = tgz_of(
            tmp.path(),
            &gnu_header("././@LongLink", kind, 1 << 30),
            &zeros,
        );
        let dest = tmp.path().join("out");
        assert_refused_with(
            unpack(&bundle, &dest),
            &dest,
            "record-too-large",
            &format!("{record} at byte 0 holds 1073741824 bytes, more than the {limit}"),
        );
    }
}

/// A directory's data is skipped, but what it declares still counts against the size limit,
/// so a tar.gz cannot make the agent decompress gigabytes for nothing.
#[test]
fn a_directory_claiming_gigabytes_counts_against_the_size_limit() {
    let tmp = TempDir::new().unwrap();
    let bundle = tgz_of(
        tmp.path(),
        &gnu_header("big/", EntryType::Directory, 9 << 30),
        &[0; 4096],
    );
    let dest = tmp.path().join("out");
    assert_refused(unpack(&bundle, &dest), &dest, "too-large", "big/");
}

/// The bytes of one pax record, `"<len> key=value\n"`.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

#[test]
fn a_pax_size_that_disagrees_with_the_header_is_refused() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("bundle.tar");
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    raw_entry(
        &mut builder,
        "././@PaxHeader",
        EntryType::XHeader,
        &pax_record("size", "1024"),
        None,
    );
    raw_entry(&mut builder, "app.bin", EntryType::Regular, b"four", None);
    builder.finish().unwrap();
    drop(builder);
    let dest = tmp.path().join("out");
    assert_refused(unpack(&path, &dest), &dest, "pax-size", "app.bin");

    // The same size in both places is fine, and a pax path names the entry.
    let path = tmp.path().join("agree.tar");
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    let mut pax = pax_record("size", "4");
    pax.extend(pax_record("path", "named/by/pax.bin"));
    raw_entry(
        &mut builder,
        "././@PaxHeader",
        EntryType::XHeader,
        &pax,
        None,
    );
    raw_entry(&mut builder, "app.bin", EntryType::Regular, b"four", None);
    builder.finish().unwrap();
    drop(builder);
    unpack(&path, &dest).unwrap();
    assert_eq!(fs::read(dest.join("named/by/pax.bin")).unwrap(), b"four");
    assert!(!dest.join("app.bin").exists());
}

#[test]
fn records_that_describe_no_entry_or_one_twice_are_a_corrupt_archive() {
    let tmp = TempDir::new().unwrap();
    let long = b"a-long-name\0";
    for (what, entries) in [
        (
            "ends with a record",
            vec![
                file("ok"),
                ("././@LongLink", EntryType::GNULongName, &long[..], None),
            ],
        ),
        (
            "two long names for one entry",
            vec![
                ("././@LongLink", EntryType::GNULongName, &long[..], None),
                ("././@LongLink", EntryType::GNULongName, &long[..], None),
                file("short"),
            ],
        ),
    ] {
        let bundle = tar_of(tmp.path(), &entries);
        let dest = tmp.path().join("out");
        let err = unpack(&bundle, &dest).expect_err(what);
        assert_eq!(err.kind(), "corrupt-archive", "{what}: {err}");
        assert!(!dest.exists() && !partial(&dest).exists(), "{what}");
    }
}

/// `tar --sparse` stores a file's holes in headers of their own; such a file is refused by
/// name rather than misread.
#[test]
fn a_sparse_file_made_by_tar_is_refused_by_name() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let holes = File::create(src.join("holes.img")).unwrap();
    holes.set_len(8 << 20).unwrap();
    drop(holes);
    let bundle = tmp.path().join("sparse.tar");
    run(Command::new("tar")
        .args(["--format=gnu", "--sparse", "-cf"])
        .arg(&bundle)
        .arg("-C")
        .arg(&src)
        .arg("holes.img"));
    let dest = tmp.path().join("out");
    assert_refused(unpack(&bundle, &dest), &dest, "special-file", "holes.img");
}
