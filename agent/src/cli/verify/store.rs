//! `shoal verify store`: check one release of a store channel from end to end (signature
//! against allowed_signers, then the bundle's size and sha256 as it streams; nothing is kept)
//! and say who signed what (exit 0), or why it is refused (exit 1). Bad usage exits 2.

use std::path::PathBuf;

use shoal_shared::release::{AllowedSigners, Version};

use super::super::exit;
use super::super::release::StoreArgs;
use super::super::{error_chain, runtime};
use crate::channel::store::{StoreError, StoreLocation, check_release};
use crate::verify::Expect;

/// Arguments of `shoal verify store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store channel: s3://bucket/prefix, file:///path, gs://bucket/prefix or az://container/prefix.
    #[arg(long)]
    url: String,
    /// The release version to check, e.g. v1.4.0.
    #[arg(long)]
    version: String,
    /// The application the release must be bound to (`application:` in its release.yaml), as
    /// the group's `application:` says; without it, any one the release names is reported.
    #[arg(long, value_name = "APP")]
    application: Option<String>,
    /// The OpenSSH allowed_signers file to trust (namespace shoal-release).
    #[arg(long)]
    allowed_signers: PathBuf,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store_args: StoreArgs,
}

/// Runs the command: 0 when the release verifies, 1 when it is refused or missing (or cannot
/// be fetched), 2 on bad usage or an unreadable allowed_signers file.
pub fn run(args: Args) -> u8 {
    let usage = |message: String| {
        errln!("error: {message}");
        exit::USAGE
    };
    let version = match Version::parse(&args.version) {
        Ok(version) => version,
        Err(e) => return usage(format!("--version: {e}")),
    };
    let shown = args.allowed_signers.display();
    let signers = match std::fs::read_to_string(&args.allowed_signers) {
        Ok(text) => match AllowedSigners::parse(&text) {
            Ok(signers) => signers,
            Err(e) => return usage(format!("{shown}: {e}")),
        },
        Err(e) => {
            return usage(format!(
                "{shown}: cannot read the allowed_signers file ({e}); give the trust file of shoal-release signers"
            ));
        }
    };
    let location = match StoreLocation::parse(&args.url) {
        Ok(location) => location,
        Err(e) => return usage(e.to_string()),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let store = match location.open(&args.store_args.source(&args.url), &env) {
        Ok(store) => store,
        Err(e) => return usage(error_chain(&e)),
    };
    let runtime = match runtime(2) {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let now = crate::clock::unix_now();
    let checked = runtime.block_on(check_release(
        store.as_ref(),
        &location,
        &version,
        &signers,
        now,
        args.application
            .as_deref()
            .map_or(Expect::AnyApplication, Expect::Application),
    ));
    let version = version.name();
    let (json, text, code) = match checked {
        Ok(release) => (
            serde_json::json!({
                "result": "good", "version": version,
                "application": release.manifest.application,
                "sha256": release.manifest.bundle.sha256, "size": release.bundle.size,
                "principal": release.signer.principal,
                "fingerprint": release.signer.fingerprint,
                "algorithm": release.signer.algorithm,
            }),
            format!(
                "good: release {version} (sha256:{}, {} bytes) of application {} signed by {} with key {}",
                release.manifest.bundle.sha256,
                release.bundle.size,
                release.manifest.application,
                release.signer.principal,
                release.signer.fingerprint
            ),
            exit::OK,
        ),
        Err(StoreError::Refused { refusal, .. }) => (
            serde_json::json!({
                "result": "refused", "version": version, "kind": refusal.kind(),
                "reason": refusal.to_string(),
            }),
            format!("refused: release {version}: {refusal}"),
            exit::FAILURE,
        ),
        Err(StoreError::Missing { url }) => (
            serde_json::json!({ "result": "missing", "version": version, "url": url }),
            format!("missing: {url} does not exist; check --url and --version"),
            exit::FAILURE,
        ),
        Err(e) => {
            errln!("error: {}", error_chain(&e));
            return if e.is_usage() {
                exit::USAGE
            } else {
                exit::FAILURE
            };
        }
    };
    if args.json {
        outln!("{json}");
    } else {
        outln!("{text}");
    }
    code
}
