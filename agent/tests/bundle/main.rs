//! Unpacking real bundles: happy paths made by the real `tar`, `zip` and `git` commands, hostile
//! archives made by code with the `tar` and `zip` crates. Nothing is mocked.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod formats;
mod helpers;
mod records;
mod refusals;
mod zip_refusals;

use std::path::PathBuf;
use std::time::SystemTime;

use helpers::unpack;

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
