//! Building test bundles and looking at unpacked trees.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use shoal_agent::bundle::{self, BundleError, Limits, Owners, Unpacked};
use tar::EntryType;

pub const APPSPEC: &[&str] = &["appspec.yml", "appspec.yaml"];

// ---------------------------------------------------------------------------------------------
// Helpers

pub fn unpack(bundle: &Path, dest: &Path) -> Result<Unpacked, BundleError> {
    bundle::unpack(bundle, dest, APPSPEC, &Limits::default(), Owners::Recorded)
}

pub fn partial(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Runs a command and panics with its output when it fails.
pub fn run(cmd: &mut Command) {
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
pub fn tar_create(flags: &str, archive: &Path, dir: &Path, member: &str) {
    run(Command::new("tar")
        .arg(flags)
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg(member));
}

pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

pub fn set_mtime(path: &Path, secs: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t))
        .unwrap();
}

pub fn set_link_mtime(path: &Path, secs: i64) {
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

pub fn write_file(path: &Path, content: &[u8], mode: u32, mtime: u64) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

/// A small application tree with the things a bundle may hold: nested directories with their
/// own modes, an empty directory, executable and setgid files, a file over the in-memory
/// threshold, an empty file, odd names, and relative symlinks (to a file, to a directory, and
/// dangling). Every mtime is fixed.
pub fn app_tree(root: &Path) {
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
pub enum Item {
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
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Item> {
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
pub fn raw_entry(
    builder: &mut tar::Builder<File>,
    name: &str,
    kind: EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = gnu_header(name, kind, data.len() as u64);
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
    }
    builder.append(&header, data).unwrap();
}

/// A GNU tar header named `name` of type `kind` declaring `size` bytes, whatever it holds.
pub fn gnu_header(name: &str, kind: EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    header
}

pub type Entry<'a> = (&'a str, EntryType, &'a [u8], Option<&'a str>);

pub fn file(name: &str) -> Entry<'_> {
    (name, EntryType::Regular, b"data", None)
}

pub fn tar_of(dir: &Path, entries: &[Entry<'_>]) -> PathBuf {
    let path = dir.join("bundle.tar");
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    for (name, kind, data, link) in entries {
        raw_entry(&mut builder, name, *kind, data, *link);
    }
    builder.finish().unwrap();
    path
}

/// Asserts the unpack was refused with `kind`, naming `entry`, and left nothing behind.
pub fn assert_refused(result: Result<Unpacked, BundleError>, dest: &Path, kind: &str, entry: &str) {
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
pub fn assert_only_bundle_left(dir: &Path) {
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
