//! The three stores the suite runs over: a `file://` directory, a real S3 (moto_server), and
//! object_store's in-memory store. Each is opened the way the product opens it (url and
//! environment), and exposes the raw store so tests can play the publisher, honest or not.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use shoal_agent::channel::store::{Publication, StoreChannel, StoreLocation, StoreSource, publish};
use shoal_shared::release::manifest::BundleRef;
use shoal_shared::release::{Manifest, RELEASE_NAMESPACE, Version};
use shoal_tests::s3::MotoServer;
use shoal_tests::signing::SigningKey;
use tempfile::TempDir;

use crate::fixture::{GROUP, World, sha256_hex};

pub const BUCKET: &str = "releases";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    S3,
    Memory,
}

pub struct Backend {
    pub kind: Kind,
    pub location: StoreLocation,
    pub source: StoreSource,
    pub env: Vec<(String, String)>,
    pub store: Arc<dyn ObjectStore>,
    pub moto: Option<MotoServer>,
    _root: Option<TempDir>,
}

impl Backend {
    /// A directory that does not exist yet: `shoal release` creates it.
    pub fn file() -> Backend {
        let root = tempfile::tempdir().unwrap();
        let url = format!("file://{}/releases/web", root.path().display());
        Self::opened(
            Kind::File,
            StoreSource::new(url),
            Vec::new(),
            None,
            Some(root),
        )
    }

    pub fn s3() -> Backend {
        Self::s3_with(false)
    }

    /// The same on a bucket with versioning on.
    pub fn s3_versioned() -> Backend {
        Self::s3_with(true)
    }

    fn s3_with(versioned: bool) -> Backend {
        let moto = MotoServer::start();
        moto.create_bucket(BUCKET);
        if versioned {
            moto.enable_versioning(BUCKET);
        }
        let source = StoreSource {
            endpoint: Some(moto.endpoint()),
            allow_http: true,
            ..StoreSource::new(format!("s3://{BUCKET}/apps/web"))
        };
        let env = moto.env();
        Self::opened(Kind::S3, source, env, Some(moto), None)
    }

    pub fn memory() -> Backend {
        let location = StoreLocation::in_memory("apps/web").unwrap();
        Backend {
            kind: Kind::Memory,
            source: StoreSource::new(location.url()),
            location,
            env: Vec::new(),
            store: Arc::new(InMemory::new()),
            moto: None,
            _root: None,
        }
    }

    fn opened(
        kind: Kind,
        source: StoreSource,
        env: Vec<(String, String)>,
        moto: Option<MotoServer>,
        root: Option<TempDir>,
    ) -> Backend {
        let location = StoreLocation::parse(&source.url).unwrap();
        let store = location.open(&source, &env).unwrap();
        Backend {
            kind,
            location,
            source,
            env,
            store,
            moto,
            _root: root,
        }
    }

    /// Another prefix of the same store, `…/<app>` beside this one (`…/web`), as the channel of
    /// another application would use (not for the in-memory store).
    pub fn sibling(&self, app: &str) -> Backend {
        assert_ne!(self.kind, Kind::Memory, "a sibling shares a real store");
        let url = self.source.url.rsplit_once('/').unwrap().0;
        let source = StoreSource {
            url: format!("{url}/{app}"),
            ..self.source.clone()
        };
        Self::opened(self.kind, source, self.env.clone(), None, None)
    }

    /// Copies every object of `version` from this store's prefix into `to`'s, byte for byte,
    /// as anyone who may write under `to`'s prefix could.
    pub async fn copy_version(&self, version: &str, to: &Backend) {
        let dir = self.location.version_dir(version);
        let listed: Vec<_> = self.store.list(Some(&dir)).try_collect().await.unwrap();
        assert!(!listed.is_empty(), "nothing under {dir}");
        for meta in listed {
            let name = meta.location.filename().unwrap().to_owned();
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            to.put(version, &name, bytes.to_vec()).await;
        }
    }

    /// The channel a (re)started agent opens.
    pub fn channel(&self, world: &World) -> StoreChannel {
        match self.kind {
            Kind::Memory => StoreChannel::with_store(
                Arc::clone(&self.store),
                self.location.clone(),
                &world.data_dir,
                GROUP,
                GROUP,
            ),
            Kind::File | Kind::S3 => {
                StoreChannel::open(&self.source, &self.env, &world.data_dir, GROUP, GROUP)
            }
        }
        .unwrap()
    }

    /// Runs the real `shoal release` against this store (not for the in-memory store), for
    /// application `web` (the group's) unless `extra` names another.
    pub fn shoal_release(
        &self,
        version: &str,
        bundle: &Path,
        key: &Path,
        extra: &[&str],
    ) -> Output {
        assert_ne!(
            self.kind,
            Kind::Memory,
            "shoal cannot reach an in-memory store"
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.args(["release", "--store", &self.source.url, "--version", version])
            .arg("--bundle")
            .arg(bundle)
            .arg("--key")
            .arg(key)
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn");
        if !extra.contains(&"--application") {
            cmd.args(["--application", GROUP]);
        }
        if let Some(endpoint) = &self.source.endpoint {
            cmd.args(["--endpoint", endpoint, "--allow-http"]);
        }
        cmd.output().unwrap()
    }

    /// Publishes `dir` as `version`, signed by the world's trusted key: with the real
    /// `shoal release` where it can reach the store, else the same steps through the library.
    pub async fn release(&self, world: &World, version: &str, dir: &Path) {
        if self.kind != Kind::Memory {
            let out = self.shoal_release(version, dir, &world.key.private, &[]);
            assert!(
                out.status.success(),
                "shoal release {version}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let bundle = world.tar_gz(dir);
        let manifest = manifest_text(version, "bundle.tar.gz", &bundle);
        let publication = Publication {
            version: Version::parse(version).unwrap(),
            bundle_name: "bundle.tar.gz".to_owned(),
            bundle: bundle.into(),
            signature: world.sign(&world.key, RELEASE_NAMESPACE, &manifest),
            manifest,
        };
        publish(self.store.as_ref(), &self.location, &publication)
            .await
            .unwrap();
    }

    /// Writes (or overwrites) `<prefix>/<version>/<name>` as any publisher could.
    pub async fn put(&self, version: &str, name: &str, bytes: impl Into<Vec<u8>>) {
        let path = self.location.object(version, name);
        self.store
            .put(&path, PutPayload::from(bytes.into()))
            .await
            .unwrap();
    }

    /// Writes a whole release by hand: `bundle` under `bundle_name`, the given manifest, and
    /// its signature by `key` in `namespace`.
    pub async fn put_release(
        &self,
        world: &World,
        version: &str,
        manifest: &str,
        (bundle_name, bundle): (&str, &[u8]),
        (key, namespace): (&SigningKey, &str),
    ) {
        self.put(version, bundle_name, bundle).await;
        self.put(version, "release.yaml", manifest).await;
        let signature = world.sign(key, namespace, manifest);
        self.put(version, "release.yaml.sig", signature).await;
    }

    /// Every object under the prefix: key, size and ETag.
    pub async fn objects(&self) -> Vec<(String, u64, Option<String>)> {
        let listed: Vec<_> = self
            .store
            .list(Some(self.location.prefix()))
            .try_collect()
            .await
            .unwrap();
        let mut objects: Vec<_> = listed
            .into_iter()
            .map(|m| (m.location.to_string(), m.size, m.e_tag))
            .collect();
        objects.sort();
        objects
    }
}

/// An honest manifest for `bundle` as `bundle_name`, for application `web`.
pub fn manifest_text(version: &str, bundle_name: &str, bundle: &[u8]) -> String {
    pinned_manifest(
        version,
        bundle_name,
        &sha256_hex(bundle),
        bundle.len() as u64,
    )
}

/// A manifest pinning whatever digest and size it is given.
pub fn pinned_manifest(version: &str, bundle_name: &str, sha256: &str, size: u64) -> String {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Manifest {
        version: Version::parse(version).unwrap(),
        application: GROUP.to_owned(),
        bundle: BundleRef {
            path: bundle_name.to_owned(),
            sha256: sha256.to_owned(),
            size,
        },
        created: i64::try_from(created).unwrap(),
        rollout: None,
    }
    .render()
}
