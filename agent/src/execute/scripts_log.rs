//! A deployment's `logs/scripts.log`: every line a hook script prints, stamped and tagged,
//! and the readers that turn a script's stdout and stderr into those lines.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use super::deployments_log::{DeploymentsLog, open_private};

/// The longest line kept as one log line; longer output is split into several lines.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The script's standard output.
    Stdout,
    /// The script's standard error.
    Stderr,
    /// shoal itself: script started, exited, timed out, warnings.
    Shoal,
}

impl Stream {
    /// The tag written between brackets in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Shoal => "shoal",
        }
    }
}

/// The most a deployment's `scripts.log` grows to from script output; past it only the end
/// of each script's output is kept (see [`HELD_BYTES`]).
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Past [`MAX_LOG_BYTES`], how much of the end of each script's output is held back and
/// written when the script ends, after one line saying how much was left out.
pub const HELD_BYTES: usize = 256 * 1024;

/// An append-only `scripts.log`, safe to write from several threads and tasks at once.
///
/// Each line reaches the file in one `write` on an unbuffered `O_APPEND` file, so `tail -f`
/// sees it at once and a crash of the agent loses nothing already logged. The log is bounded:
/// once script output has taken it past its cap, each script's lines are held in memory (the
/// last [`HELD_BYTES`] of them) and written, after a line saying how many were left out, when
/// shoal next writes a line of its own (the script's exit). A script that prints without end
/// keeps its beginning and its last lines, and the file stays append-only for readers that
/// follow it by offset.
#[derive(Debug)]
pub struct ScriptsLog {
    path: PathBuf,
    cap: u64,
    held_cap: usize,
    inner: Mutex<Inner>,
    /// The deployment root's deployments log and this deployment's id, when it has one.
    deployments: Option<Deployments>,
}

#[derive(Debug)]
struct Deployments {
    log: Arc<DeploymentsLog>,
    id: String,
    /// The event whose `LifecycleEvent` line was written last.
    event: Mutex<Option<String>>,
    /// Whether a failed write was already reported (once is enough).
    failed: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    file: File,
    /// The file's length.
    size: u64,
    /// Lines past the cap, oldest first, each a whole record with its newline.
    held: VecDeque<String>,
    held_bytes: usize,
    /// Lines (and their bytes) held and then pushed out by later ones.
    dropped: u64,
    dropped_bytes: u64,
}

impl ScriptsLog {
    /// Opens (or creates, with its parent directories) the log at `path` for appending.
    ///
    /// Hook output may hold secrets: the log is 0600 and its directory 0700, whatever the
    /// modes above them (an operator may have opened the data dir) or the umask, and a log
    /// made by an older agent is closed up when it is opened again.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        Self::with_cap(path, MAX_LOG_BYTES, HELD_BYTES)
    }

    /// [`open`](Self::open) with another cap and held tail (tests use small ones).
    pub(crate) fn with_cap(
        path: impl Into<PathBuf>,
        cap: u64,
        held_cap: usize,
    ) -> io::Result<Self> {
        let path = path.into();
        let file = open_private(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            cap,
            held_cap,
            inner: Mutex::new(Inner {
                file,
                size,
                held: VecDeque::new(),
                held_bytes: 0,
                dropped: 0,
                dropped_bytes: 0,
            }),
            deployments: None,
        })
    }

    /// Also copies script output to the deployment root's deployments log, as deployment
    /// `id` (see [`DeploymentsLog`]).
    pub fn with_deployments_log(mut self, log: Arc<DeploymentsLog>, id: &str) -> Self {
        self.deployments = Some(Deployments {
            log,
            id: id.to_owned(),
            event: Mutex::new(None),
            failed: AtomicBool::new(false),
        });
        self
    }

    /// A script of `event` at `location` starts: the deployments log gets the agent's
    /// `LifecycleEvent - <event>` (once an event) and `Script - <location>` lines.
    pub fn script_started(&self, event: &str, location: &str) {
        let Some(deployments) = &self.deployments else {
            return;
        };
        let mut last = deployments
            .event
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut messages = Vec::with_capacity(2);
        if last.as_deref() != Some(event) {
            messages.push(format!("LifecycleEvent - {event}"));
            *last = Some(event.to_owned());
        }
        messages.push(format!("Script - {location}"));
        deployments.append(&messages);
    }

    /// The file this log appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` as `<UTC time> [<event>] [<location>] [<stream>] <text>`.
    ///
    /// A newline inside `text` starts a new log line with the same tags. Script output past
    /// the cap is held (see the type); a line of shoal's own first writes what is held.
    pub fn line(&self, event: &str, location: &str, stream: Stream, text: &str) -> io::Result<()> {
        let stamp = now_utc();
        let text = text.strip_suffix('\n').unwrap_or(text);
        let record = |part: &str| {
            format!(
                "{stamp} [{event}] [{location}] [{}] {part}\n",
                stream.as_str()
            )
        };
        let records: Vec<String> = text.split('\n').map(record).collect();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if stream == Stream::Shoal {
            self.write_held(&mut inner, &stamp, event, location)?;
            return inner.write(&records.concat());
        }
        if let Some(deployments) = &self.deployments {
            let tag = stream.as_str();
            let lines: Vec<String> = text
                .split('\n')
                .map(|part| format!("[{tag}]{part}"))
                .collect();
            deployments.append(&lines);
        }
        let len: usize = records.iter().map(String::len).sum();
        if inner.held.is_empty() && inner.size + len as u64 <= self.cap {
            return inner.write(&records.concat());
        }
        for record in records {
            inner.hold(record, self.held_cap);
        }
        Ok(())
    }

    /// Writes the lines held past the cap, after one saying how many were left out.
    fn write_held(
        &self,
        inner: &mut Inner,
        stamp: &str,
        event: &str,
        location: &str,
    ) -> io::Result<()> {
        if inner.held.is_empty() {
            return Ok(());
        }
        let mut out = format!(
            "{stamp} [{event}] [{location}] [shoal] this deployment's log passed its {} MiB cap: \
             {} lines ({} bytes) of output were left out; the last {} lines follow\n",
            self.cap / (1024 * 1024),
            inner.dropped,
            inner.dropped_bytes,
            inner.held.len(),
        );
        out.extend(inner.held.drain(..));
        inner.held_bytes = 0;
        inner.dropped = 0;
        inner.dropped_bytes = 0;
        inner.write(&out)
    }
}

impl Deployments {
    /// Appends, reporting the first failure only: the deployments log is a copy, and a
    /// deployment does not stop for it.
    fn append<S: AsRef<str>>(&self, messages: &[S]) {
        if let Err(error) = self.log.append(&self.id, messages)
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(path = %self.log.path().display(), %error, "could not write the deployments log");
        }
    }
}

impl Drop for ScriptsLog {
    /// Writes what is still held (a script whose end was not logged).
    fn drop(&mut self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = inner.held.back() {
            let (event, location) = tags(last);
            let _ = self.write_held(&mut inner, &now_utc(), &event, &location);
        }
    }
}

/// The event and location of a record written by [`ScriptsLog::line`].
fn tags(record: &str) -> (String, String) {
    let mut fields = record
        .splitn(4, " [")
        .skip(1)
        .map(|f| f.trim_end_matches(']'));
    let event = fields.next().unwrap_or("-").to_owned();
    let location = fields.next().unwrap_or("-").to_owned();
    (event, location)
}

impl Inner {
    fn write(&mut self, records: &str) -> io::Result<()> {
        self.file.write_all(records.as_bytes())?;
        self.size += records.len() as u64;
        Ok(())
    }

    fn hold(&mut self, record: String, held_cap: usize) {
        self.held_bytes += record.len();
        self.held.push_back(record);
        while self.held_bytes > held_cap
            && let Some(out) = self.held.pop_front()
        {
            self.held_bytes -= out.len();
            self.dropped += 1;
            self.dropped_bytes += out.len() as u64;
        }
    }
}

/// Reads the last `max_lines` lines of the log at `path`, oldest first, without reading the
/// whole file.
pub fn read_tail(path: &Path, max_lines: usize) -> io::Result<Vec<String>> {
    const CHUNK: u64 = 8 * 1024;
    let mut file = File::open(path)?;
    let mut start = file.seek(SeekFrom::End(0))?;
    let mut tail = Vec::new();
    // One newline more than wanted proves the first kept line is whole.
    while start > 0 && tail.iter().filter(|&&b| b == b'\n').count() <= max_lines {
        let len = CHUNK.min(start);
        start -= len;
        let mut chunk = vec![0; len as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
    }
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(max_lines);
    Ok(lines[skip..].iter().map(|line| line.to_string()).collect())
}

fn now_utc() -> String {
    let ms = crate::clock::now_ms();
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    shoal_shared::time::format_utc(secs, u32::try_from(ms % 1000).unwrap_or(0))
}

/// Starts one task per stream that reads it line by line and sends `(stream, line)` on the
/// returned channel, which closes once both streams reach end of file.
///
/// When the receiver is dropped the tasks keep reading and discard what they read, so a
/// background process still writing to the pipe is neither blocked nor killed by `SIGPIPE`.
pub(crate) fn capture<O, E>(stdout: O, stderr: E) -> mpsc::Receiver<(Stream, String)>
where
    O: AsyncRead + Unpin + Send + 'static,
    E: AsyncRead + Unpin + Send + 'static,
{
    let (lines_tx, lines_rx) = mpsc::channel(256);
    tokio::spawn(pump(
        LineReader::new(stdout),
        Stream::Stdout,
        lines_tx.clone(),
    ));
    tokio::spawn(pump(LineReader::new(stderr), Stream::Stderr, lines_tx));
    lines_rx
}

async fn pump<R: AsyncRead + Unpin>(
    mut reader: LineReader<R>,
    stream: Stream,
    lines_tx: mpsc::Sender<(Stream, String)>,
) {
    let mut lines_tx = Some(lines_tx);
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(stream = stream.as_str(), %error, "script output unreadable");
                return;
            }
        };
        if let Some(tx) = &lines_tx {
            let text = String::from_utf8_lossy(&line).into_owned();
            if tx.send((stream, text)).await.is_err() {
                lines_tx = None;
            }
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`], without the line ending.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    pending: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(MAX_LINE_BYTES, inner),
            pending: Vec::new(),
        }
    }

    /// The next line, `None` at end of input. A last line without a newline is still a line.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok((!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending)));
            }
            let room = MAX_LINE_BYTES - self.pending.len();
            if let Some(end) = buf.iter().position(|&b| b == b'\n')
                && end <= room
            {
                self.pending.extend_from_slice(&buf[..end]);
                self.inner.consume(end + 1);
                let mut line = std::mem::take(&mut self.pending);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            let take = buf.len().min(room);
            self.pending.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            if self.pending.len() >= MAX_LINE_BYTES {
                let rest = self.pending.split_off(utf8_cut(&self.pending));
                return Ok(Some(std::mem::replace(&mut self.pending, rest)));
            }
        }
    }
}

/// Where to cut `bytes` so that a UTF-8 character split across the end moves to the next
/// piece; `bytes.len()` when the end is not inside a character.
fn utf8_cut(bytes: &[u8]) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    let trailing = bytes
        .iter()
        .rev()
        .take(3)
        .take_while(|&&b| is_continuation(b))
        .count();
    let Some(lead_at) = bytes.len().checked_sub(trailing + 1) else {
        return bytes.len();
    };
    let width = match bytes[lead_at] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return bytes.len(),
    };
    if trailing + 1 < width && lead_at > 0 {
        lead_at
    } else {
        bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn lines_of(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .expect("log readable")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Splits a log line into its timestamp and the rest.
    fn split_stamp(line: &str) -> (&str, &str) {
        line.split_once(' ').expect("a space after the timestamp")
    }

    #[test]
    fn a_line_carries_time_event_location_and_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/scripts.log");
        let log = ScriptsLog::open(&path).expect("open creates parent dirs");
        log.line("AfterInstall", "scripts/a.sh", Stream::Stdout, "hello")
            .expect("write");
        log.line("AfterInstall", "scripts/a.sh", Stream::Stderr, "oops")
            .expect("write");

        let lines = lines_of(&path);
        assert_eq!(lines.len(), 2);
        let (stamp, rest) = split_stamp(&lines[0]);
        assert_eq!(rest, "[AfterInstall] [scripts/a.sh] [stdout] hello");
        assert_eq!(stamp.len(), "2026-01-01T00:00:00.000Z".len(), "{stamp}");
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{stamp}");
        assert_eq!(&stamp[10..11], "T");
        assert_eq!(
            split_stamp(&lines[1]).1,
            "[AfterInstall] [scripts/a.sh] [stderr] oops"
        );
    }

    #[test]
    fn the_log_is_private_to_the_agent_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let path = logs.join("scripts.log");
        let mode = |path: &Path| fs::metadata(path).expect("stat").permissions().mode() & 0o7777;
        drop(ScriptsLog::open(&path).expect("open"));
        assert_eq!((mode(&logs), mode(&path)), (0o700, 0o600));
        // A log an older agent left readable is closed up when opened again.
        fs::set_permissions(&logs, Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        drop(ScriptsLog::open(&path).expect("reopen"));
        assert_eq!((mode(&logs), mode(&path)), (0o700, 0o600));
    }

    #[test]
    fn reopening_appends_and_newlines_start_new_tagged_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scripts.log");
        ScriptsLog::open(&path)
            .expect("open")
            .line("Start", "s.sh", Stream::Shoal, "first\nsecond\n")
            .expect("write");
        ScriptsLog::open(&path)
            .expect("reopen")
            .line("Start", "s.sh", Stream::Stdout, "")
            .expect("write");

        let rests: Vec<String> = lines_of(&path)
            .iter()
            .map(|line| split_stamp(line).1.to_string())
            .collect();
        assert_eq!(
            rests,
            [
                "[Start] [s.sh] [shoal] first",
                "[Start] [s.sh] [shoal] second",
                "[Start] [s.sh] [stdout] ",
            ]
        );
    }

    #[test]
    fn concurrent_writers_never_interleave_within_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scripts.log");
        let log = ScriptsLog::open(&path).expect("open");
        let long = "x".repeat(10_000);
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let (log, long) = (&log, &long);
                scope.spawn(move || {
                    for n in 0..100 {
                        let text = format!("w{writer} n{n} {long}");
                        log.line("E", "s.sh", Stream::Stdout, &text).expect("write");
                    }
                });
            }
        });

        let lines = lines_of(&path);
        assert_eq!(lines.len(), 800);
        for line in &lines {
            assert!(line.contains("[E] [s.sh] [stdout] w"), "{line:.80}");
            assert!(line.ends_with(&long), "torn line: {line:.80}");
        }
    }

    #[test]
    fn read_tail_returns_the_last_lines_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scripts.log");
        let log = ScriptsLog::open(&path).expect("open");
        for n in 0..2000 {
            log.line("E", "s.sh", Stream::Stdout, &format!("line {n}"))
                .expect("write");
        }

        let tail = read_tail(&path, 3).expect("tail");
        let texts: Vec<&str> = tail.iter().map(|line| split_stamp(line).1).collect();
        assert_eq!(
            texts,
            [
                "[E] [s.sh] [stdout] line 1997",
                "[E] [s.sh] [stdout] line 1998",
                "[E] [s.sh] [stdout] line 1999",
            ]
        );
        assert_eq!(read_tail(&path, 5000).expect("tail").len(), 2000);
        assert!(read_tail(&path, 0).expect("tail").is_empty());
    }

    #[test]
    fn read_tail_of_an_empty_log_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scripts.log");
        ScriptsLog::open(&path).expect("open");
        assert!(read_tail(&path, 10).expect("tail").is_empty());
    }

    async fn all_lines(input: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = LineReader::new(input);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await.expect("read") {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn line_reader_strips_endings_and_keeps_a_last_partial_line() {
        let lines = all_lines(b"one\r\ntwo\n\nlast").await;
        assert_eq!(lines, [&b"one"[..], b"two", b"", b"last"]);
        assert!(all_lines(b"").await.is_empty());
    }

    #[tokio::test]
    async fn line_reader_splits_long_lines_without_losing_bytes() {
        let mut input = vec![b'a'; MAX_LINE_BYTES - 1];
        input.extend_from_slice("é".as_bytes()); // straddles the 64 KiB boundary
        input.extend_from_slice(&[b'b'; 10]);
        input.push(b'\n');

        let lines = all_lines(&input).await;
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].len(),
            MAX_LINE_BYTES - 1,
            "cut before the split character"
        );
        assert!(std::str::from_utf8(&lines[0]).is_ok());
        assert_eq!(lines[1], "ébbbbbbbbbb".as_bytes());
    }

    #[tokio::test]
    async fn line_reader_splits_a_long_line_that_arrives_in_pieces() {
        use tokio::io::AsyncReadExt;
        let first = vec![b'a'; 60_000];
        let mut second = vec![b'b'; 10_000];
        second.push(b'\n');
        let mut reader = LineReader::new(AsyncReadExt::chain(first.as_slice(), second.as_slice()));

        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await.expect("read") {
            lines.push(line);
        }

        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(lines.concat(), [first, second[..10_000].to_vec()].concat());
    }

    #[test]
    fn utf8_cut_moves_only_incomplete_characters() {
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut("aé".as_bytes()), 3);
        assert_eq!(utf8_cut(&"aé".as_bytes()[..2]), 1);
        assert_eq!(utf8_cut(&"a€".as_bytes()[..3]), 1);
        assert_eq!(utf8_cut(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(utf8_cut(b"a\xff"), 2, "invalid bytes are not held back");
        assert_eq!(utf8_cut(b"\xe2\x82"), 2, "never cut to an empty piece");
    }

    #[tokio::test]
    async fn capture_tags_both_streams_and_closes_at_end_of_input() {
        let mut lines_rx = capture(&b"out 1\nout 2\n"[..], &b"err \xff\n"[..]);
        let mut got = Vec::new();
        while let Some(line) = lines_rx.recv().await {
            got.push(line);
        }
        got.sort_by_key(|(stream, _)| stream.as_str());
        assert_eq!(
            got,
            [
                (Stream::Stderr, "err \u{fffd}".to_string()),
                (Stream::Stdout, "out 1".to_string()),
                (Stream::Stdout, "out 2".to_string()),
            ]
        );
    }

    #[test]
    fn past_the_cap_a_script_keeps_its_beginning_and_its_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/scripts.log");
        let log = ScriptsLog::with_cap(&path, 4096, 1024).expect("open");
        log.line("Install", "a.sh", Stream::Shoal, "script started: a.sh")
            .expect("line");
        for n in 0..1000 {
            log.line("Install", "a.sh", Stream::Stdout, &format!("line {n}"))
                .expect("line");
        }
        let before_exit = fs::metadata(&path).expect("stat").len();
        assert!(before_exit <= 4096, "grew to {before_exit} past the cap");
        log.line(
            "Install",
            "a.sh",
            Stream::Shoal,
            "script exited with code 0",
        )
        .expect("line");
        let lines = lines_of(&path);
        let texts: Vec<&str> = lines.iter().map(|l| split_stamp(l).1).collect();
        assert_eq!(texts[0], "[Install] [a.sh] [shoal] script started: a.sh");
        assert_eq!(texts[1], "[Install] [a.sh] [stdout] line 0");
        let notice = texts
            .iter()
            .position(|t| t.contains("passed its"))
            .expect("a line saying what was left out");
        let kept_head = notice - 1;
        let kept_tail = texts.len() - notice - 2;
        assert!(
            texts[notice].contains(&format!("{} lines (", 1000 - kept_head - kept_tail)),
            "{}",
            texts[notice]
        );
        assert_eq!(texts[texts.len() - 2], "[Install] [a.sh] [stdout] line 999");
        assert_eq!(
            texts[texts.len() - 1],
            "[Install] [a.sh] [shoal] script exited with code 0"
        );
        let size = fs::metadata(&path).expect("stat").len();
        assert!(size <= 4096 + 1024 + 256, "{size} bytes");
    }

    #[test]
    fn held_lines_are_written_when_the_log_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scripts.log");
        let log = ScriptsLog::with_cap(&path, 100, 1024).expect("open");
        for n in 0..10 {
            log.line("Install", "b.sh", Stream::Stderr, &format!("err {n}"))
                .expect("line");
        }
        drop(log);
        let lines = lines_of(&path);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("[Install] [b.sh] [shoal] this deployment's log passed"))
        );
        assert!(
            lines
                .last()
                .expect("lines")
                .ends_with("[Install] [b.sh] [stderr] err 9")
        );
    }
}
