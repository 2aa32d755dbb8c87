//! What a group's channel remembers across restarts: the anti-rollback floor (the highest
//! version verified) and the identity of every release name seen, so a tag or release that
//! changes under the same name is caught. Kept in `<data_dir>/channels/<group>.json`, written
//! durably (temp file, fsync, rename, fsync of the directory).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_shared::release::Version;

use super::Refusal;
use crate::execute::layout::write_durably;

/// The persisted state of one group's channel.
#[derive(Debug)]
pub struct ChannelState {
    path: PathBuf,
    data: Data,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    /// The highest version verified; nothing at or below it is installed by pulling.
    floor: Option<String>,
    /// Release name → identity first seen (git tag object id, or sha256 of `release.yaml`).
    seen: BTreeMap<String, String>,
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

    /// Loads the state at `path`; a missing file is a fresh state (no floor).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let data = match fs::read(path) {
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
        Ok(Self {
            path: path.to_path_buf(),
            data,
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

    /// Raises the floor to `version` (never lowers it) and saves; true when it moved.
    pub fn raise_floor(&mut self, version: &Version) -> Result<bool, StateError> {
        if self.check_floor(version).is_err() {
            return Ok(false);
        }
        self.data.floor = Some(version.name().to_owned());
        self.save()?;
        Ok(true)
    }

    /// Whether release `name` was seen before, in this run or an earlier one.
    pub fn has_seen(&self, name: &str) -> bool {
        self.data.seen.contains_key(name)
    }

    /// Records the identity of release `name` the first time it is seen and saves; a later
    /// sighting with a different identity is refused, for good.
    pub fn check_seen(
        &mut self,
        name: &str,
        identity: &str,
        moved: impl FnOnce(String) -> Refusal,
    ) -> Result<Result<(), Refusal>, StateError> {
        match self.data.seen.get(name) {
            Some(was) if was == identity => Ok(Ok(())),
            Some(was) => Ok(Err(moved(was.clone()))),
            None => {
                self.data.seen.insert(name.to_owned(), identity.to_owned());
                self.save()?;
                Ok(Ok(()))
            }
        }
    }

    /// Writes the state durably: a crash leaves the old file or the new one, never half.
    pub fn save(&self) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(&self.data).unwrap_or_default();
        write_durably(&self.path, &json).map_err(|source| StateError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })
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
        assert!(state.raise_floor(&v("v1.2.0")).expect("raise"));
        assert!(!state.raise_floor(&v("v1.1.0")).expect("no lower"));
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
        assert!(state.check_seen("v1", "aaa", moved).expect("save").is_ok());
        let mut state = ChannelState::load(&path).expect("reload");
        assert!(state.check_seen("v1", "aaa", moved).expect("same").is_ok());
        let err = state
            .check_seen("v1", "bbb", moved)
            .expect("io")
            .expect_err("moved");
        assert_eq!(err.kind(), "moved_tag");
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
