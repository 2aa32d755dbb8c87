//! What a store channel remembers beside the group's [`ChannelState`]: the version names it
//! has dealt with (so a new one at or below the floor is reported once, and old ones never),
//! and the manifests it verified at or above the floor, with their ETags, so the first poll
//! after a restart can re-check them with a conditional GET. Kept in
//! `<data_dir>/channels/store/<group>.json`, written durably.
//!
//! [`ChannelState`]: crate::verify::state::ChannelState

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_shared::release::Version;
use shoal_shared::release::version::above_floor;

use super::StoreError;
use crate::execute::layout::write_durably;

/// The record file of one group's store channel.
#[derive(Debug)]
pub(super) struct Record {
    path: PathBuf,
    data: Data,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    /// Version names settled: verified, passed over by a newer release, or reported below the floor.
    known: BTreeSet<String>,
    /// Verified releases at or above the floor, by version name.
    manifests: BTreeMap<String, Recorded>,
}

/// A verified release as it was fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Recorded {
    /// The ETag of `release.yaml` when it verified.
    pub etag: Option<String>,
    /// The exact text of `release.yaml`.
    pub manifest: String,
    /// The exact text of `release.yaml.sig`.
    pub signature: String,
    /// The ETag of the bundle (for `BUNDLE_ETAG`).
    pub bundle_etag: Option<String>,
    /// The bundle object's version in a versioned bucket (for `BUNDLE_VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
}

impl Record {
    /// Where the record of `group` lives under `data_dir`.
    pub fn path_for(data_dir: &Path, group: &str) -> PathBuf {
        data_dir
            .join("channels")
            .join("store")
            .join(format!("{group}.json"))
    }

    /// Loads the record; a missing file is an empty record.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let data = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
                action: "read the store channel record",
                path: path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{e}; remove the file to forget which store versions were seen"),
                ),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(StoreError::io("read", path)(e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            data,
        })
    }

    /// Whether `name` was settled before.
    pub fn is_known(&self, name: &str) -> bool {
        self.data.known.contains(name) || self.data.manifests.contains_key(name)
    }

    /// Marks `name` settled; true if it was not.
    pub fn mark_known(&mut self, name: &str) -> bool {
        self.data.known.insert(name.to_owned())
    }

    /// The verified release recorded for `name`.
    pub fn manifest(&self, name: &str) -> Option<&Recorded> {
        self.data.manifests.get(name)
    }

    /// Records a verified release.
    pub fn set_manifest(&mut self, name: &str, recorded: Recorded) {
        self.data.known.insert(name.to_owned());
        self.data.manifests.insert(name.to_owned(), recorded);
    }

    /// Forgets the names the store no longer lists; true if there were any.
    pub fn forget_unlisted(&mut self, listed: &BTreeSet<&str>) -> bool {
        let before = self.data.known.len() + self.data.manifests.len();
        self.data
            .known
            .retain(|name| listed.contains(name.as_str()));
        self.data
            .manifests
            .retain(|name, _| listed.contains(name.as_str()));
        before != self.data.known.len() + self.data.manifests.len()
    }

    /// Forgets the manifests below `floor`: they are never re-checked.
    pub fn prune_below(&mut self, floor: &Version) {
        self.data
            .manifests
            .retain(|name, _| Version::parse(name).is_ok_and(|v| !above_floor(floor, Some(&v))));
    }

    /// Writes the record durably: a crash leaves the old file or the new one, never half.
    pub fn save(&self) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(&self.data).unwrap_or_default();
        write_durably(&self.path, &json).map_err(StoreError::io("write", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Version {
        Version::parse(name).expect(name)
    }

    fn recorded(etag: &str) -> Recorded {
        Recorded {
            etag: Some(etag.to_owned()),
            manifest: "version: v1\n".to_owned(),
            signature: "sig".to_owned(),
            bundle_etag: None,
            bundle_version: None,
        }
    }

    #[test]
    fn survives_a_reload_and_prunes_below_the_floor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Record::path_for(dir.path(), "web");
        let mut record = Record::load(&path).expect("fresh");
        assert!(record.mark_known("v0.9.0"));
        record.set_manifest("v1.0.0", recorded("\"a\""));
        record.set_manifest("v1.1.0", recorded("\"b\""));
        record.prune_below(&v("v1.1.0"));
        record.save().expect("save");
        let record = Record::load(&path).expect("reload");
        assert!(record.is_known("v0.9.0") && record.is_known("v1.0.0"));
        assert_eq!(record.manifest("v1.0.0"), None);
        assert_eq!(record.manifest("v1.1.0"), Some(&recorded("\"b\"")));
    }

    #[test]
    fn names_the_store_no_longer_lists_are_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut record = Record::load(&Record::path_for(dir.path(), "web")).expect("fresh");
        record.mark_known("v1.0.0");
        record.set_manifest("v2.0.0", recorded("\"a\""));
        let listed = BTreeSet::from(["v2.0.0"]);
        assert!(record.forget_unlisted(&listed));
        assert!(!record.is_known("v1.0.0"));
        assert_eq!(record.manifest("v2.0.0"), Some(&recorded("\"a\"")));
        assert!(!record.forget_unlisted(&listed), "nothing more to forget");
    }

    #[test]
    fn a_corrupt_record_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.json");
        fs::write(&path, "not json").expect("write");
        let err = Record::load(&path).expect_err("corrupt");
        let text = format!("{err}: {}", std::error::Error::source(&err).expect("cause"));
        assert!(
            text.contains("web.json") && text.contains("remove the file"),
            "{text}"
        );
    }
}
