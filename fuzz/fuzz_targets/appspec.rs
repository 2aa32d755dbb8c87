//! `appspec::parse`, the parser behind `shoal appspec check` and every deployment: whatever the
//! text, it answers (libFuzzer's `-timeout` bounds how fast), the same way twice, and keeps the
//! model's promises: accepted scripts and file mappings are filled in, an event no deployment
//! runs comes with a warning, modes fit in 0o7777, and every line it names lies inside the file.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shoal_shared::appspec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = appspec::parse(text);
    assert_eq!(appspec::parse(text), result, "parsing is not deterministic");
    let last_line = line_breaks(text) + 1;
    let in_file = |line: Option<u64>| line.is_none_or(|l| (1..=last_line).contains(&l));
    match result {
        Ok(parsed) => {
            let spec = &parsed.spec;
            for hook in &spec.hooks {
                // An event no deployment runs (even one with no name) is kept, with a warning
                // that says a deployment refuses it.
                if appspec::lifecycle::find(&hook.event).is_none() {
                    let key = format!("hooks.{}", hook.event);
                    assert!(
                        parsed.warnings.iter().any(|w| w.key == key),
                        "{key:?} kept without a warning"
                    );
                }
                for script in &hook.scripts {
                    assert!(!script.location.is_empty(), "a script without a location");
                    assert_eq!(script.location, script.location.trim());
                    assert!(script.timeout >= Duration::from_secs(1), "{script:?}");
                }
            }
            for file in &spec.files {
                assert!(
                    !file.source.is_empty() && !file.destination.is_empty(),
                    "{file:?}"
                );
                assert_eq!(file.source, file.source.trim());
                assert_eq!(file.destination, file.destination.trim());
            }
            for permission in &spec.permissions {
                if let Some(mode) = permission.mode {
                    assert!(mode.0 <= 0o7777, "{permission:?}");
                }
            }
            for warning in &parsed.warnings {
                assert!(
                    in_file(warning.line),
                    "{warning} (file has {last_line} lines)"
                );
                assert!(!warning.message.is_empty());
            }
        }
        Err(error) => {
            assert!(in_file(error.line), "{error} (file has {last_line} lines)");
            assert!(!error.message.is_empty(), "{error:?}");
            assert!(!error.kind().is_empty());
        }
    }
});

/// Line breaks as a YAML reader may count them (`\r\n`, lone `\r`, and YAML 1.1's NEL, LS, PS).
fn line_breaks(text: &str) -> u64 {
    let mut count = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => count += 1,
            _ => {}
        }
    }
    count
}
