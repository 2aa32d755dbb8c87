//! Writing regular files: create them without following links, fill them, set mode and time.
//! Small files go to a worker thread while the archive is read sequentially.

use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::SystemTime;

use nix::unistd::{Gid, Uid, fchown};

use super::error::BundleError;

/// Mode, modification time and owner of an entry, as the bundle declares them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub mtime: Option<SystemTime>,
    /// Who owns a regular file; `None` leaves it the unpacker's. Directories are always the
    /// unpacker's.
    pub owner: Option<Owner>,
}

/// A file's owner and group, as numbers on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Where a regular file's bytes come from.
pub(super) enum Data {
    /// Already read from the archive.
    Bytes(Vec<u8>),
    /// `len` bytes at `offset` of an uncompressed archive, read by the writer.
    Range {
        src: Arc<ArchiveFile>,
        offset: u64,
        len: u64,
    },
    /// A file of a directory bundle, at most `len` bytes of it.
    Copy { src: PathBuf, len: u64 },
}

/// An open archive and its path, for errors about reading it.
pub(super) struct ArchiveFile {
    pub file: File,
    pub path: PathBuf,
}

/// One file to write.
pub(super) struct Job {
    pub path: PathBuf,
    pub meta: Meta,
    pub data: Data,
}

/// Writes files, on worker threads when it has any, and reports the first failure. A
/// directory's files go to one worker while they come one after another: workers creating
/// files in the same directory wait on its lock (and, on ext4, on each other's journal
/// handles).
pub(super) struct Writer {
    /// One queue per worker; none without workers.
    job_txs: Vec<SyncSender<Job>>,
    /// The worker taking the current directory's files, and that directory.
    route: usize,
    routed_dir: PathBuf,
    done_rx: Receiver<Result<u64, BundleError>>,
    workers: Vec<JoinHandle<()>>,
    abort: Arc<AtomicBool>,
    in_flight: usize,
    umask: u32,
    bytes: u64,
    /// Copy buffer for writing on the calling thread.
    buf: Vec<u8>,
}

/// Jobs queued ahead of the workers. With `Bytes` jobs of at most [`SMALL_FILE`] bytes, the
/// queue holds at most 16 MiB.
const QUEUE: usize = 64;

/// Buffer for copying a byte range of the archive into a file.
const COPY_BUFFER: usize = 256 << 10;

/// Largest file read into memory and handed to a worker; larger ones are streamed by the caller.
pub(super) const SMALL_FILE: u64 = 256 << 10;

impl Writer {
    /// Starts `workers` writer threads; with none (or if none can be started) files are
    /// written on the calling thread.
    pub fn new(workers: usize) -> Self {
        let umask = current_umask();
        let (done_tx, done_rx) = mpsc::channel();
        let abort = Arc::new(AtomicBool::new(false));
        let mut job_txs = Vec::new();
        let workers = (0..workers)
            .filter_map(|_| {
                let (job_tx, job_rx) = mpsc::sync_channel::<Job>(QUEUE / workers.max(1));
                let done_tx = done_tx.clone();
                let abort = Arc::clone(&abort);
                let spawned = std::thread::Builder::new()
                    .name("bundle-writer".into())
                    .spawn(move || {
                        let mut buf = Vec::new();
                        loop {
                            let job = job_rx.recv();
                            let Ok(job) = job else { return };
                            let result = if abort.load(Ordering::Relaxed) {
                                Ok(0)
                            } else {
                                write_file(job, umask, &mut buf)
                            };
                            if done_tx.send(result).is_err() {
                                return;
                            }
                        }
                    });
                let worker = spawned.ok()?;
                job_txs.push(job_tx);
                Some(worker)
            })
            .collect::<Vec<_>>();
        Self {
            job_txs,
            route: 0,
            routed_dir: PathBuf::new(),
            done_rx,
            workers,
            abort,
            in_flight: 0,
            umask,
            bytes: 0,
            buf: Vec::new(),
        }
    }

    /// Writes the file now or queues it; a failure may surface on a later call.
    pub fn submit(&mut self, job: Job) -> Result<(), BundleError> {
        if self.job_txs.is_empty() {
            self.bytes += write_file(job, self.umask, &mut self.buf)?;
            return Ok(());
        }
        let dir = job.path.parent().unwrap_or(Path::new(""));
        if dir != self.routed_dir {
            self.route = (self.route + 1) % self.job_txs.len();
            dir.clone_into(&mut self.routed_dir);
        }
        if self.job_txs[self.route].send(job).is_err() {
            // Every worker has gone, which only a panic does.
            self.drain()?;
            return Err(stopped());
        }
        self.in_flight += 1;
        while let Ok(result) = self.done_rx.try_recv() {
            self.in_flight -= 1;
            self.bytes += result?;
        }
        Ok(())
    }

    /// Waits for every queued file to be written.
    pub fn drain(&mut self) -> Result<(), BundleError> {
        while self.in_flight > 0 {
            let Ok(result) = self.done_rx.recv() else {
                return Err(stopped());
            };
            self.in_flight -= 1;
            self.bytes += result?;
        }
        Ok(())
    }

    /// Bytes written so far by finished jobs.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn umask(&self) -> u32 {
        self.umask
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        self.job_txs.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn stopped() -> BundleError {
    BundleError::Io {
        op: "write files to",
        path: PathBuf::from("the staging directory"),
        source: io::Error::other("the file writer thread stopped"),
    }
}

/// Writes one file; `buf` is a copy buffer kept across calls.
fn write_file(job: Job, umask: u32, buf: &mut Vec<u8>) -> Result<u64, BundleError> {
    let Job { path, meta, data } = job;
    let mut file = create(&path, meta.mode)?;
    let write_err = || BundleError::io("write", &path);
    let written = match data {
        Data::Bytes(bytes) => {
            file.write_all(&bytes).map_err(write_err())?;
            bytes.len() as u64
        }
        Data::Range { src, offset, len } => {
            copy_range(&src, offset, len, &mut file, buf).map_err(|e| match e {
                CopyError::Read(e) => BundleError::archive(&src.path)(e),
                CopyError::Write(e) => write_err()(e),
            })?
        }
        Data::Copy { src, len } => OpenOptions::new()
            .read(true)
            // Non-blocking, so a file swapped for a fifo meanwhile cannot hang the copy.
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&src)
            .and_then(|src| io::copy(&mut src.take(len), &mut file))
            .map_err(write_err())?,
    };
    finish(&file, &path, meta, umask)?;
    Ok(written)
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `len` bytes at `offset` of `src` into `dst`. A short source is an error: the
/// archive ends inside this file.
fn copy_range(
    src: &ArchiveFile,
    mut offset: u64,
    len: u64,
    dst: &mut File,
    buf: &mut Vec<u8>,
) -> Result<u64, CopyError> {
    if buf.is_empty() {
        buf.resize(COPY_BUFFER, 0);
    }
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = match src.file.read_at(&mut buf[..want], offset) {
            Ok(0) => {
                let eof = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside a file",
                );
                return Err(CopyError::Read(eof));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        offset += n as u64;
        left -= n as u64;
    }
    Ok(len)
}

/// Creates a new file; fails rather than follow or replace anything already at `path`.
pub(super) fn create(path: &Path, mode: u32) -> Result<File, BundleError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(BundleError::io("create", path))
}

/// Sets the owner, the exact mode (the umask, writing, and a change of owner may have cleared
/// bits) and the mtime.
pub(super) fn finish(file: &File, path: &Path, meta: Meta, umask: u32) -> Result<(), BundleError> {
    if let Some(Owner { uid, gid }) = meta.owner {
        fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| BundleError::io("set the owner of", path)(e.into()))?;
    }
    if meta.mode & 0o7000 != 0 || meta.mode & umask != 0 {
        file.set_permissions(Permissions::from_mode(meta.mode & 0o7777))
            .map_err(BundleError::io("set the mode of", path))?;
    }
    if let Some(mtime) = meta.mtime {
        file.set_times(FileTimes::new().set_modified(mtime))
            .map_err(BundleError::io("set the mtime of", path))?;
    }
    Ok(())
}

/// The process umask, read without changing it (other threads may be creating files).
/// Unknown reads as "every bit masked", which only costs an extra chmod per file.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}
