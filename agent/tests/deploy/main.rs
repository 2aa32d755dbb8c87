//! `shoal deploy` end to end: the real binary, real bundles, real shell scripts, real files.

#[path = "../common/mod.rs"]
mod common;

mod bundles;
mod files;
mod lifecycle;
mod race;
mod redeploy;
