//! Publishing a release into a store (`shoal release`): refuse a version that exists, then
//! upload the bundle, `release.yaml` and `release.yaml.sig`, each with a create-only put, so
//! even a race with another publisher can never overwrite a release. The signature goes last:
//! a channel treats a version without it as an upload in progress.

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use shoal_shared::release::Version;

use super::listing;
use super::tolerant::Unreadable;
use super::{MANIFEST_NAME, SIGNATURE_NAME, StoreError, StoreLocation};

/// A signed release ready to upload.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The version directory.
    pub version: Version,
    /// The bundle's file name (`bundle.path` in the manifest).
    pub bundle_name: String,
    /// The bundle's bytes.
    pub bundle: Bytes,
    /// The exact text of `release.yaml`.
    pub manifest: String,
    /// The armored signature over `manifest`.
    pub signature: String,
}

/// Uploads `release` under `location`. A version already present (or the same semver under
/// another spelling, `v1.2.0` beside `1.2.0`) is refused before anything is written.
pub async fn publish(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    release: &Publication,
) -> Result<(), StoreError> {
    refuse_existing(store, location, &release.version).await?;
    let name = release.version.name();
    let uploads = [
        (release.bundle_name.as_str(), release.bundle.clone()),
        (MANIFEST_NAME, Bytes::from(release.manifest.clone())),
        (SIGNATURE_NAME, Bytes::from(release.signature.clone())),
    ];
    for (file, bytes) in uploads {
        let path = location.object(name, file);
        put_new(store, location, name, &path, bytes).await?;
        tracing::info!(object = %location.describe(&path), "uploaded");
    }
    Ok(())
}

/// Refuses `version` when the store has it, or the same semver under another spelling:
/// [`StoreError::AlreadyExists`], or [`StoreError::Incomplete`] when the directory holds an
/// upload that never got its signature.
pub async fn refuse_existing(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &Version,
) -> Result<(), StoreError> {
    let Some(existing) = find_version(store, location, version).await? else {
        return Ok(());
    };
    let signature = location.object(&existing, SIGNATURE_NAME);
    let url = location.url().to_owned();
    match store.head(&signature).await {
        Ok(_) => Err(StoreError::AlreadyExists {
            version: existing,
            url,
        }),
        Err(object_store::Error::NotFound { .. }) => Err(StoreError::Incomplete {
            version: existing,
            url,
        }),
        Err(source) => Err(StoreError::Get {
            url: location.describe(&signature),
            source,
        }),
    }
}

/// The name of a version directory with the same semver precedence as `version`, if any
/// (one LIST request).
async fn find_version(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &Version,
) -> Result<Option<String>, StoreError> {
    let listing = listing::version_dirs(store, location, &Unreadable::default()).await?;
    Ok(listing.dirs.into_iter().find(|name| {
        *name == version.name()
            || Version::parse(name)
                .is_ok_and(|v| v.semver().cmp_precedence(version.semver()).is_eq())
    }))
}

async fn put_new(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &str,
    path: &ObjPath,
    bytes: Bytes,
) -> Result<(), StoreError> {
    let options = PutOptions::from(PutMode::Create);
    match store.put_opts(path, PutPayload::from(bytes), options).await {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Err(StoreError::AlreadyExists {
            version: version.to_owned(),
            url: location.url().to_owned(),
        }),
        Err(source) => Err(StoreError::Put {
            url: location.describe(path),
            source,
        }),
    }
}
