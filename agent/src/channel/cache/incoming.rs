//! A blob arriving into the cache, from the origin or a peer: written under `tmp/` and renamed
//! under `blobs/` only once it is complete and checked, so a name under `blobs/` is always a
//! whole, verified bundle. Dropped before that, the partial file is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::ReleaseCache;

/// A blob being written.
#[derive(Debug)]
pub struct Incoming {
    file: File,
    temp: PathBuf,
    blob: PathBuf,
    landed: bool,
}

impl Incoming {
    /// Starts the blob with `sha256`, of `size` bytes (mode 0600, a fresh file under `tmp/`);
    /// fails with [`io::ErrorKind::StorageFull`] before a byte is written when the cache has
    /// no room for it.
    pub fn create(cache: &ReleaseCache, sha256: &str, size: u64) -> io::Result<Self> {
        let temp = cache.temp_path("download")?;
        cache.room_for(size)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        Ok(Self {
            file,
            temp,
            blob: cache.blob_path(sha256),
            landed: false,
        })
    }

    /// Where it is written until it lands.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Appends `chunk`.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)
    }

    /// Syncs it and moves it under `blobs/` (synced too); returns where it is. Call only once
    /// the bytes checked out.
    pub fn land(mut self) -> Result<PathBuf, (&'static str, PathBuf, io::Error)> {
        self.file
            .sync_all()
            .map_err(|e| ("sync", self.temp.clone(), e))?;
        fs::rename(&self.temp, &self.blob)
            .map_err(|e| ("move into place", self.blob.clone(), e))?;
        self.landed = true;
        if let Some(dir) = self.blob.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ("sync the directory", dir.to_path_buf(), e))?;
        }
        Ok(self.blob.clone())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.landed
            && let Err(e) = fs::remove_file(&self.temp)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.temp.display(), error = %e, "cannot remove partial download");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_landed_blob_is_under_blobs_and_nothing_else_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ReleaseCache::new(dir.path());
        let mut dropped = Incoming::create(&cache, &"ab".repeat(32), 4).expect("create");
        dropped.write(b"half").expect("write");
        let temp = dropped.temp().to_path_buf();
        drop(dropped);
        assert!(!temp.exists());
        assert!(!cache.blob_path(&"ab".repeat(32)).exists());

        let mut kept = Incoming::create(&cache, &"cd".repeat(32), 5).expect("create");
        kept.write(b"whole").expect("write");
        let blob = kept.land().expect("land");
        assert_eq!(fs::read(&blob).expect("read"), b"whole");
        assert_eq!(blob, cache.blob_path(&"cd".repeat(32)));
        assert_eq!(
            fs::read_dir(dir.path().join("releases/tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }

    #[test]
    fn a_blob_larger_than_the_free_space_is_refused_before_a_byte_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ReleaseCache::new(dir.path());
        let err = Incoming::create(&cache, &"ef".repeat(32), u64::MAX).expect_err("no room");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        let said = err.to_string();
        assert!(
            said.starts_with("only ")
                && said.ends_with(" MB is free there, and the bundle takes 18446744073709.6 MB"),
            "{said}"
        );
        assert_eq!(
            fs::read_dir(dir.path().join("releases/tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }
}
