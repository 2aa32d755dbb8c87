//! Reading from the store: small objects (manifest, signature) with an optional conditional
//! GET, and the bundle streamed through sha256 with its size bounded by what the manifest pins,
//! so a store serving more than that is cut off instead of filling the disk.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore};
use sha2::{Digest as _, Sha256};
use shoal_shared::release::manifest::BundleRef;

use super::{StoreError, StoreLocation};
use crate::channel::cache::ReleaseCache;
use crate::verify::Refusal;

/// The largest `release.yaml` or `release.yaml.sig` read; both are a few hundred bytes.
pub(super) const SMALL_OBJECT_LIMIT: usize = 64 * 1024;

/// What a GET of a small object found.
#[derive(Debug)]
pub(super) enum Fetched {
    /// The object's bytes and ETag.
    Body { bytes: Bytes, etag: Option<String> },
    /// The object still has the ETag given (HTTP 304): no body was sent.
    NotModified,
    /// There is no such object.
    NotFound,
    /// The object is larger than [`SMALL_OBJECT_LIMIT`]; reading stopped there.
    TooLarge,
}

/// GETs a small object, with `If-None-Match: <etag>` when one is given.
pub(super) async fn get_small(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    path: &ObjPath,
    if_none_match: Option<&str>,
) -> Result<Fetched, StoreError> {
    let options = GetOptions::new().with_if_none_match(if_none_match);
    let get_error = |source| StoreError::Get {
        url: location.describe(path),
        source,
    };
    let result = match store.get_opts(path, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::NotFound),
        Err(object_store::Error::NotModified { .. }) => return Ok(Fetched::NotModified),
        Err(source) => return Err(get_error(source)),
    };
    let etag = result.meta.e_tag.clone();
    let mut stream = result.into_stream();
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(get_error)?;
        if body.len() + chunk.len() > SMALL_OBJECT_LIMIT {
            return Ok(Fetched::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body {
        bytes: body.freeze(),
        etag,
    })
}

/// A bundle that matched its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBundle {
    /// Bytes received.
    pub size: u64,
    /// The bundle's ETag as the store gave it.
    pub etag: Option<String>,
}

/// Streams the bundle at `path`, hashing and counting as it arrives, into `sink` if one is
/// given. More bytes than `bundle.size` stop the download at once ([`Refusal::SizeMismatch`]);
/// a short bundle or another digest is refused after the last byte.
pub(super) async fn stream_bundle(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &str,
    path: &ObjPath,
    bundle: &BundleRef,
    mut sink: Option<(&mut File, &Path)>,
) -> Result<CheckedBundle, StoreError> {
    let url = location.describe(path);
    let get_error = |source| StoreError::Get {
        url: url.clone(),
        source,
    };
    let refused = |refusal| StoreError::Refused {
        version: version.to_owned(),
        refusal,
    };
    let result = match store.get_opts(path, GetOptions::new()).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(StoreError::Missing { url: url.clone() });
        }
        Err(source) => return Err(get_error(source)),
    };
    let etag = result.meta.e_tag.clone();
    let mut stream = result.into_stream();
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(get_error)?;
        received = received.saturating_add(chunk.len() as u64);
        if received > bundle.size {
            // Dropping the stream closes the connection: nothing past this is downloaded.
            return Err(refused(Refusal::SizeMismatch {
                expected: bundle.size,
                actual: received,
            }));
        }
        hasher.update(&chunk);
        if let Some((file, file_path)) = sink.as_mut() {
            file.write_all(&chunk)
                .map_err(StoreError::io("write", *file_path))?;
        }
    }
    if received != bundle.size {
        return Err(refused(Refusal::SizeMismatch {
            expected: bundle.size,
            actual: received,
        }));
    }
    let actual = format!("{:x}", hasher.finalize());
    if actual != bundle.sha256 {
        return Err(refused(Refusal::DigestMismatch {
            expected: bundle.sha256.clone(),
            actual,
        }));
    }
    Ok(CheckedBundle {
        size: received,
        etag,
    })
}

/// Downloads a verified bundle into the cache's blob store (`blobs/sha256-<hex>`), through a
/// temporary file that is removed unless the bundle matched its manifest.
pub(super) async fn download_blob(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &str,
    path: &ObjPath,
    bundle: &BundleRef,
    cache: &ReleaseCache,
) -> Result<PathBuf, StoreError> {
    let blob = cache.blob_path(&bundle.sha256);
    let temp = cache
        .temp_path("download")
        .map_err(StoreError::io("create the release cache in", cache.root()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(StoreError::io("create", &temp))?;
    let streamed = stream_bundle(
        store,
        location,
        version,
        path,
        bundle,
        Some((&mut file, &temp)),
    )
    .await
    .and_then(|_| file.sync_all().map_err(StoreError::io("sync", &temp)))
    .and_then(|()| fs::rename(&temp, &blob).map_err(StoreError::io("move into place", &blob)));
    drop(file);
    if let Err(err) = streamed {
        if let Err(e) = fs::remove_file(&temp) {
            tracing::warn!(path = %temp.display(), error = %e, "cannot remove partial download");
        }
        return Err(err);
    }
    if let Some(dir) = blob.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io("sync the directory", dir))?;
    }
    Ok(blob)
}
