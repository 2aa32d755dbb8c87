//! Unpacking real bundles: happy paths made by the real `tar`, `zip` and `git` commands, hostile
//! archives made by code with the `tar` and `zip` crates. Nothing is mocked.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use shoal_agent::execute::bundle::{self, BundleError, BundleKind, Limits, Unpacked};
use tar::EntryType;
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

const APPSPEC: &[&str] = &["appspec.yml", "appspec.yaml"];

// ---------------------------------------------------------------------------------------------
// Helpers

fn unpack(bundle: &Path, dest: &Path) -> Result<Unpacked, BundleError> {
    bundle::unpack(bundle, dest, APPSPEC, &Limits::default())
}

fn partial(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Runs a command and panics with its output when it fails.
fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Archives `member` of `dir` with the real `tar` (`flags` is `-cf` or `-czf`).
fn tar_create(flags: &str, archive: &Path, dir: &Path, member: &str) {
    run(Command::new("tar")
        .arg(flags)
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg(member));
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

fn set_mtime(path: &Path, secs: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t))
        .unwrap();
}

fn set_link_mtime(path: &Path, secs: i64) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(secs, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

fn write_file(path: &Path, content: &[u8], mode: u32, mtime: u64) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

/// A small application tree with the things a bundle may hold: nested directories with their
/// own modes, an empty directory, executable and setgid files, a file over the in-memory
/// threshold, an empty file, odd names, and relative symlinks (to a file, to a directory, and
/// dangling). Every mtime is fixed.
fn app_tree(root: &Path) {
    fs::create_dir_all(root.join("scripts")).unwrap();
    fs::create_dir_all(root.join("config/conf.d")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    write_file(
        &root.join("appspec.yml"),
        b"version: 0.0\nos: linux\n",
        0o644,
        1_600_000_000,
    );
    write_file(
        &root.join("scripts/start.sh"),
        b"#!/bin/sh\necho start\n",
        0o755,
        1_600_000_100,
    );
    write_file(
        &root.join("scripts/setgid-tool"),
        b"tool",
        0o2750,
        1_600_000_200,
    );
    write_file(
        &root.join("config/secret.env"),
        b"TOKEN=x\n",
        0o600,
        1_600_000_300,
    );
    write_file(
        &root.join("config/conf.d/app name é.conf"),
        b"a = 1\n",
        0o640,
        1_600_000_400,
    );
    write_file(&root.join("empty.txt"), b"", 0o644, 1_600_000_500);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write_file(&root.join("big.bin"), &big, 0o644, 1_600_000_600);
    symlink("scripts/start.sh", root.join("start")).unwrap();
    symlink("../config", root.join("scripts/config")).unwrap();
    symlink("missing.txt", root.join("dangling")).unwrap();
    for link in ["start", "scripts/config", "dangling"] {
        set_link_mtime(&root.join(link), 1_600_000_700);
    }
    fs::set_permissions(root.join("config"), fs::Permissions::from_mode(0o750)).unwrap();
    for (dir, secs) in [("scripts", 1_600_001_000), ("config/conf.d", 1_600_001_100)] {
        set_mtime(&root.join(dir), secs);
    }
    set_mtime(&root.join("config"), 1_600_001_200);
    set_mtime(&root.join("empty"), 1_600_001_300);
}

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Dir {
        mode: u32,
        mtime: i64,
    },
    File {
        mode: u32,
        mtime: i64,
        sha256: String,
    },
    Symlink {
        target: PathBuf,
        mtime: i64,
    },
}

/// Everything below `root` (not `root` itself) as comparable items.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Item> {
    let mut items = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for child in fs::read_dir(&dir).unwrap() {
            let path = child.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.mode() & 0o7777;
            let mtime = meta.mtime();
            let item = if meta.is_dir() {
                pending.push(path);
                Item::Dir { mode, mtime }
            } else if meta.file_type().is_symlink() {
                Item::Symlink {
                    target: fs::read_link(&path).unwrap(),
                    mtime,
                }
            } else {
                let sha256 = format!("{:x}", Sha256::digest(fs::read(&path).unwrap()));
                Item::File {
                    mode,
                    mtime,
                    sha256,
                }
            };
            items.insert(rel, item);
        }
    }
    items
}

/// A tar entry with any name, link name and type, bypassing the builder's path checks.
fn raw_entry(
    builder: &mut tar::Builder<File>,
    name: &str,
    kind: EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

type Entry<'a> = (&'a str, EntryType, &'a [u8], Option<&'a str>);

fn file(name: &str) -> Entry<'_> {
    (name, EntryType::Regular, b"data", None)
}

fn tar_of(dir: &Path, entries: &[Entry<'_>]) -> PathBuf {
    let path = dir.join("bundle.tar");
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    for (name, kind, data, link) in entries {
        raw_entry(&mut builder, name, *kind, data, *link);
    }
    builder.finish().unwrap();
    path
}

/// Asserts the unpack was refused with `kind`, naming `entry`, and left nothing behind.
fn assert_refused(result: Result<Unpacked, BundleError>, dest: &Path, kind: &str, entry: &str) {
    let err = match result {
        Ok(unpacked) => panic!("expected a {kind} refusal of {entry}, got {unpacked:?}"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.entry(), Some(entry), "{err}");
    assert!(
        err.to_string().contains(entry),
        "message does not name {entry}: {err}"
    );
    assert!(
        !dest.exists(),
        "{} was left behind after: {err}",
        dest.display()
    );
    assert!(
        !partial(dest).exists(),
        "the partial dir was left behind after: {err}"
    );
}

/// Asserts nothing was written next to the destination (where `../x` would land).
fn assert_only_bundle_left(dir: &Path) {
    let names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "unexpected files in {}: {names:?}",
        dir.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Happy paths

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
            "symlink to /etc",
            vec![("etc", EntryType::Symlink, b"", Some("/etc"))],
            "link-escape",
            "etc",
        ),
        (
            "symlink climbing out",
            vec![("a/b/l", EntryType::Symlink, b"", Some("../../../x"))],
            "link-escape",
            "a/b/l",
        ),
        (
            "chained symlinks climbing out",
            vec![
                ("d/up", EntryType::Symlink, b"", Some("..")),
                ("d/x", EntryType::Symlink, b"", Some("up/../..")),
            ],
            "link-escape",
            "d/x",
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
            "file written through a file",
            vec![file("f"), file("f/g")],
            "through-non-directory",
            "f/g",
        ),
        (
            "hard link to /etc/passwd",
            vec![("h", EntryType::Link, b"", Some("/etc/passwd"))],
            "link-escape",
            "h",
        ),
        (
            "hard link climbing out",
            vec![("h", EntryType::Link, b"", Some("../x"))],
            "link-escape",
            "h",
        ),
        (
            "hard link moving a symlink to where it climbs out",
            vec![
                ("a/l", EntryType::Symlink, b"", Some("../x")),
                ("h", EntryType::Link, b"", Some("a/l")),
            ],
            "link-escape",
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
        bundle::unpack(&bundle, &dest, APPSPEC, &limits),
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
        bundle::unpack(&tgz, &dest, APPSPEC, &limits),
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
        bundle::unpack(&bundle, &dest, APPSPEC, &limits),
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

fn zip_of(dir: &Path, build: impl FnOnce(&mut zip::ZipWriter<File>)) -> PathBuf {
    let path = dir.join("bundle.zip");
    let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
    build(&mut zip);
    zip.finish().unwrap();
    path
}

#[test]
fn hostile_zip_entries_are_refused_by_name() {
    let opts = SimpleFileOptions::default();
    type Build = Box<dyn FnOnce(&mut zip::ZipWriter<File>)>;
    let cases: Vec<(Build, &str, &str)> = vec![
        (
            Box::new(move |z| z.start_file("../evil", opts).unwrap()),
            "parent-dir",
            "../evil",
        ),
        (
            Box::new(move |z| z.start_file("/etc/evil", opts).unwrap()),
            "absolute-path",
            "/etc/evil",
        ),
        (
            Box::new(move |z| z.add_symlink("etc", "/etc", opts).unwrap()),
            "link-escape",
            "etc",
        ),
        (
            Box::new(move |z| z.add_symlink("a/l", "../../x", opts).unwrap()),
            "link-escape",
            "a/l",
        ),
        (
            Box::new(move |z| {
                z.add_symlink("l", "sub", opts).unwrap();
                z.add_directory("sub/", opts).unwrap();
                z.start_file("l/evil", opts).unwrap();
            }),
            "through-non-directory",
            "l/evil",
        ),
        (
            Box::new(move |z| {
                let dev = opts.external_attributes(0o020_644 << 16);
                z.start_file("tty", dev).unwrap();
            }),
            "special-file",
            "tty",
        ),
        (
            Box::new(move |z| {
                let fifo = opts.external_attributes(0o010_644 << 16);
                z.start_file("pipe", fifo).unwrap();
            }),
            "special-file",
            "pipe",
        ),
    ];
    for (build, kind, entry) in cases {
        let tmp = TempDir::new().unwrap();
        let bundle = zip_of(tmp.path(), build);
        let dest = tmp.path().join("out");
        assert_refused(unpack(&bundle, &dest), &dest, kind, entry);
        assert_only_bundle_left(tmp.path());
    }
}

#[test]
fn a_zip_declaring_too_much_is_refused_before_writing() {
    let tmp = TempDir::new().unwrap();
    let bundle = zip_of(tmp.path(), |z| {
        for name in ["a", "b"] {
            z.start_file(name, SimpleFileOptions::default()).unwrap();
            z.write_all(&[7; 800]).unwrap();
        }
    });
    let dest = tmp.path().join("out");
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&bundle, &dest, APPSPEC, &limits),
        &dest,
        "too-large",
        "b",
    );
}

#[test]
fn a_zip_entry_lying_about_its_size_cannot_pass_the_limit() {
    let tmp = TempDir::new().unwrap();
    let bundle = zip_of(tmp.path(), |z| {
        z.start_file("liar", SimpleFileOptions::default()).unwrap();
        z.write_all(&[0; 100_000]).unwrap();
    });
    // Rewrite the declared uncompressed size (local header and central directory) to 10.
    let mut bytes = fs::read(&bundle).unwrap();
    let declared = 100_000u32.to_le_bytes();
    let mut patched = 0;
    for i in 0..bytes.len() - 4 {
        if bytes[i..i + 4] == declared {
            bytes[i..i + 4].copy_from_slice(&10u32.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central headers");
    fs::write(&bundle, bytes).unwrap();

    let dest = tmp.path().join("out");
    let limits = Limits {
        max_total_bytes: 50_000,
        ..Limits::default()
    };
    let err = bundle::unpack(&bundle, &dest, APPSPEC, &limits).unwrap_err();
    // Either the size check or the zip reader's own consistency checks stop it; never a success.
    assert!(
        matches!(err.kind(), "too-large" | "corrupt-archive"),
        "{err}"
    );
    assert!(!dest.exists() && !partial(&dest).exists());
}

// ---------------------------------------------------------------------------------------------
// Refusals: directory bundles

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
fn a_directory_bundle_with_an_escaping_symlink_is_refused() {
    for (link, target) in [("etc", "/etc"), ("lib/up", "../../outside")] {
        let tmp = TempDir::new().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("lib")).unwrap();
        symlink(target, src.join(link)).unwrap();
        let dest = tmp.path().join("out");
        assert_refused(unpack(&src, &dest), &dest, "link-escape", link);
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
        bundle::unpack(&src, &dest, APPSPEC, &limits),
        &dest,
        "too-large",
        "b",
    );
    let limits = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    assert_refused(
        bundle::unpack(&src, &dest, APPSPEC, &limits),
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

/// Unpacks `SHOAL_BENCH_BUNDLE` into `SHOAL_BENCH_DEST`, for timing against `tar -xf`.
#[test]
#[ignore = "benchmark: needs SHOAL_BENCH_BUNDLE and SHOAL_BENCH_DEST"]
fn bench_unpack() {
    let var = |name| PathBuf::from(std::env::var_os(name).unwrap_or_else(|| panic!("{name}")));
    let (bundle, dest) = (var("SHOAL_BENCH_BUNDLE"), var("SHOAL_BENCH_DEST"));
    let started = SystemTime::now();
    let unpacked = unpack(&bundle, &dest).unwrap();
    eprintln!(
        "{unpacked:?} in {:?}",
        started.elapsed().unwrap_or_default()
    );
}
