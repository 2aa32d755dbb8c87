//! Hostile input to the parsers and decoders that read what arrives from a channel or a peer
//! (release files, AppSpecs, gossip values): parsing returns a value or an error and never
//! panics, what is accepted keeps its promises, and alias bombs are refused quickly. The same
//! entry points are fuzzed with coverage guidance by `scripts/fuzz.sh` (fuzz/); these
//! properties run on every test run.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use shoal_shared::appspec;
use shoal_shared::release::{AllowedSigners, Manifest, Version, split_signed_tag, verify};

/// Text built from the pieces these formats are made of, so cases reach deep into the parsers.
fn release_like_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "ssh-ed25519 ",
        "AAAAC3NzaC1lZDI1NTE5AAAA",
        "namespaces=\"",
        "valid-after=\"2024",
        "Z\"",
        "cert-authority",
        ",",
        "\"",
        " ",
        "\n",
        "#",
        "*",
        "!",
        "-----BEGIN SSH SIGNATURE-----\n",
        "-----END SSH SIGNATURE-----\n",
        "object ",
        "type commit\n",
        "tag v1.0.0\n",
        "tagger a <b> 17 +0000\n",
        "\n\n",
        "version: v1.0.0\n",
        "bundle:\n  path: b.tar\n",
        "  sha256: ",
        "  size: 18446744073709551616\n",
        "created: 2026-11-21T00:00:00Z\n",
        "rollout:\n  canary: 200%\n",
        "&a [*a, *a]\n",
        "\u{0}",
        "é",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn allowed_signers_never_panics(text in release_like_text()) {
        let _ = AllowedSigners::parse(&text);
    }

    #[test]
    fn tag_splitting_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), text in release_like_text()) {
        let _ = split_signed_tag("v1", &bytes);
        let _ = split_signed_tag("v1", text.as_bytes());
    }

    #[test]
    fn manifest_and_version_never_panic(text in release_like_text()) {
        let _ = Manifest::parse(&text);
        let _ = Version::parse(&text);
    }

    #[test]
    fn signature_checking_never_panics(sig in release_like_text(), msg in any::<Vec<u8>>()) {
        let signers = AllowedSigners::default();
        prop_assert!(verify(sig.as_bytes(), &msg, "git", &signers, 0).is_err());
    }
}

/// A "billion laughs": nine levels of anchors, each a list of ten aliases of the one before,
/// so 10^9 strings once expanded, in under a kilobyte of YAML.
fn billion_laughs() -> String {
    let mut levels = vec![format!("&l0 [{}]", ["lol"; 10].join(", "))];
    for level in 1..9 {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        levels.push(format!("&l{level} [{aliases}]"));
    }
    format!("[{}]", levels.join(", "))
}

/// Runs `parse` on its own thread and gives its answer, failing the test if there is none
/// within a few seconds (an unbounded expansion takes minutes and gigabytes).
fn answered_quickly<T: Send + 'static>(parse: impl FnOnce() -> T + Send + 'static) -> T {
    let (answer_tx, answer_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = answer_tx.send(parse());
    });
    answer_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("an alias bomb is refused within 5 s")
}

#[test]
fn an_appspec_alias_bomb_is_refused_quickly_in_one_sentence() {
    let text = format!("version: 0.0\nos: linux\nlaughs: {}\n", billion_laughs());
    let error = answered_quickly(move || appspec::parse(&text)).expect_err("an alias bomb");
    let message = error.to_string();
    assert_eq!(error.kind(), "too-large", "{message}");
    assert_eq!(error.line, Some(3), "{message}");
    assert!(
        message.contains("aliases") && message.contains("billion laughs"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_release_yaml_alias_bomb_is_refused_quickly_in_one_sentence() {
    // Inside `rollout.canary`, a value serde buffers whole before it can refuse its type.
    let text = format!(
        "version: v1.0.0\ncreated: 2026-11-21T19:57:40Z\nbundle:\n  path: b.tar\n  \
         sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n  size: 1\n\
         rollout:\n  canary: {}\n",
        billion_laughs()
    );
    let error = answered_quickly(move || Manifest::parse(&text)).expect_err("an alias bomb");
    let message = error.to_string();
    assert!(
        message.starts_with("line 8: release.yaml is refused"),
        "{message}"
    );
    assert!(
        message.contains("aliases") && message.contains("billion laughs"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}
