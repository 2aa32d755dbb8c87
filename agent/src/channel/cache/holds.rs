//! What each group sharing the release cache holds in it: the releases it uses (from its
//! journal and planner), the ones it is fetching, and the few it fetched last. The last are
//! kept across restarts in `recent.json`; losing that file only forgets which were recent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::super::Digest;

/// The releases each group fetched last, newest first, by cache file name.
type Recent = BTreeMap<String, Vec<String>>;

/// What the groups hold.
#[derive(Debug, Default)]
pub(super) struct Holds {
    groups: BTreeMap<String, Group>,
    /// Whether the groups were named up front: then a group that has not said what it uses
    /// yet holds back every removal.
    named: bool,
    /// Read from `recent.json` on first use.
    recent: Option<Recent>,
    /// `recent` changed since it was written.
    dirty: bool,
}

#[derive(Debug, Default)]
struct Group {
    /// What it uses, as it said at its last look; `None` before it said.
    in_use: Option<BTreeSet<Digest>>,
    /// What it started fetching since.
    fetching: BTreeSet<Digest>,
    /// How many of the releases it fetched last it keeps.
    keep: usize,
}

impl Holds {
    pub(super) fn name_groups(&mut self, names: impl Iterator<Item = String>) {
        for name in names {
            self.groups.entry(name).or_default();
        }
        self.named = true;
    }

    pub(super) fn remove_group(&mut self, group: &str) {
        self.groups.remove(group);
        if self.recent.as_mut().and_then(|r| r.remove(group)).is_some() {
            self.dirty = true;
        }
    }

    pub(super) fn fetching(&mut self, group: &str, digest: &Digest) {
        self.group(group).fetching.insert(digest.clone());
    }

    pub(super) fn fetched(&mut self, root: &Path, group: &str, digest: &Digest, keep: usize) {
        let name = digest.file_name();
        let list = self.recent(root).entry(group.to_owned()).or_default();
        if list.first() == Some(&name) && list.len() <= keep {
            return;
        }
        list.retain(|n| *n != name);
        list.insert(0, name);
        list.truncate(keep);
        self.dirty = true;
    }

    pub(super) fn holds(&mut self, group: &str, in_use: BTreeSet<Digest>, keep: usize) {
        let group = self.group(group);
        group.in_use = Some(in_use);
        group.fetching.clear();
        group.keep = keep;
    }

    /// The cache file names some group holds; `None` while a named group has not said what
    /// it uses (nothing may be removed then).
    pub(super) fn kept(&mut self, root: &Path) -> Option<BTreeSet<String>> {
        if self.named && self.groups.values().any(|g| g.in_use.is_none()) {
            return None;
        }
        let mut kept = BTreeSet::new();
        for group in self.groups.values() {
            let used = group.in_use.iter().flatten().chain(&group.fetching);
            kept.extend(used.map(Digest::file_name));
        }
        let keeps: Vec<(String, usize)> = self
            .groups
            .iter()
            .map(|(name, group)| (name.clone(), group.keep))
            .collect();
        let recent = self.recent(root);
        for (name, keep) in keeps {
            if let Some(list) = recent.get(&name) {
                kept.extend(list.iter().take(keep).cloned());
            }
        }
        Some(kept)
    }

    /// `recent.json` as it should be written, when it changed since it last was: without
    /// groups no longer named.
    pub(super) fn unsaved(&mut self, root: &Path) -> Option<(PathBuf, Vec<u8>)> {
        if self.named {
            let groups = &self.groups;
            let recent = self.recent.get_or_insert_with(|| load(root));
            let before = recent.len();
            recent.retain(|name, _| groups.contains_key(name));
            self.dirty |= recent.len() != before;
        }
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let recent = self.recent.as_ref()?;
        let json = serde_json::to_vec_pretty(recent).unwrap_or_default();
        Some((recent_path(root), json))
    }

    /// The write of what [`Self::unsaved`] gave failed: it is tried again at the next clean.
    pub(super) fn unsaved_again(&mut self) {
        self.dirty = true;
    }

    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_owned()).or_default()
    }

    fn recent(&mut self, root: &Path) -> &mut Recent {
        self.recent.get_or_insert_with(|| load(root))
    }
}

fn recent_path(root: &Path) -> PathBuf {
    root.join("recent.json")
}

/// `recent.json`; missing or unreadable, nothing is recent (names that are not cache entries
/// are dropped).
fn load(root: &Path) -> Recent {
    let path = recent_path(root);
    let mut recent: Recent = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "the list of recent releases cannot be read; starting a new one");
            Recent::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recent::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the list of recent releases cannot be read; starting a new one");
            Recent::new()
        }
    };
    for list in recent.values_mut() {
        list.retain(|name| Digest::from_file_name(name).is_some());
    }
    recent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(n: u8) -> Digest {
        Digest::Commit(format!("{n:02x}"))
    }

    fn names(digests: &[Digest]) -> BTreeSet<String> {
        digests.iter().map(Digest::file_name).collect()
    }

    #[test]
    fn a_named_group_that_has_not_said_holds_back_every_removal() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut holds = Holds::default();
        holds.name_groups(["web".to_owned(), "api".to_owned()].into_iter());
        holds.holds("web", BTreeSet::from([commit(1)]), 0);
        assert_eq!(holds.kept(root.path()), None);
        holds.holds("api", BTreeSet::from([commit(2)]), 0);
        assert_eq!(
            holds.kept(root.path()),
            Some(names(&[commit(1), commit(2)]))
        );
    }

    #[test]
    fn what_is_being_fetched_is_held_until_the_group_says_again() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut holds = Holds::default();
        holds.holds("web", BTreeSet::new(), 0);
        holds.fetching("web", &commit(3));
        assert_eq!(holds.kept(root.path()), Some(names(&[commit(3)])));
        holds.holds("web", BTreeSet::new(), 0);
        assert_eq!(holds.kept(root.path()), Some(BTreeSet::new()));
    }

    #[test]
    fn the_recent_list_survives_a_restart_and_drops_groups_no_longer_named() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut holds = Holds::default();
        for n in 1..=3 {
            holds.fetched(root.path(), "web", &commit(n), 2);
        }
        holds.fetched(root.path(), "old", &commit(9), 2);
        let (path, json) = holds.unsaved(root.path()).expect("changed");
        std::fs::write(path, json).expect("write");
        assert!(holds.unsaved(root.path()).is_none(), "written once");

        let mut restarted = Holds::default();
        restarted.name_groups(["web".to_owned()].into_iter());
        restarted.holds("web", BTreeSet::new(), 2);
        assert_eq!(
            restarted.kept(root.path()),
            Some(names(&[commit(3), commit(2)]))
        );
        let (_, json) = restarted.unsaved(root.path()).expect("old group dropped");
        assert!(!String::from_utf8_lossy(&json).contains("old"));
    }
}
