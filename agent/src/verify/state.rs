//! What a group's channel remembers across restarts: the anti-rollback floor (the highest
//! version verified) and the identity of every release name that verified, with the agent's
//! clock when it did, so a tag or release that changes under the same name is caught and a
//! release keeps its verdict after its key expires; and the operator's rollback order in force
//! (`shoal rollback`), which sends the group back below the floor until a newer release comes.
//! Kept in `<data_dir>/channels/<group>.json`,
//! written durably (temp file, fsync, rename, fsync of the directory), at most once per poll.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_shared::gossip::Rollback;
use shoal_shared::release::Version;
use shoal_shared::release::rollback::RollbackOrder;

use super::{KeyTime, Refusal};
use crate::execute::layout::write_durably;

/// How many verified names `seen` keeps. Only a trusted key adds a name (one per real
/// release), so this is reached only by a long history; past it the lowest versions are
/// forgotten, never the floor. A forgotten name is far below the floor, where a pull refuses
/// it anyway: it is then reported as below the floor instead of as moved.
pub const MAX_SEEN: usize = 4096;

/// The persisted state of one group's channel.
#[derive(Debug)]
pub struct ChannelState {
    path: PathBuf,
    data: Data,
    /// Changed since the last write.
    dirty: bool,
    /// Writes of the file by this value, for tests and metrics.
    writes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    /// The highest version verified; nothing at or below it is installed by pulling.
    floor: Option<String>,
    /// Release name → identity of the release that verified under it (git tag object id, or
    /// sha256 of `release.yaml`). Names that never verified are not kept: they would pin a
    /// name for whoever pushed first, and cost a write each.
    seen: BTreeMap<String, String>,
    /// Release name → the agent's clock (Unix seconds) when it first verified. A name in
    /// `seen` without one was recorded by an older shoal, which judged keys at the signer's
    /// time; only the floor's such name is kept on load.
    #[serde(default)]
    verified_at: BTreeMap<String, i64>,
    /// The operator's rollback order this host took (checked when taken), while it is in
    /// force: its `from` is the floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollback: Option<Rollback>,
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An I/O error on the state file.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file exists but is not a state file; it is never silently reset, since that would
    /// drop the floor.
    #[error("{} is not a channel state file ({reason}); move it aside only if you mean to reset the anti-rollback floor", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

impl ChannelState {
    /// The state file of `group` under `data_dir`.
    pub fn path_for(data_dir: &Path, group: &str) -> PathBuf {
        data_dir.join("channels").join(format!("{group}.json"))
    }

    /// Loads the state at `path`; a missing file is a fresh state (no floor). Of the names an
    /// older shoal recorded (without a verification time), only the floor's is kept: the
    /// others may never have verified, and would pin their names.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let mut data: Data = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Data::default(),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if let Some(floor) = &data.floor
            && Version::parse(floor).is_err()
        {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("the floor `{floor}` is not a version"),
            });
        }
        if let Some(rollback) = &data.rollback
            && let Err(e) = RollbackOrder::parse(&rollback.order)
        {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("its rollback order does not read: {e}"),
            });
        }
        let Data {
            floor,
            seen,
            verified_at,
            ..
        } = &mut data;
        seen.retain(|name, _| verified_at.contains_key(name) || floor.as_deref() == Some(name));
        verified_at.retain(|name, _| seen.contains_key(name));
        Ok(Self {
            path: path.to_path_buf(),
            data,
            dirty: false,
            writes: 0,
        })
    }

    /// The anti-rollback floor.
    pub fn floor(&self) -> Option<Version> {
        self.data
            .floor
            .as_deref()
            .and_then(|f| Version::parse(f).ok())
    }

    /// Refuses `version` unless it is above the floor.
    pub fn check_floor(&self, version: &Version) -> Result<(), Refusal> {
        match self.floor() {
            Some(floor) if !shoal_shared::release::version::above_floor(version, Some(&floor)) => {
                Err(Refusal::BelowFloor {
                    version: version.name().to_owned(),
                    floor: floor.name().to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Raises the floor to `version` (never lowers it); true when it moved. Saved by
    /// [`Self::save_if_changed`].
    pub fn raise_floor(&mut self, version: &Version) -> bool {
        if self.check_floor(version).is_err() {
            return false;
        }
        self.data.floor = Some(version.name().to_owned());
        self.dirty = true;
        true
    }

    /// The rollback order in force, as taken, and what it says.
    pub fn rollback(&self) -> Option<(&Rollback, RollbackOrder)> {
        let taken = self.data.rollback.as_ref()?;
        RollbackOrder::parse(&taken.order)
            .ok()
            .map(|order| (taken, order))
    }

    /// Puts the rollback order `taken` (checked by the caller) in force. Saved by
    /// [`Self::save_if_changed`].
    pub fn take_rollback(&mut self, taken: Rollback) {
        self.data.rollback = Some(taken);
        self.dirty = true;
    }

    /// Ends the rollback order in force (a newer release came). Saved by
    /// [`Self::save_if_changed`].
    pub fn end_rollback(&mut self) {
        if self.data.rollback.take().is_some() {
            self.dirty = true;
        }
    }

    /// The identity recorded for release `name`, if it verified before.
    pub fn identity(&self, name: &str) -> Option<&str> {
        self.data.seen.get(name).map(String::as_str)
    }

    /// Refuses release `name` with `moved` if it verified before as another identity.
    pub fn check_identity(
        &self,
        name: &str,
        identity: &str,
        moved: impl FnOnce(String) -> Refusal,
    ) -> Result<(), Refusal> {
        match self.identity(name) {
            Some(was) if was != identity => Err(moved(was.to_owned())),
            _ => Ok(()),
        }
    }

    /// When the key of release `name` with `identity` is judged: when it first verified, if
    /// it did (it keeps its verdict), else `now` (the agent's clock at this poll).
    pub fn key_time(&self, name: &str, identity: &str, now: i64) -> KeyTime {
        if self.identity(name) != Some(identity) {
            return KeyTime::At(now);
        }
        match self.data.verified_at.get(name) {
            Some(&at) => KeyTime::At(at),
            None => KeyTime::Signed { otherwise: now },
        }
    }

    /// Records that release `name` verified as `identity` at `now`, unless it already did.
    /// Saved by [`Self::save_if_changed`].
    pub fn record_verified(&mut self, name: &str, identity: &str, now: i64) {
        if self.identity(name).is_some() {
            return;
        }
        self.data.seen.insert(name.to_owned(), identity.to_owned());
        self.data.verified_at.insert(name.to_owned(), now);
        self.dirty = true;
        self.bound();
    }

    /// Keeps `seen` within [`MAX_SEEN`], forgetting the lowest versions (never the floor).
    fn bound(&mut self) {
        let excess = self.data.seen.len().saturating_sub(MAX_SEEN);
        if excess == 0 {
            return;
        }
        let mut names: Vec<(Option<Version>, String)> = self
            .data
            .seen
            .keys()
            .filter(|name| self.data.floor.as_deref() != Some(name.as_str()))
            .map(|name| (Version::parse(name).ok(), name.clone()))
            .collect();
        names.sort();
        for (_, name) in names.into_iter().take(excess) {
            self.data.seen.remove(&name);
            self.data.verified_at.remove(&name);
        }
    }

    /// Writes the state if it changed since it was loaded or last written; true if it wrote.
    /// A channel calls this once at the end of a poll.
    pub fn save_if_changed(&mut self) -> Result<bool, StateError> {
        if !self.dirty {
            return Ok(false);
        }
        self.save()?;
        self.dirty = false;
        Ok(true)
    }

    /// How many times this value wrote the file.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Writes the state durably: a crash leaves the old file or the new one, never half.
    fn save(&mut self) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(&self.data).unwrap_or_default();
        write_durably(&self.path, &json).map_err(|source| StateError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })?;
        self.writes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Version {
        Version::parse(name).expect(name)
    }

    #[test]
    fn the_floor_survives_a_reload_and_only_rises() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ChannelState::path_for(dir.path(), "web");
        let mut state = ChannelState::load(&path).expect("fresh");
        assert_eq!(state.floor(), None);
        assert!(state.raise_floor(&v("v1.2.0")));
        assert!(!state.raise_floor(&v("v1.1.0")));
        assert!(state.save_if_changed().expect("save"));
        assert!(!state.save_if_changed().expect("nothing new"));
        assert_eq!(state.writes(), 1);
        let state = ChannelState::load(&path).expect("reload");
        assert_eq!(state.floor(), Some(v("v1.2.0")));
        let refusal = state
            .check_floor(&v("v1.2.0"))
            .expect_err("equal is refused");
        assert_eq!(refusal.kind(), "below_floor");
        assert!(state.check_floor(&v("v1.2.1")).is_ok());
    }

    #[test]
    fn a_name_that_changes_identity_is_refused_after_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ChannelState::path_for(dir.path(), "web");
        let moved = |was| Refusal::MovedTag {
            name: "v1".into(),
            was,
            now: "bbb".into(),
        };
        let mut state = ChannelState::load(&path).expect("fresh");
        assert_eq!(state.key_time("v1", "aaa", 10), KeyTime::At(10));
        state.record_verified("v1", "aaa", 10);
        state.save_if_changed().expect("save");
        let state = ChannelState::load(&path).expect("reload");
        assert!(state.check_identity("v1", "aaa", moved).is_ok());
        assert_eq!(state.key_time("v1", "aaa", 99), KeyTime::At(10));
        assert_eq!(state.key_time("v1", "bbb", 99), KeyTime::At(99));
        let err = state.check_identity("v1", "bbb", moved).expect_err("moved");
        assert_eq!(err.kind(), "moved_tag");
    }

    #[test]
    fn an_older_file_keeps_only_its_floor_judged_at_the_signers_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.json");
        let old = r#"{"floor": "v1.0.0", "seen": {"v1.0.0": "aaa", "v1.1.0": "squatter"}}"#;
        fs::write(&path, old).expect("write");
        let state = ChannelState::load(&path).expect("an older file loads");
        assert_eq!(state.identity("v1.0.0"), Some("aaa"));
        assert_eq!(
            state.identity("v1.1.0"),
            None,
            "a name that may never have verified"
        );
        assert_eq!(
            state.key_time("v1.0.0", "aaa", 99),
            KeyTime::Signed { otherwise: 99 }
        );
    }

    #[test]
    fn seen_is_bounded_and_keeps_the_floor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ChannelState::path_for(dir.path(), "web");
        let mut state = ChannelState::load(&path).expect("fresh");
        state.record_verified("v0.0.0", "floor", 1);
        state.raise_floor(&v("v0.0.0"));
        for n in 1..=MAX_SEEN + 10 {
            state.record_verified(&format!("v1.0.{n}"), "id", 1);
        }
        assert_eq!(state.data.seen.len(), MAX_SEEN);
        assert_eq!(state.identity("v0.0.0"), Some("floor"));
        assert_eq!(state.identity("v1.0.1"), None, "the lowest go first");
        assert!(state.identity(&format!("v1.0.{}", MAX_SEEN + 10)).is_some());
        assert_eq!(state.data.verified_at.len(), MAX_SEEN);
    }

    #[test]
    fn a_rollback_order_survives_a_reload_until_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ChannelState::path_for(dir.path(), "web");
        let order = RollbackOrder {
            group: "web".into(),
            to: "v1.0.0".into(),
            from: "v2.0.0".into(),
            issued: 1_796_652_000,
            by: "alice@web-1".into(),
        };
        let taken = Rollback {
            order: order.text(),
            signature: "sig".into(),
            signer: "ops@example.com".into(),
        };
        let mut state = ChannelState::load(&path).expect("fresh");
        state.take_rollback(taken.clone());
        assert!(state.save_if_changed().expect("save"));
        let mut state = ChannelState::load(&path).expect("reload");
        assert_eq!(state.rollback(), Some((&taken, order)));
        state.end_rollback();
        state.save_if_changed().expect("save");
        assert_eq!(ChannelState::load(&path).expect("reload").rollback(), None);
        // An order that does not read is no reason to forget the floor: the file is refused.
        fs::write(
            &path,
            r#"{"floor": "v2.0.0", "seen": {}, "rollback": {"order": "go back", "signature": ""}}"#,
        )
        .expect("write");
        let err = ChannelState::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("rollback order"), "{err}");
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.json");
        fs::write(&path, "{\"floor\": \"latest\"}").expect("write");
        let err = ChannelState::load(&path).expect_err("corrupt");
        assert!(
            err.to_string().contains("reset the anti-rollback floor"),
            "{err}"
        );
    }
}
