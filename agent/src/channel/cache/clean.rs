//! Removing what the release cache no longer needs so that a crash at any point leaves only
//! complete entries under release names: a tree is renamed into `trash/` (and the rename made
//! durable) before its files are removed; `trash/` and what dead processes left in `tmp/` go at
//! every clean. A bundle archive is removed in one step (an unlink).

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::TryLockError;

use tracing::warn;

use super::{ReleaseCache, next_number, session};
use crate::channel::Digest;
use crate::execute::layout::write_durably;

/// What one clean removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    /// Release trees no group holds.
    pub trees: usize,
    /// Store bundle archives no group holds, or whose tree is unpacked.
    pub blobs: usize,
    /// What work cut short left: partial downloads, exports and unpacks, trees half removed.
    pub leftovers: usize,
}

pub(super) fn clean(cache: &ReleaseCache) -> io::Result<Cleaned> {
    let _cleaning = match cache.shared.cleaning.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        // Another group is cleaning: it removes the same.
        Err(TryLockError::WouldBlock) => return Ok(Cleaned::default()),
    };
    let root = cache.root();
    let trash = root.join("trash");
    let mut cleaned = Cleaned::default();

    let ours = format!("{}-", session());
    for entry in entries(&root.join("tmp"))? {
        if !entry.name.starts_with(&ours) && remove(&entry.path) {
            cleaned.leftovers += 1;
        }
    }

    // Decided and moved away under the lock that `fetching` takes, so no group starts to
    // hold a release between the decision and the rename.
    let trees = root.join("trees");
    let mut trashed = BTreeSet::new();
    let unsaved = {
        let mut holds = cache.held();
        let kept = holds.kept(root);
        let unheld = |name: &str| kept.as_ref().is_some_and(|k| !k.contains(name));
        for entry in entries(&trees)? {
            // Not a release name: a `.partial` unpack left by an older agent.
            let release = Digest::from_file_name(&entry.name).is_some();
            if (!release || unheld(&entry.name))
                && let Some(moved) = to_trash(&entry, &trash)
            {
                trashed.insert(moved);
                if release {
                    cleaned.trees += 1;
                } else {
                    cleaned.leftovers += 1;
                }
            }
        }
        for entry in entries(&root.join("blobs"))? {
            let store_bundle =
                matches!(Digest::from_file_name(&entry.name), Some(Digest::Sha256(_)));
            let unpacked = trees.join(&entry.name).is_dir() && !cache.keeps_blobs();
            if (!store_bundle || unpacked || unheld(&entry.name)) && remove(&entry.path) {
                cleaned.blobs += 1;
            }
        }
        holds.unsaved(root)
    };
    if !trashed.is_empty() {
        File::open(&trees)?.sync_all()?;
    }
    if let Some((path, json)) = unsaved
        && let Err(e) = write_durably(&path, &json)
    {
        warn!(path = %path.display(), error = %e, "cannot write the list of recent releases");
        cache.held().unsaved_again();
    }

    for entry in entries(&trash)? {
        if remove(&entry.path) && !trashed.contains(&entry.path) {
            cleaned.leftovers += 1;
        }
    }
    Ok(cleaned)
}

struct Entry {
    name: String,
    path: PathBuf,
}

/// The entries of `dir` (none when it does not exist); names that are not UTF-8 are read
/// lossily, so they match nothing kept.
fn entries(dir: &Path) -> io::Result<Vec<Entry>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    read.map(|entry| {
        let entry = entry?;
        Ok(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            path: entry.path(),
        })
    })
    .collect()
}

/// Renames `entry` into `trash/` under a name no other entry has; `None` (logged) when it
/// cannot be moved, and it stays where it is, whole.
fn to_trash(entry: &Entry, trash: &Path) -> Option<PathBuf> {
    let moved = trash.join(format!("{}-{}-{}", entry.name, session(), next_number()));
    let result = DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(trash)
        .and_then(|()| fs::rename(&entry.path, &moved));
    match result {
        Ok(()) => Some(moved),
        Err(e) => {
            warn!(path = %entry.path.display(), error = %e, "cannot move a release out of the cache");
            None
        }
    }
}

/// Removes a file or a whole directory; `false` (logged) when it cannot.
fn remove(path: &Path) -> bool {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot remove from the release cache");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn sha(n: u8) -> Digest {
        Digest::Sha256(format!("{n:02x}").repeat(32))
    }

    fn commit(n: u8) -> Digest {
        Digest::Commit(format!("{n:02x}").repeat(20))
    }

    /// A cache with a complete tree (one file) for each of `digests`.
    fn cache_with(dir: &Path, digests: &[Digest]) -> ReleaseCache {
        let cache = ReleaseCache::new(dir);
        for digest in digests {
            let tree = cache.tree_path(digest);
            fs::create_dir_all(&tree).expect("tree");
            fs::write(tree.join("appspec.yml"), "version: 0.0\n").expect("file");
        }
        cache
    }

    fn blob(cache: &ReleaseCache, digest: &Digest) -> PathBuf {
        let Digest::Sha256(hex) = digest else {
            panic!("{digest:?}")
        };
        let path = cache.blob_path(hex);
        fs::create_dir_all(path.parent().expect("parent")).expect("blobs");
        fs::write(&path, "bundle").expect("blob");
        path
    }

    #[test]
    fn releases_no_group_holds_go_and_the_held_and_recent_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let all: Vec<Digest> = (1..=6).map(commit).collect();
        let cache = cache_with(dir.path(), &all);
        cache.fetched("web", &commit(1), 2);
        cache.fetched("web", &commit(2), 2);
        cache.fetched("web", &commit(3), 2);
        cache.fetching("api", &commit(6));
        cache.holds("web", [commit(4)], 2);

        let cleaned = cache.clean().expect("clean");
        let kept: Vec<bool> = all.iter().map(|d| cache.has_tree(d)).collect();
        // 1: recent but not among the last 2; 2, 3: the last 2; 4: in use; 5: nothing;
        // 6: being fetched by another group.
        assert_eq!(kept, [false, true, true, true, false, true]);
        assert_eq!(cleaned.trees, 2);
        assert!(
            !dir.path()
                .join("releases/trash")
                .read_dir()
                .expect("trash")
                .any(|_| true)
        );
    }

    #[test]
    fn nothing_is_removed_until_every_group_sharing_the_cache_has_said_what_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(dir.path(), &[commit(1)]).shared_by(["web", "api"]);
        cache.holds("web", [], 0);
        assert_eq!(cache.clean().expect("clean").trees, 0);
        assert!(cache.has_tree(&commit(1)));
        cache.holds("api", [], 0);
        assert_eq!(cache.clean().expect("clean").trees, 1);
        assert!(!cache.has_tree(&commit(1)));
    }

    #[test]
    fn a_store_bundle_goes_once_its_tree_is_unpacked_or_no_group_holds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(dir.path(), &[sha(1)]);
        let unpacked = blob(&cache, &sha(1));
        let downloaded = blob(&cache, &sha(2));
        let unheld = blob(&cache, &sha(3));
        cache.holds("api", [sha(1), sha(2)], 0);
        assert_eq!(cache.clean().expect("clean").blobs, 2);
        assert!(!unpacked.exists() && !unheld.exists());
        assert!(downloaded.is_file(), "held, not unpacked yet");
        assert!(cache.has_tree(&sha(1)));
    }

    #[test]
    fn a_cache_that_serves_peers_keeps_held_bundles_after_unpacking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(dir.path(), &[sha(1)]).keep_blobs();
        let unpacked = blob(&cache, &sha(1));
        let unheld = blob(&cache, &sha(3));
        cache.holds("api", [sha(1)], 0);
        assert_eq!(cache.clean().expect("clean").blobs, 1);
        assert!(unpacked.is_file(), "held: served to peers");
        assert!(!unheld.exists());
    }

    #[test]
    fn what_a_crash_left_half_done_goes_at_the_next_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(dir.path(), &[commit(1)]);
        let root = dir.path().join("releases");
        // Another (dead) agent process: a tree half removed, a partial download, an export and
        // an unpack cut short; and an unpack an older agent left beside the trees.
        let half_removed = root.join("trash/git-aa-99.1-3");
        fs::create_dir_all(half_removed.join("app")).expect("trash");
        fs::write(half_removed.join("app/left"), "x").expect("file");
        let tmp = root.join("tmp");
        fs::create_dir_all(tmp.join("99.0123-tree-2.partial/app")).expect("partial unpack");
        fs::write(tmp.join("99.0123-download-1"), "half a bundle").expect("download");
        fs::write(tmp.join("export-99-0"), "an older agent's tar").expect("export");
        let old_partial = root.join(format!("trees/{}.partial", commit(2).file_name()));
        fs::create_dir_all(&old_partial).expect("old partial");
        // This process's work in progress stays.
        let ours = cache.temp_path("download").expect("temp");
        fs::write(&ours, "downloading").expect("ours");

        let restarted = ReleaseCache::new(dir.path());
        restarted.holds("web", [commit(1)], 0);
        let cleaned = restarted.clean().expect("clean");
        assert_eq!(cleaned.leftovers, 5, "{cleaned:?}");
        assert!(!half_removed.exists() && !old_partial.exists());
        let left: Vec<_> = fs::read_dir(&tmp)
            .expect("tmp")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(left, [ours]);
        assert!(restarted.has_tree(&commit(1)));
    }

    #[test]
    fn a_tree_that_cannot_be_moved_out_of_the_cache_stays_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(dir.path(), &[commit(1)]);
        fs::write(dir.path().join("releases/trash"), "not a directory").expect("block");
        cache.holds("web", [], 0);
        // The clean fails or removes nothing; either way the tree is not removed in place.
        let cleaned = cache.clean();
        assert!(
            cleaned.as_ref().map_or(true, |c| c.trees == 0),
            "{cleaned:?}"
        );
        let tree = cache.tree_path(&commit(1));
        assert_eq!(
            fs::read_to_string(tree.join("appspec.yml")).expect("whole"),
            "version: 0.0\n"
        );
    }
}
