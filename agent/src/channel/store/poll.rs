//! One look at a store channel. An idle poll is exactly one LIST of the version directories
//! and downloads nothing; a new version costs its signature and manifest (and a HEAD of the
//! bundle for `BUNDLE_ETAG` and `BUNDLE_VERSION` when it becomes the newest). The first poll after a restart
//! re-checks the manifests recorded at the floor with a conditional GET, so a release replaced
//! in the store is caught and an unchanged one costs a 304.

use std::collections::BTreeSet;

use object_store::ObjectStoreExt as _;
use object_store::path::Path as ObjPath;
use sha2::{Digest as _, Sha256};
use shoal_shared::release::manifest::ManifestError;
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{AllowedSigners, Version};

use super::fetch::{self, Fetched};
use super::listing;
use super::record::Recorded;
use super::{MANIFEST_NAME, Offered, SIGNATURE_NAME, Scheme, StoreChannel, StoreError};
use crate::channel::{Digest, Poll, Release};
use crate::verify::state::ChannelState;
use crate::verify::{Expect, Refusal, verify_manifest};

/// What checking one version found.
enum Checked {
    Verified(Box<Release>),
    Refused(Refusal),
    /// The signature is not there yet: an upload in progress, looked at again next poll.
    Pending,
    /// A recorded release whose manifest is gone from the store.
    Gone,
}

impl StoreChannel {
    /// Looks at the store once: verifies, newest first, the versions above the floor that
    /// this channel has not settled yet; the first that verifies becomes [`Poll::newest`] and
    /// raises the floor. A new version at or below the floor is refused once. After a restart,
    /// the first poll also re-checks the release at the floor and returns it as `newest`
    /// when it is unchanged and nothing newer verified, so a daemon that stopped between
    /// raising the floor and deploying still learns its target.
    pub async fn poll(
        &mut self,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Poll, StoreError> {
        let mut poll = Poll::default();
        let versions = self.list_versions(&mut poll).await?;
        let floor = state.floor();
        let recheck = !self.rechecked;
        let mut changed = false;
        for version in &versions {
            let name = version.name();
            if self.settled.contains(name) {
                continue;
            }
            let recorded = self.record.manifest(name).cloned();
            let recheck_this = recheck && recorded.is_some();
            if !above_floor(version, floor.as_ref()) && !recheck_this {
                if !self.record.is_known(name) {
                    if let Err(refusal) = state.check_floor(version) {
                        poll.refusals.push((name.to_owned(), refusal));
                    }
                    changed |= self.record.mark_known(name);
                }
                self.settled.insert(name.to_owned());
                continue;
            }
            if poll.newest.is_some() && recorded.is_none() {
                // Passed over: a newer release verified in this poll.
                changed |= self.record.mark_known(name);
                self.settled.insert(name.to_owned());
                continue;
            }
            let checked = self.check(version, recorded, signers, state, now).await?;
            match checked {
                Checked::Pending => continue,
                Checked::Gone => {}
                Checked::Refused(refusal) => {
                    tracing::debug!(revision.id = %name, kind = refusal.kind(), "store release refused");
                    poll.refusals.push((name.to_owned(), refusal));
                }
                Checked::Verified(release) => {
                    changed = true;
                    if poll.newest.is_none() {
                        // The manifest is on disk before the floor rises: after a crash in
                        // between, the restarted channel re-checks it and offers it again.
                        self.record.save()?;
                        state.raise_floor(version);
                        tracing::info!(revision.id = %name, digest = %release.digest, "store release verified");
                        poll.newest = Some(*release);
                    }
                }
            }
            self.settled.insert(name.to_owned());
        }
        self.rechecked = true;
        // Versions settled here that the floor has now passed (refused, then overtaken) are
        // never reported again, not even as below the floor after a restart.
        let floor = state.floor();
        for version in &versions {
            if self.settled.contains(version.name()) && !above_floor(version, floor.as_ref()) {
                changed |= self.record.mark_known(version.name());
            }
        }
        // Nothing later needs what the floor passed or the store no longer lists: a release
        // below the floor is never fetched, and a name that comes back is a new upload.
        let listed: BTreeSet<&str> = versions.iter().map(Version::name).collect();
        self.settled.retain(|name| listed.contains(name.as_str()));
        changed |= self.record.forget_unlisted(&listed);
        if let Some(floor) = &floor {
            self.verified.retain(|name, _| {
                Version::parse(name).is_ok_and(|v| !above_floor(floor, Some(&v)))
            });
        }
        if changed {
            if let Some(floor) = &floor {
                self.record.prune_below(floor);
            }
            self.record.save()?;
        }
        // One write of the group's state per poll, after the record (see above).
        state.save_if_changed()?;
        Ok(poll)
    }

    /// The release `name`, fetched and verified now whatever the floor (an operator's
    /// rollback order goes below it), so [`Self::materialize`] can bring its bundle. `None`
    /// when the store has no such release, or it no longer verifies or changed since it
    /// verified here (logged).
    pub async fn named_release(
        &mut self,
        name: &str,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Option<Release>, StoreError> {
        let Ok(version) = Version::parse(name) else {
            return Ok(None);
        };
        let recorded = self.record.manifest(name).cloned();
        let release = match self.check(&version, recorded, signers, state, now).await? {
            Checked::Verified(release) => Some(*release),
            Checked::Refused(refusal) => {
                tracing::warn!(revision.id = %name, reason = %refusal, "release refused");
                None
            }
            Checked::Pending | Checked::Gone => None,
        };
        state.save_if_changed()?;
        Ok(release)
    }

    /// Store release `version` as a peer that verified it offers it: its exact manifest and
    /// signature, verified here as if they came from the origin (signers, application, floor,
    /// a name that changed content) and recorded, the floor raised to it. `Ok(None)` when it
    /// is not above the floor (nothing new). The origin is not asked anything.
    pub async fn take_offered(
        &mut self,
        version: &Version,
        offered: Offered,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Result<Option<Release>, Refusal>, StoreError> {
        if !above_floor(version, state.floor().as_ref()) {
            return Ok(Ok(None));
        }
        let bundle = BundleObject {
            etag: offered.bundle_etag.filter(|e| metadata_ok(e)),
            version: offered.bundle_version.filter(|v| metadata_ok(v)),
        };
        let checked = self
            .judge(
                version,
                offered.manifest.as_bytes(),
                offered.signature.as_bytes(),
                None,
                Some(bundle),
                signers,
                state,
                now,
            )
            .await?;
        let name = version.name();
        let release = match checked {
            Checked::Verified(release) => *release,
            Checked::Refused(refusal) => return Ok(Err(refusal)),
            Checked::Pending | Checked::Gone => return Ok(Ok(None)),
        };
        self.record.mark_known(name);
        self.record.save()?;
        state.raise_floor(version);
        self.settled.insert(name.to_owned());
        state.save_if_changed()?;
        tracing::info!(revision.id = %name, digest = %release.digest, "store release verified from a peer");
        Ok(Ok(Some(release)))
    }

    /// Lists the version directories (one LIST request), newest first; names that are not
    /// versions go to `poll.ignored`, and names the store library cannot read to
    /// `poll.unreadable`, each once per name.
    async fn list_versions(&mut self, poll: &mut Poll) -> Result<Vec<Version>, StoreError> {
        let listing =
            listing::version_dirs(self.store.as_ref(), &self.location, &self.unreadable).await?;
        for name in listing.unreadable {
            if self.unreadable_seen.insert(name.clone()) {
                poll.unreadable.push(name);
            }
        }
        let mut versions = Vec::new();
        for name in listing.dirs {
            match Version::parse(&name) {
                Ok(version) => versions.push(version),
                Err(e) => {
                    if self.ignored.insert(name.clone()) {
                        tracing::debug!(name, "store directory is not a version");
                        poll.ignored.push((name, e.to_string()));
                    }
                }
            }
        }
        versions.sort_by(|a, b| b.cmp(a));
        tracing::debug!(url = %self.location.url(), versions = versions.len(), "store listed");
        Ok(versions)
    }

    /// Fetches and verifies one version; a recorded one is fetched conditionally.
    async fn check(
        &mut self,
        version: &Version,
        recorded: Option<Recorded>,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Checked, StoreError> {
        let name = version.name();
        let store = self.store.as_ref();
        let manifest_path = self.location.object(name, MANIFEST_NAME);
        let signature_path = self.location.object(name, SIGNATURE_NAME);
        let too_large = |what: &str| {
            Checked::Refused(Refusal::Manifest(ManifestError::Syntax(format!(
                "{what} is larger than {} bytes",
                fetch::SMALL_OBJECT_LIMIT
            ))))
        };
        let (manifest, signature, etag, bundle) = match recorded {
            Some(rec) => {
                let fetched =
                    fetch::get_small(store, &self.location, &manifest_path, rec.etag.as_deref())
                        .await?;
                match fetched {
                    Fetched::NotModified => (
                        rec.manifest.into_bytes(),
                        rec.signature.into_bytes(),
                        rec.etag,
                        rec.bundle_etag.map(|etag| BundleObject {
                            etag: Some(etag),
                            version: rec.bundle_version,
                        }),
                    ),
                    Fetched::NotFound => return Ok(Checked::Gone),
                    Fetched::TooLarge => return Ok(too_large(MANIFEST_NAME)),
                    Fetched::Body { bytes, etag } => {
                        let (was, now) = (sha256_hex(rec.manifest.as_bytes()), sha256_hex(&bytes));
                        if was != now {
                            return Ok(Checked::Refused(Refusal::ChangedRelease {
                                version: name.to_owned(),
                                was,
                                now,
                            }));
                        }
                        (bytes.to_vec(), rec.signature.into_bytes(), etag, None)
                    }
                }
            }
            None => {
                let signature =
                    match fetch::get_small(store, &self.location, &signature_path, None).await? {
                        Fetched::Body { bytes, .. } => bytes,
                        Fetched::NotFound | Fetched::NotModified => return Ok(Checked::Pending),
                        Fetched::TooLarge => return Ok(too_large(SIGNATURE_NAME)),
                    };
                match fetch::get_small(store, &self.location, &manifest_path, None).await? {
                    Fetched::Body { bytes, etag } => {
                        (bytes.to_vec(), signature.to_vec(), etag, None)
                    }
                    Fetched::NotFound | Fetched::NotModified => return Ok(Checked::Pending),
                    Fetched::TooLarge => return Ok(too_large(MANIFEST_NAME)),
                }
            }
        };
        self.judge(
            version, &manifest, &signature, etag, bundle, signers, state, now,
        )
        .await
    }

    /// Verifies a release's manifest and signature, wherever the bytes came from (the origin,
    /// or a peer that verified them: [`Self::take_offered`]), and records it when it verifies.
    /// `bundle` is what is known of the bundle object; `None` asks the origin (a HEAD).
    #[allow(clippy::too_many_arguments)]
    async fn judge(
        &mut self,
        version: &Version,
        manifest: &[u8],
        signature: &[u8],
        etag: Option<String>,
        bundle: Option<BundleObject>,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Checked, StoreError> {
        let name = version.name();
        // A release verified before keeps the verdict it had then; a new one is judged now.
        let identity = sha256_hex(manifest);
        let at = state.key_time(name, &identity, now);
        // Refused before it is recorded: a release bound to another application never
        // raises the floor nor pins its name.
        let expected = Expect::Application(&self.application);
        let (parsed, signer) =
            match verify_manifest(name, manifest, signature, signers, at, expected) {
                Ok(verified) => verified,
                Err(refusal) => return Ok(Checked::Refused(refusal)),
            };
        let seen = state.check_identity(name, &identity, |was| Refusal::ChangedRelease {
            version: name.to_owned(),
            was,
            now: identity.clone(),
        });
        if let Err(refusal) = seen {
            return Ok(Checked::Refused(refusal));
        }
        state.record_verified(name, &identity, now);
        let bundle_path = self.location.object(name, &parsed.bundle.path);
        let bundle = match bundle {
            Some(known) => known,
            None => self.bundle_object(&bundle_path).await?,
        };
        self.record.set_manifest(
            name,
            Recorded {
                etag,
                manifest: String::from_utf8_lossy(manifest).into_owned(),
                signature: String::from_utf8_lossy(signature).into_owned(),
                bundle_etag: bundle.etag.clone(),
                bundle_version: bundle.version.clone(),
            },
        );
        let env = self.bundle_env(&bundle_path, bundle);
        self.verified
            .insert(name.to_owned(), (bundle_path, parsed.bundle.clone()));
        Ok(Checked::Verified(Box::new(Release {
            version: version.clone(),
            digest: Digest::Sha256(parsed.bundle.sha256),
            signer,
            rollout: parsed.rollout,
            env,
        })))
    }

    /// The bundle's ETag, from a HEAD request; `None` when the bundle is missing (the
    /// download will say so).
    async fn bundle_object(&self, path: &ObjPath) -> Result<BundleObject, StoreError> {
        match self.store.head(path).await {
            Ok(meta) => Ok(BundleObject {
                etag: meta.e_tag,
                version: meta.version,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(BundleObject::default()),
            Err(source) => Err(StoreError::Get {
                url: self.location.describe(path),
                source,
            }),
        }
    }

    /// `BUNDLE_BUCKET`, `BUNDLE_KEY`, `BUNDLE_ETAG` and, in a versioned bucket,
    /// `BUNDLE_VERSION`, as the CodeDeploy agent sets them for S3 revisions.
    fn bundle_env(&self, path: &ObjPath, bundle: BundleObject) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if self.location.scheme() == Scheme::S3
            && let Some(bucket) = self.location.bucket()
        {
            env.push(("BUNDLE_BUCKET".to_owned(), bucket.to_owned()));
        }
        env.push(("BUNDLE_KEY".to_owned(), self.location.key(path)));
        if let Some(etag) = bundle.etag {
            env.push(("BUNDLE_ETAG".to_owned(), etag));
        }
        if let Some(version) = bundle.version {
            env.push(("BUNDLE_VERSION".to_owned(), version));
        }
        env
    }
}

/// What the store says of a release's bundle object when the release verified.
#[derive(Debug, Default)]
struct BundleObject {
    etag: Option<String>,
    /// Its version id, in a bucket with versioning on.
    version: Option<String>,
}

/// Whether a bundle's ETag or version id from a peer can go into a hook's environment: short
/// printable ASCII, as stores give them.
fn metadata_ok(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && text.bytes().all(|b| b.is_ascii_graphic())
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
