//! `Manifest::parse` (a store release's `release.yaml`) and `Version::parse`: whatever the text,
//! they answer; an accepted manifest pins a plain bundle file name and a sha256, and reads back
//! equal from its own `render`; versions keep their name and order consistently.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use shoal_shared::release::manifest::BUNDLE_SUFFIXES;
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{Manifest, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(text) {
        Ok(manifest) => {
            let bundle = &manifest.bundle;
            assert!(
                BUNDLE_SUFFIXES.iter().any(|s| bundle.path.ends_with(s)),
                "{bundle:?}"
            );
            assert!(
                !bundle.path.contains(['/', '\\', '\0']) && !bundle.path.starts_with('.'),
                "{bundle:?}"
            );
            assert_eq!(bundle.sha256.len(), 64, "{bundle:?}");
            let rendered = manifest.render();
            assert_eq!(
                Manifest::parse(&rendered).as_ref(),
                Ok(&manifest),
                "render does not read back:\n{rendered}"
            );
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }

    let mut lines = text.lines();
    let versions: Vec<Version> = lines
        .by_ref()
        .take(2)
        .filter_map(|line| Version::parse(line).ok())
        .collect();
    for version in &versions {
        assert!(text.lines().any(|l| l == version.name()));
        assert_eq!(version.cmp(version), Ordering::Equal);
        assert!(!above_floor(version, Some(version)));
        assert!(above_floor(version, None));
        let bare = Version::parse(&version.semver().to_string()).expect("semver reads back");
        assert_eq!(bare.semver(), version.semver());
    }
    if let [a, b] = versions.as_slice() {
        assert_eq!(a.cmp(b), b.cmp(a).reverse());
        assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
        if above_floor(a, Some(b)) {
            assert!(
                !above_floor(b, Some(a)),
                "{a} and {b} are each above the other"
            );
            assert_eq!(a.cmp(b), Ordering::Greater);
        }
    }
});
