//! The local mirror of a channel's repository (a bare repository under
//! `<data_dir>/mirrors/`), and fetching tags into it with the configured credentials.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use git2::{
    AutotagOption, Cred, CredentialType, FetchOptions, FetchPrune, RemoteCallbacks, Repository,
    RepositoryInitOptions,
};
use nix::fcntl::{Flock, FlockArg};

use super::error::{Cause, GitError};
use super::source::{Endpoint, GitSource};

/// Every tag of the repository, forced (a moved tag must be seen to be refused).
pub(super) const ALL_TAGS: &str = "+refs/tags/*:refs/tags/*";

/// Opens the bare mirror at `path`, creating it if missing.
pub(super) fn open_mirror(source: &GitSource, path: &Path) -> Result<Repository, GitError> {
    let failed = |action, source_error: Cause| GitError::Mirror {
        action,
        url: source.display_url(),
        path: path.to_path_buf(),
        source: source_error,
    };
    if path.join("HEAD").is_file() {
        return Repository::open_bare(path).map_err(|e| failed("open", Cause::git(&e, &[])));
    }
    let mut options = RepositoryInitOptions::new();
    options.bare(true).mkpath(true);
    Repository::init_opts(path, &options).map_err(|e| failed("create", Cause::git(&e, &[])))
}

/// Holds the mirror's lock file (`<mirror>.lock`) so two channels of the same repository (two
/// groups) never fetch into it at once; released on drop.
pub(super) struct MirrorLock {
    _lock: Flock<File>,
}

impl MirrorLock {
    /// Waits for the lock of the mirror at `path`.
    pub(super) fn take(source: &GitSource, path: &Path) -> Result<Self, GitError> {
        let lock_path = path.with_extension("lock");
        let failed = |e: &std::io::Error| GitError::Mirror {
            action: "lock",
            url: source.display_url(),
            path: path.to_path_buf(),
            source: Cause::io(e),
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| failed(&e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| failed(&e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| failed(&std::io::Error::from(errno)))?;
        Ok(Self { _lock: lock })
    }
}

/// Fetches `refspecs` from the source into `repo`; with `prune`, refs the remote no longer has
/// are deleted. Returns the bytes received.
pub(super) fn fetch(
    repo: &Repository,
    source: &GitSource,
    refspecs: &[&str],
    prune: bool,
) -> Result<usize, GitError> {
    let token = Cell::new(None::<String>);
    if let Err((_, reason)) = source.check_secrets() {
        return Err(GitError::Fetch {
            url: source.display_url(),
            source: Cause::git(&git2::Error::from_str(&reason), &[]),
        });
    }
    let result = (|| {
        let mut remote = repo.remote_anonymous(&source.url)?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks(source, &token))
            .download_tags(AutotagOption::None)
            .update_fetchhead(false)
            .prune(if prune {
                FetchPrune::On
            } else {
                FetchPrune::Off
            });
        remote.fetch(refspecs, Some(&mut options), None)?;
        Ok(remote.stats().received_bytes())
    })();
    result.map_err(|e: git2::Error| {
        let token = token.take().unwrap_or_default();
        let password = source.url_password().unwrap_or_default();
        GitError::Fetch {
            url: source.display_url(),
            source: Cause::git(&e, &[&token, password]),
        }
    })
}

/// Credentials as the server asks for them, each offered once per fetch (libgit2 asks again
/// after a refusal, and would loop): an https token, then an ssh key file, then the ssh-agent.
/// Only the configured server gets any: a request from another scheme, host or port (libgit2
/// follows redirects) is refused, and a token is never sent where it would travel in clear
/// text (see [`Endpoint::carries_secrets`]).
fn callbacks<'a>(source: &'a GitSource, token: &'a Cell<Option<String>>) -> RemoteCallbacks<'a> {
    let tried = Cell::new(CredentialType::empty());
    let agent = std::env::var_os("SSH_AUTH_SOCK").is_some();
    let configured = source.endpoint();
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, url_user, allowed| {
        let asking = Endpoint::of(url);
        if asking.is_none() || asking != configured {
            return Err(git2::Error::from_str(&format!(
                "credentials were asked for by {}, not by the configured server; none are sent after a redirect to another scheme, host or port",
                asking.map_or_else(|| "an unknown url".to_owned(), |e| format!(
                    "{}://{}{}",
                    e.scheme,
                    e.host,
                    e.port.map(|p| format!(":{p}")).unwrap_or_default()
                ))
            )));
        }
        let secure = asking.as_ref().is_some_and(Endpoint::carries_secrets);
        let ssh = asking.as_ref().is_some_and(|e| e.scheme == "ssh");
        let offer = |kind: CredentialType| {
            let fresh = allowed.contains(kind) && !tried.get().contains(kind);
            if fresh {
                tried.set(tried.get() | kind);
            }
            fresh
        };
        if let Some(file) = source.token_file.as_deref()
            && secure
            && offer(CredentialType::USER_PASS_PLAINTEXT)
        {
            let secret = read_token(file)?;
            let user = source.username.as_deref().unwrap_or("x-access-token");
            let cred = Cred::userpass_plaintext(user, &secret);
            token.set(Some(secret));
            return cred;
        }
        let user = url_user.or(source.username.as_deref()).unwrap_or("git");
        if ssh && (source.ssh_key.is_some() || agent) && offer(CredentialType::SSH_KEY) {
            return match source.ssh_key.as_deref() {
                Some(key) => Cred::ssh_key(user, None, key, None),
                None => Cred::ssh_key_from_agent(user),
            };
        }
        if ssh && offer(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        Err(git2::Error::from_str(
            "the server refused the credentials offered, or asked for a kind not configured",
        ))
    });
    callbacks
}

/// The token in `path`, without surrounding whitespace; errors name the file, never its text.
fn read_token(path: &Path) -> Result<String, git2::Error> {
    let text = fs::read_to_string(path).map_err(|e| {
        git2::Error::from_str(&format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(git2::Error::from_str(&format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// `<data_dir>/mirrors/<name>`.
pub(super) fn mirror_path(data_dir: &Path, source: &GitSource) -> PathBuf {
    data_dir.join("mirrors").join(source.mirror_name())
}
