//! A webhook's signing secret: read once at start from a file that must be the agent's own and
//! private (mode 0600 or stricter), as the gossip key file is; never shown.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The secret of `X-Shoal-Signature`, and the file it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    path: PathBuf,
    key: Arc<[u8]>,
}

/// Shows the file, never the secret.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.path.display())
    }
}

/// A secret file that cannot be used, in one sentence naming the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("cannot read the webhook secret file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another user owns it.
    #[error(
        "the webhook secret file {} belongs to uid {owner}, not to the agent's user (uid {agent}), so that user could change it; run `chown {agent} {}`",
        path.display(), path.display()
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The agent's user.
        agent: u32,
    },
    /// Group or others may read or change it.
    #[error(
        "the webhook secret file {} gives group or others access (mode {mode:04o}), so other users could sign notifications; run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Nothing in it.
    #[error(
        "the webhook secret file {} is empty; put a random string in it, e.g. `openssl rand -hex 32`",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl Secret {
    /// Reads the secret in `path`, less one trailing newline. Refused unless the file belongs
    /// to the agent's user and gives group and others no access.
    pub fn load(path: &Path) -> Result<Secret, SecretError> {
        let read = |source| SecretError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(read)?;
        let agent = nix::unistd::geteuid().as_raw();
        if meta.uid() != agent {
            return Err(SecretError::Owner {
                path: path.to_owned(),
                owner: meta.uid(),
                agent,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = fs::read(path).map_err(read)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Secret {
            path: path.to_owned(),
            key: bytes.into(),
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret's bytes.
    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("hook.secret");
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_secret_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = Secret::load(&write(dir.path(), "s3cr3t\n", 0o600)).expect("private");
        assert_eq!(secret.key(), b"s3cr3t");
        let secret = Secret::load(&write(dir.path(), " two words \r\n\n", 0o400)).expect("0400");
        assert_eq!(secret.key(), b" two words \r\n");
        assert!(!format!("{secret:?}").contains("two words"), "never shown");
    }

    #[test]
    fn a_secret_file_others_may_read_or_own_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "s3cr3t\n", 0o644);
        let err = Secret::load(&path).expect_err("0644").to_string();
        let shown = path.display();
        assert_eq!(
            err,
            format!(
                "the webhook secret file {shown} gives group or others access (mode 0644), so other users could sign notifications; run `chmod 600 {shown}`"
            )
        );
        let err = Secret::load(&write(dir.path(), "s3cr3t", 0o640)).expect_err("group");
        assert!(err.to_string().contains("mode 0640"), "{err}");
        let err = Secret::load(&write(dir.path(), "\n", 0o600)).expect_err("empty");
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = Secret::load(&dir.path().join("missing")).expect_err("missing");
        assert!(
            err.to_string()
                .contains("cannot read the webhook secret file")
        );
        if nix::unistd::geteuid().is_root() {
            let path = write(dir.path(), "s3cr3t", 0o600);
            nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65_534)), None)
                .expect("chown");
            let err = Secret::load(&path).expect_err("not root's").to_string();
            assert!(
                err.contains("belongs to uid 65534, not to the agent's user (uid 0)")
                    && err.contains("run `chown 0 "),
                "{err}"
            );
        }
    }
}
