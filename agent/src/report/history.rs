//! Each group's history as this host saw it (`GET /v1/history`, `shoal history`, the page):
//! kept in memory for the endpoint and on disk, one file a group, so a restart keeps both the
//! history and the last look it is told from.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use shoal_shared::history::{History, Seen};

/// A group's history and the last look at its rollout, as one file holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// The last look.
    pub seen: Seen,
    /// The history.
    pub history: History,
}

impl Book {
    /// The file of `group` under `dir`.
    pub fn path(dir: &Path, group: &str) -> PathBuf {
        dir.join(format!("{group}.json"))
    }

    /// The book of `group` under `dir`: an empty one when there is no file, and when the file
    /// does not read (it is started again), with why.
    pub fn load(dir: &Path, group: &str) -> (Book, Option<String>) {
        let path = Self::path(dir, group);
        let fresh = || Book {
            seen: Seen::default(),
            history: History::new(group),
        };
        let broken =
            |e: &dyn std::fmt::Display| (fresh(), Some(format!("{}: {e}", path.display())));
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(book) => (book, None),
                Err(e) => broken(&e),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (fresh(), None),
            Err(e) => broken(&e),
        }
    }

    /// Writes the book of `group` under `dir`: a new file beside the old one, renamed over it,
    /// so a crash leaves one whole file.
    pub fn save(&self, dir: &Path, group: &str) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path(dir, group);
        let new = dir.join(format!(".{group}.json.new"));
        let text = serde_json::to_vec(self).map_err(io::Error::other)?;
        std::fs::write(&new, text)?;
        std::fs::rename(&new, &path)
    }
}

/// Every group's history, for the endpoint. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Histories {
    inner: Arc<Mutex<BTreeMap<String, History>>>,
}

impl Histories {
    /// Sets the history of its group.
    pub fn set(&self, history: History) {
        self.lock().insert(history.group.clone(), history);
    }

    /// Forgets `group` (a reload removed it).
    pub fn remove(&self, group: &str) {
        self.lock().remove(group);
    }

    /// The history of `group`, or every group's in name order with `None`.
    pub fn get(&self, group: Option<&str>) -> Vec<History> {
        let all = self.lock();
        match group {
            Some(group) => all.get(group).cloned().into_iter().collect(),
            None => all.values().cloned().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, History>> {
        // Plain data: a panic mid-update leaves nothing unsafe.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_is_saved_whole_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (fresh, why) = Book::load(dir.path(), "web");
        assert_eq!((fresh.history.group.as_str(), why), ("web", None));
        let mut book = fresh;
        book.seen.deployment = Some("d-1".into());
        book.save(dir.path(), "web").expect("save");
        assert_eq!(Book::load(dir.path(), "web"), (book, None));
        std::fs::write(Book::path(dir.path(), "web"), "{").expect("write");
        let (again, why) = Book::load(dir.path(), "web");
        assert!(again.history.entries.is_empty());
        assert!(why.is_some_and(|w| w.contains("web.json")));
    }
}
