//! Checking an SSH signature (the `sshsig` format of `ssh-keygen -Y sign` and `git tag -s`)
//! against an `allowed_signers` file, the way `ssh-keygen -Y verify` does for git: the
//! signature must be valid for its own key, and that key must be listed for the namespace and
//! valid at the check time.

use base64ct::Encoding as _;
use ssh_key::{Algorithm, HashAlg, SshSig};

use super::allowed_signers::{AllowedSigners, fingerprint};

/// Who signed: the `allowed_signers` entry that vouched for the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The entry's principals field, e.g. `release@example.com`.
    pub principal: String,
    /// The key's `SHA256:...` fingerprint.
    pub fingerprint: String,
    /// The signature algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The `allowed_signers` line of the entry.
    pub line: usize,
}

/// Why a signature was refused. Each is a distinct refusal a caller can branch on ([`Self::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The text is not an armored SSH signature.
    #[error("the signature is not a readable SSH signature ({reason})")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The signature was made for another namespace (`ssh-keygen -Y sign -n`).
    #[error("the signature is for namespace `{found}`, not `{expected}`")]
    WrongNamespace {
        /// The namespace the verifier wants.
        expected: String,
        /// The namespace in the signature.
        found: String,
    },
    /// A key or signature algorithm shoal does not verify.
    #[error(
        "signature algorithm {algorithm} is not supported; shoal verifies ssh-ed25519 signatures"
    )]
    UnsupportedAlgorithm {
        /// The algorithm's name.
        algorithm: String,
    },
    /// The signature does not match the signed data (tampered, or signed something else).
    #[error("the signature by key {fingerprint} does not match the signed data")]
    BadSignature {
        /// The signing key's fingerprint.
        fingerprint: String,
    },
    /// The key is not in `allowed_signers`.
    #[error("key {fingerprint} is not in allowed_signers")]
    UntrustedKey {
        /// The signing key's fingerprint.
        fingerprint: String,
    },
    /// The key is listed, but not for this namespace.
    #[error("key {fingerprint} ({principal}) is not allowed to sign for namespace `{namespace}`")]
    NamespaceNotAllowed {
        /// The signing key's fingerprint.
        fingerprint: String,
        /// Its principals.
        principal: String,
        /// The namespace it was used for.
        namespace: String,
    },
    /// The key is listed, but its validity window does not contain the check time.
    #[error("key {fingerprint} ({principal}) was not valid at {at} ({window})")]
    OutsideValidity {
        /// The signing key's fingerprint.
        fingerprint: String,
        /// Its principals.
        principal: String,
        /// The check time, RFC 3339.
        at: String,
        /// The window, e.g. `valid-before 2020-01-01T00:00:00Z`.
        window: String,
    },
}

impl SignatureError {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed_signature",
            Self::WrongNamespace { .. } => "wrong_namespace",
            Self::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Self::BadSignature { .. } => "bad_signature",
            Self::UntrustedKey { .. } => "untrusted_key",
            Self::NamespaceNotAllowed { .. } => "namespace_not_allowed",
            Self::OutsideValidity { .. } => "key_not_valid_then",
        }
    }
}

/// Checks an armored signature over `message` for `namespace`, at Unix time `at` (git uses the
/// tagger's timestamp; release manifests use their `created` time).
pub fn verify(
    armored: &[u8],
    message: &[u8],
    namespace: &str,
    signers: &AllowedSigners,
    at: i64,
) -> Result<Signer, SignatureError> {
    let sig = SshSig::from_pem(armored).map_err(|e| match unsupported_key_algorithm(armored) {
        Some(algorithm) => SignatureError::UnsupportedAlgorithm { algorithm },
        None => SignatureError::Malformed {
            reason: e.to_string(),
        },
    })?;
    if sig.namespace() != namespace {
        return Err(SignatureError::WrongNamespace {
            expected: namespace.to_owned(),
            found: sig.namespace().to_owned(),
        });
    }
    let algorithm = sig.signature().algorithm();
    if algorithm != Algorithm::Ed25519 || !sig.public_key().is_ed25519() {
        return Err(SignatureError::UnsupportedAlgorithm {
            algorithm: algorithm_name(algorithm),
        });
    }
    if !matches!(sig.hash_alg(), HashAlg::Sha256 | HashAlg::Sha512) {
        return Err(SignatureError::UnsupportedAlgorithm {
            algorithm: sig.hash_alg().as_str().to_owned(),
        });
    }
    let key = sig.public_key();
    let fingerprint = fingerprint(key);
    ssh_key::PublicKey::new(key.clone(), "")
        .verify(namespace, message, &sig)
        .map_err(|_| SignatureError::BadSignature {
            fingerprint: fingerprint.clone(),
        })?;

    let listed: Vec<_> = signers.entries_for(key).collect();
    if listed.is_empty() {
        return Err(SignatureError::UntrustedKey { fingerprint });
    }
    // As git does (`ssh-keygen -Y find-principals`, then `-Y verify -I <principal>`): the
    // first entry for the key that is valid at the check time decides, namespaces included.
    let Some(entry) = listed.iter().find(|e| valid_at(e, at)) else {
        let entry = listed[0];
        let window = match (entry.valid_after, entry.valid_before) {
            (Some(after), _) if at < after => {
                format!("valid-after {}", crate::time::format_rfc3339(after))
            }
            (_, Some(before)) => format!("valid-before {}", crate::time::format_rfc3339(before)),
            _ => String::new(),
        };
        return Err(SignatureError::OutsideValidity {
            fingerprint,
            principal: entry.principals.clone(),
            at: crate::time::format_rfc3339(at),
            window,
        });
    };
    if !entry.allows_namespace(namespace) {
        return Err(SignatureError::NamespaceNotAllowed {
            fingerprint,
            principal: entry.principals.clone(),
            namespace: namespace.to_owned(),
        });
    }
    Ok(Signer {
        principal: entry.principals.clone(),
        fingerprint,
        algorithm: algorithm_name(algorithm),
        line: entry.line,
    })
}

fn valid_at(entry: &crate::release::allowed_signers::Entry, at: i64) -> bool {
    entry.valid_after.is_none_or(|after| at >= after)
        && entry.valid_before.is_none_or(|before| at <= before)
}

/// The name OpenSSH uses for a signature algorithm; `ssh-rsa` is RSA with SHA-1.
fn algorithm_name(algorithm: Algorithm) -> String {
    match algorithm {
        Algorithm::Rsa { hash: None } => "ssh-rsa (RSA with SHA-1)".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// When ssh-key cannot decode a signature because its key type is not built in (ECDSA, RSA
/// with some encodings), reads the key type from the blob so the refusal can name it.
fn unsupported_key_algorithm(armored: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(armored).ok()?;
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    let blob = base64ct::Base64::decode_vec(&body).ok()?;
    // "SSHSIG", uint32 version, string publickey (which starts with string key-type).
    let rest = blob.strip_prefix(b"SSHSIG")?.get(4..)?;
    let key = read_string(rest)?.0;
    let kind = std::str::from_utf8(read_string(key)?.0).ok()?;
    (kind != "ssh-ed25519").then(|| kind.to_owned())
}

fn read_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let body = bytes.get(4..4 + len)?;
    Some((body, &bytes[4 + len..]))
}

#[cfg(test)]
mod tests {
    use ssh_key::LineEnding;
    use ssh_key::private::{Ed25519Keypair, PrivateKey};

    use super::*;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn sign(key: &PrivateKey, namespace: &str, msg: &[u8]) -> Vec<u8> {
        key.sign(namespace, HashAlg::Sha512, msg)
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .expect("sign")
            .into_bytes()
    }

    fn signers(line_options: &str, key: &PrivateKey) -> AllowedSigners {
        let public = key.public_key().to_openssh().expect("openssh");
        AllowedSigners::parse(&format!("release@example.com {line_options} {public}"))
            .expect("parse")
    }

    const NOW: i64 = 1_795_291_060; // 2026-11-21

    #[test]
    fn a_listed_key_signing_its_namespace_is_accepted() {
        let k = key(1);
        let signer = verify(
            &sign(&k, "git", b"payload"),
            b"payload",
            "git",
            &signers("", &k),
            NOW,
        )
        .expect("good");
        assert_eq!(signer.principal, "release@example.com");
        assert_eq!(signer.algorithm, "ssh-ed25519");
        assert!(
            signer.fingerprint.starts_with("SHA256:"),
            "{}",
            signer.fingerprint
        );
    }

    #[test]
    fn each_refusal_is_its_own_kind() {
        let (k, other) = (key(1), key(2));
        let good = sign(&k, "git", b"payload");
        let cases: Vec<(Result<Signer, SignatureError>, &str)> = vec![
            (
                verify(&good, b"payload!", "git", &signers("", &k), NOW),
                "bad_signature",
            ),
            (
                verify(&good, b"payload", "shoal-release", &signers("", &k), NOW),
                "wrong_namespace",
            ),
            (
                verify(&good, b"payload", "git", &signers("", &other), NOW),
                "untrusted_key",
            ),
            (
                verify(
                    &good,
                    b"payload",
                    "git",
                    &signers("namespaces=\"shoal-release\"", &k),
                    NOW,
                ),
                "namespace_not_allowed",
            ),
            (
                verify(
                    &good,
                    b"payload",
                    "git",
                    &signers("valid-before=\"20200101\"", &k),
                    NOW,
                ),
                "key_not_valid_then",
            ),
            (
                verify(
                    &good,
                    b"payload",
                    "git",
                    &signers("valid-after=\"20300101\"", &k),
                    NOW,
                ),
                "key_not_valid_then",
            ),
            (
                verify(b"not a signature", b"payload", "git", &signers("", &k), NOW),
                "malformed_signature",
            ),
        ];
        for (result, kind) in cases {
            assert_eq!(result.expect_err(kind).kind(), kind);
        }
    }

    #[test]
    fn validity_is_judged_at_the_check_time() {
        let k = key(3);
        let sig = sign(&k, "git", b"m");
        let trust = signers("valid-after=\"20250101\",valid-before=\"20270101\"", &k);
        assert!(verify(&sig, b"m", "git", &trust, NOW).is_ok());
        let err = verify(&sig, b"m", "git", &trust, 1_893_456_000).expect_err("2030");
        assert_eq!(
            err.to_string(),
            format!(
                "key {} (release@example.com) was not valid at 2030-01-01T00:00:00Z (valid-before 2027-01-01T00:00:00Z)",
                fingerprint(k.public_key().key_data())
            )
        );
    }

    #[test]
    fn the_first_entry_valid_then_decides_as_in_git() {
        let k = key(4);
        let public = k.public_key().to_openssh().expect("openssh");
        let trust = |text: String| AllowedSigners::parse(&text).expect("parse");
        // An expired first line is passed over...
        let signer = verify(
            &sign(&k, "git", b"m"),
            b"m",
            "git",
            &trust(format!(
                "old@example.com valid-before=\"20200101\" {public}\nnew@example.com {public}\n"
            )),
            NOW,
        )
        .expect("second line");
        assert_eq!(
            (signer.principal.as_str(), signer.line),
            ("new@example.com", 2)
        );
        // ...but a valid first line that does not allow the namespace refuses, as git does.
        let err = verify(
            &sign(&k, "git", b"m"),
            b"m",
            "git",
            &trust(format!(
                "a@example.com namespaces=\"file\" {public}\nb@example.com {public}\n"
            )),
            NOW,
        )
        .expect_err("first line decides");
        assert_eq!(err.kind(), "namespace_not_allowed");
    }
}
