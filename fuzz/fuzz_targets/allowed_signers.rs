//! `AllowedSigners::parse`, the trust file of both channels: whatever the text, it answers; an
//! accepted file lists only lines that hold an entry, in order, each with principals and a
//! window that can contain a time; a refusal names a line of the file. The principal patterns
//! it matches with are checked on the same text: every string matches itself and `*`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_shared::release::AllowedSigners;
use shoal_shared::release::allowed_signers::{SignerKey, pattern_matches, principal_matches};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    match AllowedSigners::parse(text) {
        Ok(signers) => {
            let mut previous = 0;
            for entry in signers.entries() {
                assert!(entry.line > previous, "entries out of order: {entry:?}");
                previous = entry.line;
                let source = lines
                    .get(entry.line - 1)
                    .unwrap_or_else(|| panic!("line {} is past the end", entry.line))
                    .trim();
                assert!(!source.is_empty() && !source.starts_with('#'), "{entry:?}");
                assert!(!entry.principals.is_empty(), "{entry:?}");
                if let (Some(after), Some(before)) = (entry.valid_after, entry.valid_before) {
                    assert!(after < before, "{entry:?}");
                }
                if let SignerKey::Supported(key) = &entry.key {
                    assert!(
                        signers.entries_for(key).any(|e| e.line == entry.line),
                        "entries_for misses {entry:?}"
                    );
                }
            }
        }
        Err(error) => {
            assert!((1..=lines.len()).contains(&error.line), "{error}");
            assert!(!error.reason.to_string().is_empty());
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("line {}: ", error.line))
            );
        }
    }
    // Matching: a pattern matches itself (each character matches itself, `?` any one, `*` any
    // run) and `*` matches everything. Bounded, since matching is quadratic.
    let short: String = text.chars().take(64).collect();
    assert!(pattern_matches(&short, &short), "{short:?}");
    assert!(pattern_matches("*", &short));
    if let Some((patterns, identity)) = short.split_once('\n') {
        let _ = principal_matches(patterns, identity);
    }
});
