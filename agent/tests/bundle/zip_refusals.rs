//! Zip bundles that are refused: hostile names, declared sizes, and entries lying about theirs.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use shoal_agent::bundle::{self, Limits, Owners};
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

use super::helpers::*;

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
            Box::new(move |z| {
                z.add_symlink("etc", "/etc", opts).unwrap();
                z.start_file("etc/cron.d/evil", opts).unwrap();
            }),
            "through-non-directory",
            "etc/cron.d/evil",
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
        bundle::unpack(&bundle, &dest, APPSPEC, &limits, Owners::Recorded),
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
    let err = bundle::unpack(&bundle, &dest, APPSPEC, &limits, Owners::Recorded).unwrap_err();
    // Either the size check or the zip reader's own consistency checks stop it; never a success.
    assert!(
        matches!(err.kind(), "too-large" | "corrupt-archive"),
        "{err}"
    );
    assert!(!dest.exists() && !partial(&dest).exists());
}

// ---------------------------------------------------------------------------------------------
// Refusals: directory bundles
