//! `bundle::unpack` on the fuzz bytes as a bundle file (tar, tar.gz and zip are told
//! apart by content; the file is named `bundle.tar` so pre-POSIX tars are tried too), into a
//! fresh directory with small limits. Whatever the archive holds:
//! - it answers without panicking;
//! - nothing is written outside the destination: the scratch directory holds exactly
//!   `bundle.tar` (unchanged) and `root/`, `root/` holds the empty sentinel `outside/` and, only
//!   after a success, `dest/`;
//! - after a success the bytes and entries stay within the limits (links may point anywhere:
//!   what is refused is writing through one, which the sentinel catches);
//! - after a refusal `dest/` does not exist.
#![no_main]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use shoal_agent::bundle::{self, Limits, Owners};

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

    let result = bundle::unpack(&archive, &dest, APPSPEC, &limits, Owners::Recorded);

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
