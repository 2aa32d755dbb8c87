//! The release cache under the data dir: verified bundles, content-addressed, each unpacked
//! once into a tree the deployment reads from.
//!
//! ```text
//! <data_dir>/releases/blobs/sha256-<hex>     a store bundle archive, checked against its digest
//! <data_dir>/releases/trees/<digest>/        the bundle's files (git-<commit> or sha256-<hex>)
//! <data_dir>/releases/tmp/                   downloads and exports in progress
//! ```
//! Everything lands through a rename from `tmp/` (same filesystem), so a name that exists is
//! complete.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Digest;

/// The release cache rooted at `<data_dir>/releases`.
#[derive(Debug, Clone)]
pub struct ReleaseCache {
    root: PathBuf,
}

impl ReleaseCache {
    /// The cache under `data_dir`; directories are created (mode 0700) on first use.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("releases"),
        }
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

    /// A fresh, unique path under `tmp/` for work in progress, and makes sure `blobs/`,
    /// `trees/` and `tmp/` exist.
    pub fn temp_path(&self, label: &str) -> io::Result<PathBuf> {
        for dir in ["blobs", "trees", "tmp"] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(self.root.join(dir))?;
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .root
            .join("tmp")
            .join(format!("{label}-{}-{n}", std::process::id())))
    }

    /// Removes what interrupted work left in `tmp/`.
    pub fn clear_temp(&self) -> io::Result<()> {
        match fs::remove_dir_all(self.root.join("tmp")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
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
    fn temp_paths_are_unique_and_inside_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ReleaseCache::new(dir.path());
        let (a, b) = (
            cache.temp_path("x").expect("a"),
            cache.temp_path("x").expect("b"),
        );
        assert_ne!(a, b);
        assert!(a.starts_with(dir.path().join("releases/tmp")));
        cache.clear_temp().expect("clear");
        assert!(!dir.path().join("releases/tmp").exists());
    }
}
