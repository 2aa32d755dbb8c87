//! Everything the command line prints goes through here, so text that came from elsewhere (an
//! agent's status API, peers, a channel's tag and object names, error messages quoting them)
//! cannot drive the terminal: control characters are shown as escapes (`\u{1b}`), newlines and
//! tabs are kept (see [`shoal_shared::text::printable_lines`]). `--json` output needs nothing:
//! JSON escapes control characters itself.

use std::io::{self, Write};

/// `println!`, with control characters escaped.
macro_rules! outln {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::output::shown(&format!($($arg)*)))
    };
}

/// `eprintln!`, with control characters escaped.
macro_rules! errln {
    () => {
        eprintln!()
    };
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::output::shown(&format!($($arg)*)))
    };
}

/// `text` as the terminal may see it: control characters escaped, newlines and tabs kept.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    shoal_shared::text::printable_lines(text)
}

/// A writer that passes bytes through, escaping C0 controls (but newline and tab), DEL and C1
/// controls (U+0080..U+009F, as UTF-8) on the way: for text that streams in pieces, such as a
/// hook's log.
pub(crate) struct Printable<W: Write> {
    inner: W,
    /// The last piece ended with 0xC2, the first byte of a C1 control's UTF-8 encoding.
    pending_c2: bool,
}

impl<W: Write> Printable<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            pending_c2: false,
        }
    }
}

impl<W: Write> Write for Printable<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len());
        for &byte in buf {
            if std::mem::take(&mut self.pending_c2) {
                if (0x80..=0x9f).contains(&byte) {
                    out.extend_from_slice(format!("\\u{{{byte:x}}}").as_bytes());
                    continue;
                }
                out.push(0xc2);
            }
            match byte {
                b'\n' | b'\t' => out.push(byte),
                0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{{{byte:x}}}").as_bytes()),
                0xc2 => self.pending_c2 = true,
                _ => out.push(byte),
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_controls_are_escaped_even_when_split() {
        let mut out = Printable::new(Vec::new());
        out.write_all(b"ok\n\x1b]0;t\x07 \xc2")
            .expect("write to a Vec");
        out.write_all(b"\x9b2J caf\xc3\xa9 \xc2")
            .expect("write to a Vec");
        out.write_all(b"\xa9\tend").expect("write to a Vec");
        out.flush().expect("write to a Vec");
        assert_eq!(
            String::from_utf8(out.inner).expect("utf-8"),
            "ok\n\\u{1b}]0;t\\u{7} \\u{9b}2J café ©\tend"
        );
        assert_eq!(shown("a\u{1b}[2J\nb\tc"), "a\\u{1b}[2J\nb\tc");
    }
}
