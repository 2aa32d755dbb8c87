//! Signing with an operator's SSH key — `release.yaml` in namespace `shoal-release`, a
//! rollback order in `shoal-rollback`: in-process with `ssh-key` for an
//! unencrypted OpenSSH ed25519 key; through `ssh-keygen -Y sign` for an encrypted key (it asks
//! for the passphrase) or a `.pub` key whose private half is in ssh-agent. Either way the
//! result is checked here before anything is uploaded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_shared::release::allowed_signers::fingerprint;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// A signature over a message.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The armored signature (`release.yaml.sig` for a release).
    pub armored: String,
    /// The signing key's `SHA256:` fingerprint.
    pub fingerprint: String,
    /// How it was made: `ssh-key` or `ssh-keygen`.
    pub via: &'static str,
}

/// Why the message could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file cannot be read (usage).
    #[error("cannot read the key {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a key shoal can sign with (usage).
    #[error("{}: {reason}", path.display())]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// What is wrong and the fix.
        reason: String,
    },
    /// Signing failed.
    #[error("cannot sign with {}: {reason}", path.display())]
    Failed {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl SignError {
    /// Whether the user gave a bad key (exit 2) rather than signing failing (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Unreadable { .. } | Self::NotAKey { .. })
    }
}

const ED25519_ONLY: &str =
    "shoal verifies only ssh-ed25519 signatures; make a key with ssh-keygen -t ed25519";

/// Signs `message` in `namespace` with the key in `key_file`.
pub fn sign(key_file: &Path, namespace: &str, message: &[u8]) -> Result<Signed, SignError> {
    let text = fs::read_to_string(key_file).map_err(|source| SignError::Unreadable {
        path: key_file.to_path_buf(),
        source,
    })?;
    let not_a_key = |reason: &str| SignError::NotAKey {
        path: key_file.to_path_buf(),
        reason: reason.to_owned(),
    };
    if let Ok(private) = PrivateKey::from_openssh(&text) {
        if !private.public_key().key_data().is_ed25519() {
            return Err(not_a_key(ED25519_ONLY));
        }
        if private.is_encrypted() {
            return ssh_keygen_sign(key_file, namespace, message);
        }
        let failed = |e: ssh_key::Error| SignError::Failed {
            path: key_file.to_path_buf(),
            reason: e.to_string(),
        };
        let armored = private
            .sign(namespace, HashAlg::Sha512, message)
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .map_err(failed)?;
        return Ok(Signed {
            armored,
            fingerprint: fingerprint(private.public_key().key_data()),
            via: "ssh-key",
        });
    }
    match PublicKey::from_openssh(text.trim()) {
        Ok(public) if public.key_data().is_ed25519() => {
            ssh_keygen_sign(key_file, namespace, message)
        }
        Ok(_) => Err(not_a_key(ED25519_ONLY)),
        Err(_) => Err(not_a_key(
            "is not an OpenSSH private key or public key; give the file ssh-keygen -t ed25519 made (or its .pub, to sign through ssh-agent)",
        )),
    }
}

/// `ssh-keygen -Y sign -n NAMESPACE -f KEY` over the message in a private temporary
/// directory; the passphrase prompt (if any) goes to the terminal.
fn ssh_keygen_sign(key_file: &Path, namespace: &str, message: &[u8]) -> Result<Signed, SignError> {
    let failed = |reason: String| SignError::Failed {
        path: key_file.to_path_buf(),
        reason,
    };
    let dir = tempfile::tempdir()
        .map_err(|e| failed(format!("cannot create a temporary directory: {e}")))?;
    let payload = dir.path().join("message");
    fs::write(&payload, message)
        .map_err(|e| failed(format!("cannot write {}: {e}", payload.display())))?;
    let output = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key_file)
        .arg(&payload)
        .stdin(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            failed(format!(
                "cannot run ssh-keygen ({e}); install openssh-client"
            ))
        })?;
    if !output.status.success() {
        return Err(failed(format!(
            "ssh-keygen -Y sign failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let armored = fs::read_to_string(payload.with_extension("sig"))
        .map_err(|e| failed(format!("ssh-keygen wrote no signature: {e}")))?;
    let sig = SshSig::from_pem(&armored)
        .map_err(|e| failed(format!("ssh-keygen wrote an unreadable signature: {e}")))?;
    let key = PublicKey::new(sig.public_key().clone(), "");
    key.verify(namespace, message, &sig).map_err(|e| {
        failed(format!(
            "the signature ssh-keygen made does not verify: {e}"
        ))
    })?;
    Ok(Signed {
        armored,
        fingerprint: fingerprint(sig.public_key()),
        via: "ssh-keygen",
    })
}
