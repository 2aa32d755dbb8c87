//! `shoal verify git --repo PATH|URL --tag TAG --allowed-signers FILE`: fetch one tag into a
//! temporary mirror and verify it with the agent's own verify path, as `git verify-tag` would.

use std::path::{Path, PathBuf};

use shoal_shared::release::AllowedSigners;
use shoal_shared::release::allowed_signers::ParseError;

use super::super::exit;
use crate::channel::git::{self, GitSource, TagCheck};
use crate::verify::Expect;

/// Arguments of `shoal verify git`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository: a local path, file://, https:// or ssh (ssh://… or git@host:path).
    #[arg(long, value_name = "PATH|URL")]
    repo: String,
    /// The tag to verify, e.g. v1.2.0 (or refs/tags/v1.2.0).
    #[arg(long)]
    tag: String,
    /// The application the tag must be bound to (its `Shoal-Application:` line), as the
    /// group's `application:` says; without it, any one the tag names is reported.
    #[arg(long, value_name = "APP")]
    application: Option<String>,
    /// The trust file, as `git config gpg.ssh.allowedSignersFile` names it.
    #[arg(long, value_name = "FILE")]
    allowed_signers: PathBuf,
    /// https: a file holding an access token.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// https: the user the token is sent as; ssh: the user when the url names none.
    #[arg(long)]
    username: Option<String>,
    /// ssh: a private key file (else the ssh-agent).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Runs the command: 0 when the tag verifies, 1 when it is refused or missing (or cannot be
/// fetched), 2 on bad usage or an unreadable allowed_signers file.
pub fn run(mut args: Args) -> u8 {
    if let Some(short) = args.tag.strip_prefix("refs/tags/") {
        args.tag = short.to_owned();
    }
    let signers = match load_signers(&args.allowed_signers) {
        Ok(signers) => signers,
        Err(message) => {
            errln!("error: {message}");
            return exit::USAGE;
        }
    };
    if !is_tag_name(&args.tag) {
        errln!(
            "error: `{}` is not a tag name; give one tag, such as v1.2.0",
            args.tag
        );
        return exit::USAGE;
    }
    let mut source = GitSource::new(&args.repo);
    source.token_file = args.token_file.clone();
    source.username = args.username.clone();
    source.ssh_key = args.ssh_key.clone();
    let scratch = match tempfile::Builder::new().prefix("shoal-verify-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            errln!("error: cannot create a temporary directory for the mirror: {e}");
            return exit::FAILURE;
        }
    };
    let now = crate::clock::unix_now();
    let expected = args
        .application
        .as_deref()
        .map_or(Expect::AnyApplication, Expect::Application);
    match git::check_tag(&source, &args.tag, &signers, now, expected, scratch.path()) {
        Ok(check) => report(&args, &source, &check),
        Err(error) => {
            errln!("error: {error}");
            let mut cause = std::error::Error::source(&error);
            while let Some(e) = cause {
                errln!("  caused by: {e}");
                cause = e.source();
            }
            exit::FAILURE
        }
    }
}

fn report(args: &Args, source: &GitSource, check: &TagCheck) -> u8 {
    let tag = &args.tag;
    let (json, text, code) = match check {
        TagCheck::Good(verified) => (
            serde_json::json!({
                "result": "good", "tag": tag, "commit": verified.commit,
                "application": verified.application,
                "principal": verified.signer.principal,
                "fingerprint": verified.signer.fingerprint,
                "algorithm": verified.signer.algorithm,
            }),
            format!(
                "good: tag {tag} (commit {}) of application {} signed by {} with key {}",
                verified.commit,
                verified.application,
                verified.signer.principal,
                verified.signer.fingerprint
            ),
            exit::OK,
        ),
        TagCheck::Refused(refusal) => (
            serde_json::json!({
                "result": "refused", "tag": tag, "kind": refusal.kind(),
                "reason": refusal.to_string(),
            }),
            format!("refused: tag {tag}: {refusal}"),
            exit::FAILURE,
        ),
        TagCheck::Missing => (
            serde_json::json!({ "result": "missing", "tag": tag, "repo": source.display_url() }),
            format!(
                "missing: {url} has no tag {tag}; list its tags with `git ls-remote --tags {url}`",
                url = source.display_url()
            ),
            exit::FAILURE,
        ),
    };
    if args.json {
        outln!("{json}");
    } else {
        outln!("{text}");
    }
    code
}

/// Why the trust file cannot be used: one sentence naming the file (and line).
#[derive(Debug, thiserror::Error)]
enum SignersError {
    /// It cannot be read.
    #[error(
        "{}: cannot read the allowed_signers file ({error}); give the file `git config gpg.ssh.allowedSignersFile` names",
        path.display()
    )]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A line is refused.
    #[error("{}: {error}", path.display())]
    Parse { path: PathBuf, error: ParseError },
}

/// Reads and parses the trust file.
fn load_signers(path: &Path) -> Result<AllowedSigners, SignersError> {
    let text = std::fs::read_to_string(path).map_err(|error| SignersError::Read {
        path: path.to_owned(),
        error,
    })?;
    AllowedSigners::parse(&text).map_err(|error| SignersError::Parse {
        path: path.to_owned(),
        error,
    })
}

/// A name git accepts under `refs/tags/`, and no refspec pattern.
fn is_tag_name(name: &str) -> bool {
    !name.contains('*') && git2::Reference::is_valid_name(&format!("refs/tags/{name}"))
}
