//! The store channel: signed releases in an object store (S3, a local directory, Google Cloud
//! Storage or Azure Blob Storage), laid out as
//! `<prefix>/<version>/release.yaml`, `release.yaml.sig` and the bundle the manifest names.
//! [`StoreChannel::poll`] finds and verifies new releases (an idle poll is one LIST and
//! downloads nothing); [`StoreChannel::materialize`] brings a verified bundle into the release
//! cache; [`publish`] is the other side, used by `shoal release`.

mod check;
mod error;
mod fetch;
mod listing;
mod location;
mod poll;
pub mod publish;
mod record;
mod tolerant;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path as ObjPath;
use shoal_shared::release::manifest::BundleRef;

pub use check::{CheckedRelease, check_release};
pub use error::StoreError;
pub use fetch::CheckedBundle;
pub use location::{Scheme, StoreLocation};
pub use publish::{Publication, publish};

use super::cache::ReleaseCache;
use super::{Digest, Release};
use crate::bundle::{self, APPSPEC_NAMES, BundleError, Limits, Owners};
use crate::verify::Refusal;
use record::Record;
use tolerant::Unreadable;

/// The manifest's name in a version directory.
pub const MANIFEST_NAME: &str = "release.yaml";
/// The signature's name in a version directory.
pub const SIGNATURE_NAME: &str = "release.yaml.sig";
/// How often a remote store is polled unless configured.
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);

/// A store release as a host that verified it offers it to its peers: the manifest and
/// signature exactly as the origin served them, and what the origin said of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offered {
    /// The exact text of `release.yaml`.
    pub manifest: String,
    /// The exact text of `release.yaml.sig`.
    pub signature: String,
    /// The bundle's ETag at the origin (for `BUNDLE_ETAG`).
    #[serde(default)]
    pub bundle_etag: Option<String>,
    /// The bundle's version id in a versioned bucket (for `BUNDLE_VERSION`).
    #[serde(default)]
    pub bundle_version: Option<String>,
}

/// What `group`'s store channel verified of `version` on this host (its record under
/// `data_dir`), to offer a peer; `None` when it has no such verified release.
pub fn offered(data_dir: &Path, group: &str, version: &str) -> Option<Offered> {
    let record = Record::load(&Record::path_for(data_dir, group)).ok()?;
    let recorded = record.manifest(version)?;
    Some(Offered {
        manifest: recorded.manifest.clone(),
        signature: recorded.signature.clone(),
        bundle_etag: recorded.bundle_etag.clone(),
        bundle_version: recorded.bundle_version.clone(),
    })
}

/// Where a group's store channel is and how to reach it (`store:` in the agent config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSource {
    /// `s3://bucket/prefix`, `file:///path`, `gs://bucket/prefix` or `az://container/prefix`.
    pub url: String,
    /// Time between polls of a remote store.
    pub poll: Duration,
    /// An S3-compatible endpoint instead of AWS (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// The S3 region (default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1).
    pub region: Option<String>,
    /// Allow plain http endpoints (tests, local servers).
    pub allow_http: bool,
}

impl StoreSource {
    /// A source for `url` with the defaults: poll every 30 s, AWS endpoints, https only.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            poll: DEFAULT_POLL,
            endpoint: None,
            region: None,
            allow_http: false,
        }
    }
}

/// One group's store channel.
pub struct StoreChannel {
    store: Arc<dyn ObjectStore>,
    location: StoreLocation,
    record: Record,
    limits: Limits,
    /// Versions this instance settled (verified, refused, passed over): not fetched again.
    settled: BTreeSet<String>,
    /// Non-semver names already reported.
    ignored: BTreeSet<String>,
    /// Where the store's LIST replies leave the names object_store cannot read.
    unreadable: Unreadable,
    /// Unreadable names already reported.
    unreadable_seen: BTreeSet<String>,
    /// Whether the first poll (which re-checks recorded manifests) has run.
    rechecked: bool,
    /// Verified releases by version name: where the bundle is and what it must be.
    verified: BTreeMap<String, (ObjPath, BundleRef)>,
    /// The group's application: only releases whose `release.yaml` names it are taken.
    application: String,
}

impl StoreChannel {
    /// Opens the channel of `group` at `source`, with settings and credentials from `env` (the
    /// `AWS_*`, `GOOGLE_*` or `AZURE_*` variables: pass `std::env::vars()` in the daemon and
    /// CLI; nothing else reads the process environment). Only releases bound to `application`
    /// (the group's) verify.
    pub fn open(
        source: &StoreSource,
        env: &[(String, String)],
        data_dir: &Path,
        group: &str,
        application: &str,
    ) -> Result<Self, StoreError> {
        let location = StoreLocation::parse(&source.url)?;
        let unreadable = Unreadable::default();
        let store = location.open_tolerant(source, env, &unreadable)?;
        let mut channel = Self::with_store(store, location, data_dir, group, application)?;
        channel.unreadable = unreadable;
        Ok(channel)
    }

    /// A channel over a store the caller built (an in-memory store in tests).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        location: StoreLocation,
        data_dir: &Path,
        group: &str,
        application: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            application: application.to_owned(),
            store,
            location,
            record: Record::load(&Record::path_for(data_dir, group))?,
            limits: Limits::default(),
            settled: BTreeSet::new(),
            ignored: BTreeSet::new(),
            unreadable: Unreadable::default(),
            unreadable_seen: BTreeSet::new(),
            rechecked: false,
            verified: BTreeMap::new(),
        })
    }

    /// Bounds on what a bundle may unpack to (default: [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the channel is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// What to watch with `notify`: the directory of a `file://` store (it must exist to be
    /// watched); `None` for remote stores, which are polled.
    pub fn watch_paths(&self) -> Option<Vec<PathBuf>> {
        self.location.local_dir().map(|dir| vec![dir])
    }

    /// The bundle a release verified by this channel pins (its sha256 and size), to fetch it
    /// from elsewhere than the origin into the cache's blob store.
    pub fn bundle_of(&self, release: &Release) -> Option<&BundleRef> {
        let (_, bundle) = self.verified.get(release.version.name())?;
        (release.digest == Digest::Sha256(bundle.sha256.clone())).then_some(bundle)
    }

    /// Brings the bundle of `release` (verified by this channel's [`poll`](Self::poll)) into
    /// `cache` and returns the directory of its files. A cached tree is returned as is;
    /// otherwise the bundle is downloaded (checked against the manifest's size and sha256 as
    /// it streams) and unpacked with the hostile-archive refusals. A refused bundle leaves
    /// nothing behind, and nothing outside the cache is ever written.
    pub async fn materialize(
        &self,
        release: &Release,
        cache: &ReleaseCache,
    ) -> Result<PathBuf, StoreError> {
        let version = release.version.name();
        let not_verified = || StoreError::NotVerified {
            version: version.to_owned(),
        };
        let (path, bundle) = self.verified.get(version).ok_or_else(not_verified)?;
        if release.digest != Digest::Sha256(bundle.sha256.clone()) {
            return Err(not_verified());
        }
        let tree = cache.tree_path(&release.digest);
        if tree.is_dir() {
            return Ok(tree);
        }
        let blob = cache.blob_path(&bundle.sha256);
        if !blob.is_file() {
            fetch::download_blob(
                self.store.as_ref(),
                &self.location,
                version,
                path,
                bundle,
                cache,
            )
            .await?;
            tracing::info!(revision.id = %version, bundle.size = bundle.size, "bundle downloaded");
        }
        let limits = self.limits.clone();
        let staged = cache
            .temp_path("tree")
            .map_err(StoreError::io("create the release cache in", cache.root()))?;
        let (blob_task, staged_task, tree_task) = (blob.clone(), staged.clone(), tree.clone());
        let unpacked = tokio::task::spawn_blocking(move || {
            bundle::unpack(
                &blob_task,
                &staged_task,
                &APPSPEC_NAMES,
                &limits,
                Owners::Recorded,
            )
            .map(|_| move_into_place(&staged_task, &tree_task))
        })
        .await
        .map_err(|e| StoreError::io("unpack", &blob)(std::io::Error::other(e)))?;
        match unpacked {
            Ok(moved) => moved
                .map(|()| tree.clone())
                .map_err(StoreError::io("move the unpacked bundle to", &tree)),
            Err(BundleError::Io { op, path, source }) => Err(StoreError::Io {
                action: op,
                path,
                source,
            }),
            Err(refused) => {
                if let Err(e) = std::fs::remove_file(&blob) {
                    tracing::warn!(path = %blob.display(), error = %e, "cannot remove refused bundle");
                }
                Err(StoreError::Refused {
                    version: version.to_owned(),
                    refusal: Refusal::Bundle(refused),
                })
            }
        }
    }
}

/// Renames the tree unpacked at `staged` (under the cache's `tmp/`) to `tree`; when another
/// channel of the same release put it there first, the staged copy is removed instead.
fn move_into_place(staged: &Path, tree: &Path) -> std::io::Result<()> {
    if let Err(e) = std::fs::rename(staged, tree) {
        std::fs::remove_dir_all(staged)?;
        if !tree.is_dir() {
            return Err(e);
        }
    }
    Ok(())
}
