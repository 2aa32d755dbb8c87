//! Text from elsewhere made safe to show on a terminal: object names, tag names, error
//! messages and reasons that peers, channels or the status API supplied. A control character
//! (C0, DEL or C1) could move the cursor, rewrite the window title (`ESC ]0;…BEL`) or hide
//! what follows; each one is shown as its Rust escape (`\u{1b}`) instead, so the text stays
//! readable and nothing is lost.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) written as its escape (`\u{1b}`, `\n`,
/// `\t`); other characters, and text without control characters, are unchanged.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |_| true)
}

/// Like [`printable`], but keeps newlines and tabs: for multi-line text such as a hook's log,
/// a table or an error's chain of causes.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\n' && c != '\t')
}

/// `bytes` (a file name that may not be UTF-8) as printable text: invalid UTF-8 becomes
/// U+FFFD, control characters are escaped as in [`printable`].
pub fn printable_bytes(bytes: &[u8]) -> String {
    printable(&String::from_utf8_lossy(bytes)).into_owned()
}

fn escape(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let hidden = |c: char| c.is_control() && escaped(c);
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("v1\u{1b}]0;pwned\u{7}\u{7f}\u{9b}2J é\n"),
            "v1\\u{1b}]0;pwned\\u{7}\\u{7f}\\u{9b}2J é\\n"
        );
        assert_eq!(printable_lines("a\tb\nc\r"), "a\tb\nc\\r");
        assert!(matches!(printable("plain text"), Cow::Borrowed(_)));
        assert_eq!(printable_bytes(b"v1-\xff\x1b"), "v1-\u{fffd}\\u{1b}");
    }
}
