//! How log lines reach stderr. On a terminal they are coloured (unless `NO_COLOR` is set); in a
//! pipe or a file they carry no escape codes. When stderr is the systemd journal
//! (`JOURNAL_STREAM` names it, systemd.exec(5)), each line starts with its syslog priority,
//! `<3>` to `<7>` (sd-daemon(3)), which journald strips and keeps as the entry's PRIORITY; the
//! pretty format then leaves out the time and the level, which the journal records itself.
//! JSON lines keep every field, their own timestamp and level included, and get the prefix too,
//! so the journal's MESSAGE is still the JSON object.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How each line is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: `time level target: message fields`.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// What stderr is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// The systemd journal: priority prefixes, no time or level of our own, no colour.
    Journal,
    /// A terminal: colour, unless `NO_COLOR` is set.
    Terminal,
    /// A pipe, a file, /dev/null: plain text.
    Other,
}

impl Stderr {
    /// What this process's stderr is connected to.
    pub fn detect() -> Stderr {
        let stderr = std::io::stderr();
        let id = stderr
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|file| file.metadata())
            .ok()
            .map(|meta| (meta.dev(), meta.ino()));
        let journal = std::env::var_os("JOURNAL_STREAM");
        Self::classify(journal.as_deref(), id, stderr.is_terminal())
    }

    /// `JOURNAL_STREAM` is `<device>:<inode>` of the journal's stream socket as systemd set it
    /// up; the variable is inherited, so it counts only while stderr still is that socket.
    fn classify(journal: Option<&OsStr>, stderr: Option<(u64, u64)>, terminal: bool) -> Stderr {
        let named = journal
            .and_then(OsStr::to_str)
            .and_then(|value| value.split_once(':'))
            .and_then(|(dev, ino)| Some((dev.parse().ok()?, ino.parse().ok()?)));
        match (named, stderr) {
            (Some(named), Some(stderr)) if named == stderr => Stderr::Journal,
            _ if terminal => Stderr::Terminal,
            _ => Stderr::Other,
        }
    }

    /// Whether escape codes may be written.
    fn colour(self) -> bool {
        self == Stderr::Terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// The syslog priority of `level` (sd-daemon(3)): error 3, warn 4, info 6, debug and trace 7.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Sends log lines to stderr in `format`, as fits what stderr is (see the module's doc);
/// `RUST_LOG`, when set, overrides `filter`.
pub fn init(format: Format, filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = Stderr::detect();
    // Only a second call in one process fails, and then the first setup stays.
    let _ = subscriber(format, filter, stderr, stderr.colour(), std::io::stderr).try_init();
}

/// The subscriber that writes `format` lines to `writer`, which is connected to `stderr`.
fn subscriber<W>(
    format: Format,
    filter: EnvFilter,
    stderr: Stderr,
    colour: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour);
    match (format, stderr) {
        (Format::Json, Stderr::Journal) => Box::new(
            builder
                .json()
                .event_format(Prefixed(format::format().json()))
                .finish(),
        ),
        (Format::Json, _) => Box::new(builder.json().finish()),
        (Format::Pretty, Stderr::Journal) => Box::new(
            builder
                .event_format(Prefixed(format::format().without_time().with_level(false)))
                .finish(),
        ),
        (Format::Pretty, _) => Box::new(builder.finish()),
    }
}

/// `text` (an error the command prints itself, outside the log) as it should reach stderr:
/// each line prefixed `<3>` when stderr is the journal, so it is filed as an error.
pub fn error_text(text: &str) -> String {
    match Stderr::detect() {
        Stderr::Journal => prefixed(priority(Level::ERROR), text),
        Stderr::Terminal | Stderr::Other => text.to_owned(),
    }
}

/// Each line of `text` behind `<priority>`, so that continuation lines (an error's causes, a
/// value with a newline) are filed at the same priority as the first.
fn prefixed(priority: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.lines() {
        let _ = writeln!(out, "<{priority}>{line}");
    }
    out.pop();
    out
}

/// An event format whose lines carry the event's syslog priority in front.
struct Prefixed<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writeln!(
            writer,
            "{}",
            prefixed(priority(*event.metadata().level()), &line)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }

    #[test]
    fn the_journal_counts_only_while_stderr_is_its_stream() {
        let classify = |value: Option<&str>, stderr, terminal| {
            Stderr::classify(value.map(OsStr::new), stderr, terminal)
        };
        assert_eq!(
            classify(Some("8:12345"), Some((8, 12345)), false),
            Stderr::Journal
        );
        assert_eq!(
            classify(Some("8:12345"), Some((8, 12345)), true),
            Stderr::Journal
        );
        // Inherited by a child whose stderr went elsewhere (a terminal, a file).
        assert_eq!(
            classify(Some("8:12345"), Some((8, 999)), true),
            Stderr::Terminal
        );
        assert_eq!(
            classify(Some("8:12345"), Some((9, 12345)), false),
            Stderr::Other
        );
        for bad in ["", "8", "8:", ":12345", "x:1", "8:12345:1"] {
            assert_eq!(classify(Some(bad), Some((8, 12345)), false), Stderr::Other);
        }
        assert_eq!(classify(None, Some((8, 12345)), false), Stderr::Other);
        assert_eq!(classify(None, None, true), Stderr::Terminal);
    }

    /// What a subscriber for the journal writes for `log`.
    fn journal_lines(format: Format, log: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Buffer {
            type Writer = Buffer;
            fn make_writer(&'a self) -> Buffer {
                self.clone()
            }
        }
        let buffer = Buffer::default();
        let filter = EnvFilter::new("trace");
        let subscriber = subscriber(format, filter, Stderr::Journal, false, buffer.clone());
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn in_the_journal_a_line_of_several_lines_keeps_its_priority_on_each() {
        let text = journal_lines(Format::Pretty, || {
            tracing::error!(error = %"cannot read\n  caused by: gone", "agent stopped");
            tracing::debug!("polled");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("<3>") && lines[0].contains("agent stopped"),
            "{text}"
        );
        assert_eq!(lines[1], "<3>  caused by: gone");
        assert!(
            lines[2].starts_with("<7>") && lines[2].ends_with("polled"),
            "{text}"
        );
        let json = journal_lines(Format::Json, || {
            tracing::warn!(revision.id = "v1", "refused")
        });
        let entry: serde_json::Value =
            serde_json::from_str(json.strip_prefix("<4>").expect("a prefix")).expect("JSON");
        assert_eq!(entry["level"], "WARN");
        assert_eq!(entry["fields"]["revision.id"], "v1");
    }

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(prefixed(3, "error: x"), "<3>error: x");
        assert_eq!(
            prefixed(3, "error: x\n  caused by: y\n"),
            "<3>error: x\n<3>  caused by: y"
        );
    }
}
