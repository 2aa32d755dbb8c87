//! Store urls (`s3://bucket/prefix`, `file:///path`, `gs://bucket/prefix`,
//! `az://container/prefix`) and the object store each one opens. Settings and credentials come
//! from an environment the caller passes in (`AWS_*`, `GOOGLE_*` or `AZURE_*`: the daemon and
//! the CLI pass the process environment, tests pass their server's); nothing here reads the
//! process environment.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use object_store::ClientOptions;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;

use super::tolerant::{TolerantConnector, Unreadable};
use super::{StoreError, StoreSource};

/// What kind of store a url names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `s3://bucket/prefix`: Amazon S3 or an S3-compatible server (`--endpoint`).
    S3,
    /// `file:///path`: a directory on this host.
    File,
    /// `gs://bucket/prefix`: Google Cloud Storage (`GOOGLE_*` settings).
    Gcs,
    /// `az://container/prefix`: Azure Blob Storage (`AZURE_*` settings, the account from
    /// `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure,
    /// An in-process store (tests and embedding): `memory:///prefix`.
    Memory,
}

/// Where a channel's releases live: the store and the prefix inside it.
#[derive(Debug, Clone)]
pub struct StoreLocation {
    url: String,
    scheme: Scheme,
    bucket: Option<String>,
    prefix: ObjPath,
}

impl StoreLocation {
    /// Reads a store url.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            bad(&format!(
                "{e}; use s3://bucket/prefix, file:///absolute/path, gs://bucket/prefix or az://container/prefix"
            ))
        })?;
        let bucket = |example: &str| {
            parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("names no bucket; write {example}")))
        };
        let (scheme, bucket, path) = match parsed.scheme() {
            "s3" => (
                Scheme::S3,
                Some(bucket("s3://bucket/prefix")?),
                parsed.path().to_owned(),
            ),
            "gs" => (
                Scheme::Gcs,
                Some(bucket("gs://bucket/prefix")?),
                parsed.path().to_owned(),
            ),
            "az" => (
                Scheme::Azure,
                Some(bucket("az://container/prefix")?),
                parsed.path().to_owned(),
            ),
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(bad(
                        "names a host; a file store is a local directory, write file:///absolute/path",
                    ));
                }
                let path = parsed
                    .to_file_path()
                    .map_err(|()| bad("is not a local path; write file:///absolute/path"))?;
                (Scheme::File, None, path.to_string_lossy().into_owned())
            }
            "memory" => (Scheme::Memory, None, parsed.path().to_owned()),
            other => {
                return Err(bad(&format!(
                    "scheme `{other}` is not a store; use s3://bucket/prefix, file:///absolute/path, gs://bucket/prefix or az://container/prefix"
                )));
            }
        };
        let trimmed = path.trim_matches('/');
        if scheme == Scheme::File && trimmed.is_empty() {
            return Err(bad(
                "is the root directory; name a directory, like file:///srv/releases",
            ));
        }
        let prefix = ObjPath::parse(trimmed).map_err(|e| {
            bad(&format!(
                "the prefix `{trimmed}` is not a plain path ({e}); use names separated by single slashes"
            ))
        })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            scheme,
            bucket,
            prefix,
        })
    }

    /// An in-process location (`memory:///prefix`) for a store the caller provides.
    pub fn in_memory(prefix: &str) -> Result<Self, StoreError> {
        Self::parse(&format!("memory:///{}", prefix.trim_matches('/')))
    }

    /// The url as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kind of store.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The S3 bucket.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    /// The prefix the versions sit under.
    pub fn prefix(&self) -> &ObjPath {
        &self.prefix
    }

    /// `<prefix>/<version>`.
    pub fn version_dir(&self, version: &str) -> ObjPath {
        self.prefix.clone().join(version)
    }

    /// `<prefix>/<version>/<name>`.
    pub fn object(&self, version: &str, name: &str) -> ObjPath {
        self.version_dir(version).join(name)
    }

    /// The object's key as hook scripts get it in `BUNDLE_KEY`: the key in the bucket, or the
    /// absolute file path of a file store.
    pub fn key(&self, path: &ObjPath) -> String {
        match self.scheme {
            Scheme::File => format!("/{path}"),
            Scheme::S3 | Scheme::Gcs | Scheme::Azure | Scheme::Memory => path.to_string(),
        }
    }

    /// The object as a url, for messages.
    pub fn describe(&self, path: &ObjPath) -> String {
        match self.scheme {
            Scheme::S3 => format!("s3://{}/{path}", self.bucket.as_deref().unwrap_or_default()),
            Scheme::Gcs => format!("gs://{}/{path}", self.bucket.as_deref().unwrap_or_default()),
            Scheme::Azure => format!("az://{}/{path}", self.bucket.as_deref().unwrap_or_default()),
            Scheme::File => format!("file:///{path}"),
            Scheme::Memory => format!("memory:///{path}"),
        }
    }

    /// The directory of a file store.
    pub fn local_dir(&self) -> Option<PathBuf> {
        (self.scheme == Scheme::File).then(|| PathBuf::from(format!("/{}", self.prefix)))
    }

    /// Opens the store. For S3, every `AWS_*` variable of `env` object_store knows is applied
    /// (credentials, region, endpoint, session token, …), then the source's explicit settings.
    pub fn open(
        &self,
        source: &StoreSource,
        env: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.open_tolerant(source, env, &Unreadable::default())
    }

    /// Opens the store like [`open`](Self::open); names that an S3 or GCS LIST reply holds and
    /// object_store cannot read are left out of the listing and collected in `unreadable`.
    pub(super) fn open_tolerant(
        &self,
        source: &StoreSource,
        env: &[(String, String)],
        unreadable: &Unreadable,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        match self.scheme {
            Scheme::File => Ok(Arc::new(LocalFileSystem::new())),
            Scheme::Gcs => self.open_gcs(source, env, unreadable),
            Scheme::Azure => self.open_azure(source, env),
            Scheme::Memory => Err(StoreError::Url {
                url: self.url.clone(),
                reason: "an in-memory store cannot be opened by url; pass the store to StoreChannel::with_store".to_owned(),
            }),
            Scheme::S3 => self.open_s3(source, env, unreadable),
        }
    }

    fn open_s3(
        &self,
        source: &StoreSource,
        env: &[(String, String)],
        unreadable: &Unreadable,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut builder =
            AmazonS3Builder::new().with_http_connector(TolerantConnector::new(unreadable.clone()));
        for (key, value) in settings(env, "AWS_") {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key) {
                builder = builder.with_config(key, value);
            }
        }
        builder = builder.with_bucket_name(self.bucket.as_deref().unwrap_or_default());
        if let Some(endpoint) = &source.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &source.region {
            builder = builder.with_region(region);
        }
        if source.allow_http {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(self.open_error(S3_HINT))?;
        Ok(Arc::new(store))
    }

    fn open_gcs(
        &self,
        source: &StoreSource,
        env: &[(String, String)],
        unreadable: &Unreadable,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut builder = GoogleCloudStorageBuilder::new()
            .with_http_connector(TolerantConnector::new(unreadable.clone()));
        for (key, value) in settings(env, "GOOGLE_") {
            if let Ok(key) = GoogleConfigKey::from_str(&key) {
                builder = builder.with_config(key, value);
            }
        }
        builder = builder.with_bucket_name(self.bucket.as_deref().unwrap_or_default());
        if let Some(endpoint) = &source.endpoint {
            builder = builder.with_base_url(endpoint);
        }
        if source.allow_http {
            builder = builder.with_client_options(ClientOptions::new().with_allow_http(true));
        }
        let store = builder.build().map_err(self.open_error(GCS_HINT))?;
        Ok(Arc::new(store))
    }

    fn open_azure(
        &self,
        source: &StoreSource,
        env: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut builder = MicrosoftAzureBuilder::new();
        for (key, value) in settings(env, "AZURE_") {
            if let Ok(key) = AzureConfigKey::from_str(&key) {
                builder = builder.with_config(key, value);
            }
        }
        builder = builder.with_container_name(self.bucket.as_deref().unwrap_or_default());
        if let Some(endpoint) = &source.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if source.allow_http {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(self.open_error(AZURE_HINT))?;
        Ok(Arc::new(store))
    }

    fn open_error(&self, hint: &'static str) -> impl FnOnce(object_store::Error) -> StoreError {
        let url = self.url.clone();
        move |source| StoreError::Open { url, hint, source }
    }
}

const S3_HINT: &str = "--endpoint, --region and the AWS_* variables";
const GCS_HINT: &str = "--endpoint and the GOOGLE_* variables (GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT)";
const AZURE_HINT: &str =
    "--endpoint and the AZURE_* variables (AZURE_STORAGE_ACCOUNT_NAME and a credential)";

/// The variables of `env` that start with `prefix`, with lowercase names (object_store's
/// configuration keys).
fn settings<'a>(
    env: &'a [(String, String)],
    prefix: &'a str,
) -> impl Iterator<Item = (String, &'a str)> + 'a {
    env.iter()
        .filter(move |(name, _)| name.starts_with(prefix))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let loc = StoreLocation::parse("s3://revisions/apps/web/").expect("valid");
        assert_eq!(loc.scheme(), Scheme::S3);
        assert_eq!(loc.bucket(), Some("revisions"));
        assert_eq!(loc.prefix().as_ref(), "apps/web");
        let bundle = loc.object("v1.2.0", "bundle.tar.gz");
        assert_eq!(loc.key(&bundle), "apps/web/v1.2.0/bundle.tar.gz");
        assert_eq!(
            loc.describe(&bundle),
            "s3://revisions/apps/web/v1.2.0/bundle.tar.gz"
        );
        let root = StoreLocation::parse("s3://revisions").expect("bucket root");
        assert_eq!(
            root.object("v1.0.0", "release.yaml").as_ref(),
            "v1.0.0/release.yaml"
        );
    }

    #[test]
    fn file_urls_are_local_directories() {
        let loc = StoreLocation::parse("file:///srv/releases/web").expect("valid");
        assert_eq!(loc.local_dir(), Some(PathBuf::from("/srv/releases/web")));
        let bundle = loc.object("v1.0.0", "b.zip");
        assert_eq!(loc.key(&bundle), "/srv/releases/web/v1.0.0/b.zip");
    }

    #[test]
    fn cloud_urls_open_from_their_own_variables() {
        let loc = StoreLocation::parse("az://releases/web").expect("valid");
        assert_eq!(loc.scheme(), Scheme::Azure);
        let path = loc.object("v1.0.0", "release.yaml");
        assert_eq!(loc.describe(&path), "az://releases/web/v1.0.0/release.yaml");
        let source = StoreSource::new(loc.url());
        let err = loc.open(&source, &[]).expect_err("no account");
        assert!(
            err.to_string().contains("AZURE_STORAGE_ACCOUNT_NAME"),
            "{err}"
        );
        let env = [
            ("AZURE_STORAGE_ACCOUNT_NAME".to_owned(), "shoal".to_owned()),
            (
                "AZURE_STORAGE_ACCOUNT_KEY".to_owned(),
                "c2VjcmV0".to_owned(),
            ),
            ("AWS_ACCESS_KEY_ID".to_owned(), "ignored".to_owned()),
        ];
        assert!(loc.open(&source, &env).is_ok());
        let gcs = StoreLocation::parse("gs://releases/web").expect("valid");
        assert_eq!(gcs.scheme(), Scheme::Gcs);
        assert_eq!(gcs.key(&gcs.object("v1.0.0", "b.zip")), "web/v1.0.0/b.zip");
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        for (url, expected) in [
            ("s3:///prefix", "names no bucket"),
            ("file:///", "is the root directory"),
            ("file://host/x", "names a host"),
            ("gs:///x", "names no bucket; write gs://bucket/prefix"),
            ("az:///x", "names no bucket; write az://container/prefix"),
            ("http://example/x", "scheme `http` is not a store"),
            ("/srv/releases", "relative URL without a base"),
            ("s3://b/a//c", "is not a plain path"),
        ] {
            let err = StoreLocation::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url} => {err}");
            assert!(err.starts_with(&format!("store url `{url}`")), "{err}");
        }
    }
}
