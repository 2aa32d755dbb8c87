//! `shoal keygen`: a key on stdout, or in a new private file that is never overwritten.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use shoal_agent::coordinate::seal::Keyring;

fn keygen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("keygen")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn keys_are_fresh_and_files_private_and_kept() {
    let first = keygen(&[]);
    assert!(first.status.success());
    let first = String::from_utf8(first.stdout).unwrap();
    assert!(Keyring::parse(&first).is_ok(), "a usable key: {first}");
    let second = String::from_utf8(keygen(&[]).stdout).unwrap();
    assert_ne!(first, second, "every key is new");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip.key");
    let made = keygen(&["--out", path.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(Keyring::load(&path).is_ok(), "the agent can load it");

    let again = keygen(&["--out", path.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing key file is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists and is kept"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "and kept as it was"
    );
}
