//! `bundle::unpack` on the fuzz bytes as a bundle file (tar, tar.gz and zip are told
//! apart by content; the file is named `bundle.tar` so pre-POSIX tars are tried too), into a
//! fresh directory with small limits. Whatever the archive holds:
//! - it answers without panicking;
//! - nothing is written outside the destination: the scratch directory holds exactly
//!   `bundle.tar` (unchanged) and `root/`, `root/` holds the empty sentinel `outside/` and, only
//!   after a success, `dest/`;
//! - after a success no symlink under `dest/` resolves to a place outside it, and the bytes and
//!   entries stay within the limits;
//! - after a refusal `dest/` does not exist.
#![no_main]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use shoal_agent::bundle::{self, Limits};

const APPSPEC: &[&str] = &["appspec.yml", "appspec.yaml"];

fuzz_target!(|data: &[u8]| {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let tmp = scratch.path();
    let archive = tmp.join("bundle.tar");
    fs::write(&archive, data).expect("write the bundle");
    let root = tmp.join("root");
    let outside = root.join("outside");
    fs::create_dir_all(&outside).expect("create the sentinel");
    let dest = root.join("dest");
    let limits = Limits {
        max_total_bytes: 1 << 20,
        max_entries: 64,
    };

    let result = bundle::unpack(&archive, &dest, APPSPEC, &limits);

    assert_eq!(names(tmp), set(&["bundle.tar", "root"]));
    assert_eq!(
        fs::read(&archive).expect("read the bundle"),
        data,
        "the bundle changed"
    );
    assert!(
        names(&outside).is_empty(),
        "written outside: {:?}",
        names(&outside)
    );
    match &result {
        Ok(unpacked) => {
            assert_eq!(names(&root), set(&["dest", "outside"]), "{unpacked:?}");
            assert!(fs::symlink_metadata(&dest).expect("dest").is_dir());
            assert!(unpacked.bytes <= limits.max_total_bytes, "{unpacked:?}");
            assert!(unpacked.files <= limits.max_entries, "{unpacked:?}");
            links_stay_inside(&dest);
        }
        Err(error) => {
            assert_eq!(names(&root), set(&["outside"]), "after {error}");
            assert!(!error.kind().is_empty());
        }
    }
});

fn names(dir: &Path) -> BTreeSet<OsString> {
    fs::read_dir(dir)
        .expect("read a directory")
        .map(|entry| entry.expect("a directory entry").file_name())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<OsString> {
    names.iter().map(OsString::from).collect()
}

/// Every symlink under `dest` that resolves at all resolves inside `dest`.
fn links_stay_inside(dest: &Path) {
    let real_dest = fs::canonicalize(dest).expect("canonical dest");
    let mut pending = vec![dest.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read a directory") {
            let path = entry.expect("a directory entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                pending.push(path);
            } else if meta.file_type().is_symlink()
                && let Ok(real) = fs::canonicalize(&path)
            {
                assert!(
                    real.starts_with(&real_dest),
                    "{} -> {:?} resolves to {}",
                    path.display(),
                    fs::read_link(&path),
                    real.display()
                );
            }
        }
    }
}
