//! `shoal release`: package a bundle, write and sign its `release.yaml`, and publish all three
//! to a store channel with create-only puts. Releases are immutable: an existing version is
//! refused before anything is signed or uploaded.

mod package;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use shoal_shared::release::manifest::BundleRef;
use shoal_shared::release::{Manifest, RELEASE_NAMESPACE, check_application};
use shoal_shared::release::{Version, version::VersionError};
use shoal_shared::rollout::{
    Policy, PolicyError, PolicyFileError, RawPolicy, Shape, parse_policy_file,
};

use super::{error_chain, exit, sign};
use crate::channel::store::{Publication, StoreError, StoreLocation, StoreSource, publish};
use crate::clock::unix_now;

/// Where the store is and how to reach it; shared with `shoal verify store`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// An S3-compatible endpoint instead of AWS, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The S3 region (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Allow a plain-http endpoint.
    #[arg(long)]
    pub allow_http: bool,
}

impl StoreArgs {
    /// The store source for `url` with these settings.
    pub fn source(&self, url: &str) -> StoreSource {
        StoreSource {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            allow_http: self.allow_http,
            ..StoreSource::new(url)
        }
    }
}

/// Arguments of `shoal release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store channel: s3://bucket/prefix, file:///path, gs://bucket/prefix or az://container/prefix.
    #[arg(long)]
    store: String,
    /// The release version (semver, optional leading v), e.g. v1.4.0.
    #[arg(long)]
    version: String,
    /// The application the release is for, as the agents' groups name it (`application:`,
    /// else the group's name); signed into release.yaml, so no other application takes it.
    #[arg(long, value_name = "APP")]
    application: String,
    /// The bundle: a directory (packaged as .tar.gz) or a .tar, .tar.gz/.tgz or .zip archive.
    #[arg(long)]
    bundle: PathBuf,
    /// The signing key: an OpenSSH ed25519 private key, or its .pub to sign through ssh-agent.
    #[arg(long)]
    key: PathBuf,
    /// A YAML file with the release's rollout policy (`rollout:` block or its keys).
    #[arg(long)]
    rollout: Option<PathBuf>,
    #[command(flatten)]
    store_args: StoreArgs,
}

/// Runs the command and returns the exit code.
pub fn run(args: Args) -> u8 {
    match release(&args) {
        Ok(()) => exit::OK,
        Err((code, message)) => {
            errln!("error: {message}");
            code
        }
    }
}

type Failure = (u8, String);

fn usage(message: impl ToString) -> Failure {
    (exit::USAGE, message.to_string())
}

fn store_failure(error: &StoreError) -> Failure {
    let code = if error.is_usage() {
        exit::USAGE
    } else {
        exit::FAILURE
    };
    (code, error_chain(error))
}

fn release(args: &Args) -> Result<(), Failure> {
    let version = Version::parse(&args.version)
        .map_err(|e: VersionError| usage(format!("--version: {e}")))?;
    check_application(&args.application).map_err(|m| usage(format!("--application: {m}")))?;
    let location = StoreLocation::parse(&args.store).map_err(usage)?;
    let rollout = args
        .rollout
        .as_deref()
        .map(read_rollout)
        .transpose()
        .map_err(usage)?;
    let source = args.store_args.source(&args.store);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let store = location
        .open(&source, &env)
        .map_err(|e| store_failure(&e))?;
    let runtime = super::runtime(2).map_err(|e| (exit::FAILURE, e.to_string()))?;

    // Refused before anything is packaged, signed (no passphrase prompt in vain) or uploaded.
    runtime
        .block_on(publish::refuse_existing(
            store.as_ref(),
            &location,
            &version,
        ))
        .map_err(|e| store_failure(&e))?;
    if !args.bundle.exists() {
        return Err(usage(format!(
            "--bundle {}: no such file or directory",
            args.bundle.display()
        )));
    }
    let packaged = package::package(&args.bundle).map_err(|e| usage(error_chain(&e)))?;
    let manifest = Manifest {
        version: version.clone(),
        application: args.application.clone(),
        bundle: BundleRef {
            path: packaged.name.clone(),
            sha256: format!("{:x}", Sha256::digest(&packaged.bytes)),
            size: packaged.bytes.len() as u64,
        },
        created: unix_now(),
        rollout,
    };
    let text = manifest.render();
    let signed = sign::sign(&args.key, RELEASE_NAMESPACE, text.as_bytes()).map_err(|e| {
        let code = if e.is_usage() {
            exit::USAGE
        } else {
            exit::FAILURE
        };
        (code, error_chain(&e))
    })?;
    let publication = Publication {
        version,
        bundle_name: packaged.name.clone(),
        bundle: packaged.bytes.into(),
        manifest: text,
        signature: signed.armored.clone(),
    };
    runtime
        .block_on(publish::publish(store.as_ref(), &location, &publication))
        .map_err(|e| store_failure(&e))?;
    let bundle_key = location.object(publication.version.name(), &publication.bundle_name);
    outln!(
        "published release {} to {}",
        manifest.version,
        location.url()
    );
    outln!("  for     application {}", manifest.application);
    outln!(
        "  bundle  {}{}",
        location.describe(&bundle_key),
        if packaged.packaged {
            format!(" (packaged from {})", args.bundle.display())
        } else {
            String::new()
        }
    );
    outln!("  sha256  {}", manifest.bundle.sha256);
    outln!("  size    {} bytes", manifest.bundle.size);
    outln!("  signed  key {} (via {})", signed.fingerprint, signed.via);
    Ok(())
}

/// Why the `--rollout` file cannot be used; the sentence names the file.
#[derive(Debug, thiserror::Error)]
enum RolloutFileError {
    /// It cannot be read.
    #[error("--rollout: cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// It is not a policy file.
    #[error("{0}")]
    Parse(PolicyFileError),
    /// A key has a bad value.
    #[error("{}: {error}", path.display())]
    Policy { path: PathBuf, error: PolicyError },
}

/// The rollout file: a `rollout:` block (like a bundle's shoal.yaml) or the policy's keys
/// alone; checked here so a bad policy never reaches a release.
fn read_rollout(path: &Path) -> Result<RawPolicy, RolloutFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| RolloutFileError::Read {
        path: path.to_owned(),
        error,
    })?;
    let policy = parse_policy_file(&text, &path.display().to_string(), Shape::BlockOrKeys)
        .map_err(RolloutFileError::Parse)?
        .unwrap_or_default();
    policy
        .check(&Policy::default())
        .map_err(|error| RolloutFileError::Policy {
            path: path.to_owned(),
            error,
        })?;
    Ok(policy)
}
