//! Checking one release in a store from end to end without keeping anything (`shoal verify
//! store`): its manifest against its signature, then its bundle streamed through sha256 and
//! counted against the pinned size.

use object_store::ObjectStore;
use shoal_shared::release::manifest::ManifestError;
use shoal_shared::release::{AllowedSigners, Manifest, Signer, Version};

use super::fetch::{self, CheckedBundle, Fetched};
use super::{MANIFEST_NAME, SIGNATURE_NAME, StoreError, StoreLocation};
use crate::verify::{Expect, KeyTime, Refusal, verify_manifest};

/// A release whose signature, size and digest all checked out.
#[derive(Debug, Clone)]
pub struct CheckedRelease {
    /// The verified manifest.
    pub manifest: Manifest,
    /// Who signed it.
    pub signer: Signer,
    /// What was downloaded.
    pub bundle: CheckedBundle,
}

/// Verifies `version` under `location` against `signers`, with key validity judged at `now`,
/// and its binding against `expected`.
pub async fn check_release(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    version: &Version,
    signers: &AllowedSigners,
    now: i64,
    expected: Expect<'_>,
) -> Result<CheckedRelease, StoreError> {
    let name = version.name();
    let refused = |refusal| StoreError::Refused {
        version: name.to_owned(),
        refusal,
    };
    let mut texts = Vec::with_capacity(2);
    for file in [MANIFEST_NAME, SIGNATURE_NAME] {
        let path = location.object(name, file);
        match fetch::get_small(store, location, &path, None).await? {
            Fetched::Body { bytes, .. } => texts.push(bytes),
            Fetched::NotFound | Fetched::NotModified => {
                return Err(StoreError::Missing {
                    url: location.describe(&path),
                });
            }
            Fetched::TooLarge => {
                return Err(refused(Refusal::Manifest(ManifestError::Syntax(format!(
                    "{file} is larger than {} bytes",
                    fetch::SMALL_OBJECT_LIMIT
                )))));
            }
        }
    }
    let (manifest, signer) = verify_manifest(
        name,
        &texts[0],
        &texts[1],
        signers,
        KeyTime::At(now),
        expected,
    )
    .map_err(refused)?;
    let bundle_path = location.object(name, &manifest.bundle.path);
    let bundle =
        fetch::stream_bundle(store, location, name, &bundle_path, &manifest.bundle, None).await?;
    Ok(CheckedRelease {
        manifest,
        signer,
        bundle,
    })
}
