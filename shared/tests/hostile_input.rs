//! Hostile input to the release parsers: whatever bytes arrive from a channel, parsing returns
//! a value or an error and never panics. (Coverage-guided fuzzing of the same entry points comes
//! with the security work; these properties run on every test run.)

use proptest::prelude::*;
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
