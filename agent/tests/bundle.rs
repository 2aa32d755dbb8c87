//! Unpacking real bundles made by real tools (`tar`, `zip`) and by code (hostile archives).

use std::path::PathBuf;

use shoal_agent::execute::bundle::{self, Limits};

/// Unpacks `SHOAL_BENCH_BUNDLE` into `SHOAL_BENCH_DEST`; for timing against `tar -xf`.
#[test]
#[ignore = "benchmark: needs SHOAL_BENCH_BUNDLE and SHOAL_BENCH_DEST"]
fn bench_unpack() {
    let bundle = PathBuf::from(std::env::var_os("SHOAL_BENCH_BUNDLE").expect("SHOAL_BENCH_BUNDLE"));
    let dest = PathBuf::from(std::env::var_os("SHOAL_BENCH_DEST").expect("SHOAL_BENCH_DEST"));
    let unpacked = bundle::unpack(&bundle, &dest, &["appspec.yml"], &Limits::default()).unwrap();
    eprintln!("{unpacked:?}");
}
