//! Reading from the store: small objects (manifest, signature) with an optional conditional
//! GET, and the bundle streamed through sha256 with its size bounded by what the manifest pins,
//! so a store serving more than that is cut off instead of filling the disk.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore};
use shoal_shared::release::manifest::BundleRef;

use super::{StoreError, StoreLocation};
use crate::channel::cache::{Incoming, ReleaseCache};
use crate::verify::bundle::BundleCheck;

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

/// Streams the bundle at `path`, checked as it arrives ([`BundleCheck`]), into `sink` if one
/// is given.
pub(super) async fn stream_bundle(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &str,
    path: &ObjPath,
    bundle: &BundleRef,
    mut sink: Option<&mut Incoming>,
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
    let mut check = BundleCheck::new(bundle);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(get_error)?;
        // Dropping the stream on a refusal closes the connection: nothing more is downloaded.
        check.add(&chunk).map_err(refused)?;
        if let Some(file) = sink.as_mut() {
            file.write(&chunk)
                .map_err(StoreError::io("write", file.temp()))?;
        }
    }
    let size = check.finish().map_err(refused)?;
    Ok(CheckedBundle { size, etag })
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
    let mut file = Incoming::create(cache, &bundle.sha256, bundle.size)
        .map_err(StoreError::io("start a download in", cache.root()))?;
    stream_bundle(store, location, version, path, bundle, Some(&mut file)).await?;
    file.land()
        .map_err(|(action, path, source)| StoreError::Io {
            action,
            path,
            source,
        })
}
