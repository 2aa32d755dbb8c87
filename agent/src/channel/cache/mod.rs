//! The release cache under the data dir: verified bundles, content-addressed, each unpacked
//! once into a tree the deployment reads from; bounded by [`ReleaseCache::clean`], which
//! removes what no group sharing the cache can still need.
//!
//! ```text
//! <data_dir>/releases/blobs/sha256-<hex>     a store bundle archive, until its tree is unpacked
//! <data_dir>/releases/trees/<digest>/        the bundle's files (git-<commit> or sha256-<hex>)
//! <data_dir>/releases/tmp/                   downloads, exports and unpacks in progress
//! <data_dir>/releases/trash/                 trees being removed
//! <data_dir>/releases/recent.json            the releases each group fetched last
//! ```
//! Everything lands through a rename from `tmp/` and leaves through a rename into `trash/`
//! (same filesystem), so a name under `blobs/` or `trees/` that exists is complete. Work in
//! `tmp/` carries the name of the agent process doing it: whatever another process left there
//! was cut short by a crash and goes at the next clean, as does everything in `trash/`.

mod clean;
mod holds;
mod incoming;

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

pub use clean::Cleaned;
use holds::Holds;
pub use incoming::Incoming;

use super::Digest;

/// The most releases a group may keep besides those in use (`keep_releases`).
pub const MAX_KEEP: usize = 100;

/// The release cache rooted at `<data_dir>/releases`. Clones share what the groups hold.
#[derive(Debug, Clone)]
pub struct ReleaseCache {
    root: PathBuf,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    holds: Mutex<Holds>,
    /// Held by the clean in progress: one at a time.
    cleaning: Mutex<()>,
    /// Store bundles stay after their tree is unpacked, while held: peers are served them.
    keep_blobs: std::sync::atomic::AtomicBool,
}

impl ReleaseCache {
    /// The cache under `data_dir`; directories are created (mode 0700) on first use.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("releases"),
            shared: Arc::default(),
        }
    }

    /// Names every group that shares the cache: from then on [`Self::clean`] removes no
    /// release until each of them has said what it holds ([`Self::holds`]). Without names,
    /// the groups that have said so are all there is (one group, or a test).
    pub fn shared_by<S: Into<String>>(self, groups: impl IntoIterator<Item = S>) -> Self {
        self.held().name_groups(groups.into_iter().map(Into::into));
        self
    }

    /// Keeps each store bundle while its release is held, after its tree is unpacked too, so
    /// it can be served to peers (twice the disk of those releases).
    pub fn keep_blobs(self) -> Self {
        self.shared.keep_blobs.store(true, Ordering::Relaxed);
        self
    }

    /// Whether store bundles stay while held ([`Self::keep_blobs`]).
    pub fn keeps_blobs(&self) -> bool {
        self.shared.keep_blobs.load(Ordering::Relaxed)
    }

    /// A group added by a reload shares the cache from now on.
    pub fn add_group(&self, group: &str) {
        self.held().name_groups(std::iter::once(group.to_owned()));
    }

    /// A group removed by a reload holds nothing any more.
    pub fn remove_group(&self, group: &str) {
        self.held().remove_group(group);
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a store bundle with this sha256 is kept.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(format!("sha256-{sha256}"))
    }

    /// Where the files of a release are kept.
    pub fn tree_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("trees").join(digest.file_name())
    }

    /// Whether the release's files are already in the cache.
    pub fn has_tree(&self, digest: &Digest) -> bool {
        self.tree_path(digest).is_dir()
    }

    /// A fresh, unique path under `tmp/` for work in progress, named after this process, and
    /// makes sure `blobs/`, `trees/` and `tmp/` exist.
    pub fn temp_path(&self, label: &str) -> io::Result<PathBuf> {
        for dir in ["blobs", "trees", "tmp"] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(self.root.join(dir))?;
        }
        Ok(self
            .root
            .join("tmp")
            .join(format!("{}-{label}-{}", session(), next_number())))
    }

    /// Fails with [`io::ErrorKind::StorageFull`], saying what is free, when the cache's
    /// filesystem has less than `bytes` free: see [`room_in`].
    pub fn room_for(&self, bytes: u64) -> io::Result<()> {
        room_in(&self.root, bytes, "the bundle")
    }

    /// `group` is about to fetch `digest` into the cache: no clean removes it until the
    /// group next says what it holds.
    pub fn fetching(&self, group: &str, digest: &Digest) {
        self.held().fetching(group, digest);
    }

    /// `group` has `digest` in the cache now: it becomes the group's most recent release
    /// (kept while it is among the group's `keep` most recent).
    pub fn fetched(&self, group: &str, digest: &Digest, keep: usize) {
        let root = self.root.clone();
        self.held().fetched(&root, group, digest, keep);
    }

    /// What `group` holds: the releases it uses (what runs, the last known good, the run in
    /// flight, the target, the release queued) and how many of those it fetched last to keep
    /// besides. Replaces what it said before, and what it was fetching.
    pub fn holds(&self, group: &str, in_use: impl IntoIterator<Item = Digest>, keep: usize) {
        self.held().holds(group, in_use.into_iter().collect(), keep);
    }

    /// Removes the releases no group holds, what a crash left half done, and store bundles
    /// whose tree is unpacked. Blocking; errors on single entries are logged and skipped.
    pub fn clean(&self) -> io::Result<Cleaned> {
        clean::clean(self)
    }

    fn held(&self) -> MutexGuard<'_, Holds> {
        self.shared
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Fails with [`io::ErrorKind::StorageFull`], saying what is free, when the filesystem of
/// `dir` has less than `bytes` free for files of ordinary users: what root may use beyond that
/// is the system's reserve, and the agent's downloads do not take it. `what` names what the
/// bytes are. A `dir` not made yet is measured at its nearest parent that is.
pub fn room_in(dir: &Path, bytes: u64, what: &str) -> io::Result<()> {
    let made = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let stat = nix::sys::statvfs::statvfs(made)?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    if free >= bytes {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::StorageFull,
        format!(
            "only {} is free there, and {what} takes {}",
            megabytes(free),
            megabytes(bytes)
        ),
    ))
}

/// `bytes` in decimal megabytes, as `df -H` counts them.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// What names this process's work in `tmp/` and `trash/`: its pid and a random number, so a
/// later process that happens to get the same pid does not take a dead one's work for its own.
fn session() -> &'static str {
    static SESSION: OnceLock<String> = OnceLock::new();
    SESSION.get_or_init(|| {
        let mut random = [0u8; 8];
        if getrandom::fill(&mut random).is_err() {
            // Unique enough without it: a clash only delays the removal of a leftover.
            random = u64::from(std::process::id()).to_le_bytes();
        }
        format!("{}.{:016x}", std::process::id(), u64::from_le_bytes(random))
    })
}

fn next_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_content_addressed() {
        let cache = ReleaseCache::new(Path::new("/var/lib/shoal"));
        assert_eq!(
            cache.tree_path(&Digest::Commit("abc".into())),
            Path::new("/var/lib/shoal/releases/trees/git-abc")
        );
        assert_eq!(
            cache.blob_path("0f"),
            Path::new("/var/lib/shoal/releases/blobs/sha256-0f")
        );
    }

    #[test]
    fn room_is_measured_where_a_folder_will_be_and_refused_past_what_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let later = dir.path().join("not/made/yet");
        room_in(&later, 1, "a byte").expect("a byte fits");
        let err = room_in(&later, u64::MAX, "everything").expect_err("too much");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(
            err.to_string()
                .ends_with(" MB is free there, and everything takes 18446744073709.6 MB"),
            "{err}"
        );
    }

    #[test]
    fn temp_paths_are_unique_inside_the_cache_and_name_this_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ReleaseCache::new(dir.path());
        let (a, b) = (
            cache.temp_path("x").expect("a"),
            cache.temp_path("x").expect("b"),
        );
        assert_ne!(a, b);
        assert!(a.starts_with(dir.path().join("releases/tmp")));
        let name = a.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.starts_with(&format!("{}-x-", session())), "{name}");
    }
}
