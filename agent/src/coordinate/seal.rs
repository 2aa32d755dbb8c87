//! Sealing gossip datagrams under the cluster key: XChaCha20-Poly1305 with a fresh random
//! 192-bit nonce per datagram (random nonces of that size never collide in practice, so no
//! counter has to survive restarts), and the mesh name as associated data so that a datagram
//! of another mesh sharing a key never opens here.
//!
//! Wire format: `version (1) ‖ key id (4) ‖ sent at (8) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.
//! The key id is the first 4 bytes of sha256 of the key: it picks the key to open with from the
//! keyring (one primary key seals, every key of the ring opens), which is how a key is rotated
//! with no downtime, as Serf does. `sent at` is the sender's clock in Unix milliseconds,
//! big-endian, in the clear but covered by the tag: a receiver refuses datagrams too old (or
//! sent before it started), so a captured datagram cannot be replayed later, not even to an
//! agent that restarted and remembers no nonces.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding as _};
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use shoal_seal::Cipher;

/// The format version this build writes and reads (1 had no `sent at`).
const VERSION: u8 = 2;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a key id.
pub const ID_LEN: usize = 4;
const TIME_LEN: usize = 8;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const NONCE_AT: usize = 1 + ID_LEN + TIME_LEN;
const HEADER_LEN: usize = NONCE_AT + NONCE_LEN;
/// Bytes a sealed datagram has beyond its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// One cluster key.
#[derive(Clone)]
pub struct Key {
    id: [u8; ID_LEN],
    cipher: Cipher,
    /// The key itself, for keys derived from it ([`Key::derive`]).
    secret: [u8; KEY_LEN],
}

impl Key {
    /// The key of 32 `bytes`.
    pub fn new(bytes: &[u8; KEY_LEN]) -> Key {
        let digest = Sha256::digest(bytes);
        let mut id = [0; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        Key {
            id,
            cipher: Cipher::new(bytes),
            secret: *bytes,
        }
    }

    /// The key's id as sent on the wire.
    pub fn id_bytes(&self) -> [u8; ID_LEN] {
        self.id
    }

    /// A key derived from this one for `label` and `parts`: HMAC-SHA256 under this key of the
    /// label and each part, every one prefixed with its length. Other uses of the cluster key
    /// (the release transport's session keys) never share a key with gossip.
    pub fn derive(&self, label: &str, parts: &[&[u8]]) -> [u8; KEY_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in std::iter::once(label.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The key's id as hex, to name it in logs without showing it.
    pub fn id(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Keyrings are equal when they hold the same keys in the same order.
impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys.iter().zip(&other.keys).all(|(a, b)| a.id == b.id)
    }
}

impl Eq for Keyring {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

/// The keys of a mesh: the first seals, all of them open.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

/// Why a datagram did not open: the reasons counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Shorter than a header and a tag.
    Short,
    /// A format version this build does not know.
    Version,
    /// Sealed under a key not in the keyring.
    UnknownKey,
    /// The tag does not match: tampered, another mesh's name, or noise.
    Forged,
}

impl Refused {
    /// The label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Version => "version",
            Self::UnknownKey => "unknown_key",
            Self::Forged => "forged",
        }
    }
}

/// A key file that cannot be used, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the gossip key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others may read it.
    #[error(
        "the gossip key file {path} is readable by others (mode {mode:04o}): anyone on this host could join the mesh; run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A line is not a key.
    #[error(
        "{path} line {line}: not a gossip key; each line is the base64 of 32 random bytes, as `shoal keygen` writes"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// No key at all.
    #[error("{path} holds no key; write one with `shoal keygen --out {path}`")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl Keyring {
    /// A keyring of `keys`, the first one sealing.
    pub fn new(keys: Vec<Key>) -> Option<Keyring> {
        (!keys.is_empty()).then_some(Keyring { keys })
    }

    /// Reads a key file: one base64 key a line, the first the primary; blank lines and `#`
    /// comments are skipped. Refused when group or others may read it.
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let read = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path).map_err(read)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(read)?;
        Self::parse(&text).map_err(|line| match line {
            Some(line) => KeyError::Malformed {
                path: path.to_owned(),
                line,
            },
            None => KeyError::Empty {
                path: path.to_owned(),
            },
        })
    }

    /// The keys in `text`; `Err(Some(line))` for a line that is not a key, `Err(None)` for no key.
    pub fn parse(text: &str) -> Result<Keyring, Option<usize>> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut bytes = [0; KEY_LEN];
            match Base64::decode(line, &mut bytes) {
                Ok(decoded) if decoded.len() == KEY_LEN => keys.push(Key::new(&bytes)),
                _ => return Err(Some(index + 1)),
            }
        }
        Keyring::new(keys).ok_or(None)
    }

    /// The key of the ring with this id.
    pub fn key(&self, id: &[u8]) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The key that seals.
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// Seals `plaintext` for the mesh `mesh` under the primary key with `nonce`, stamped with
    /// this host's clock.
    pub fn seal(&self, mesh: &str, plaintext: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        self.seal_at(mesh, plaintext, nonce, unix_ms())
    }

    /// Seals as [`Self::seal`] does, stamped `sent_at` (Unix milliseconds).
    pub fn seal_at(
        &self,
        mesh: &str,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
        sent_at: u64,
    ) -> Vec<u8> {
        let key = self.primary();
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&sent_at.to_be_bytes());
        out.extend_from_slice(nonce);
        let aad = associated(mesh, &out);
        // Only fails for plaintexts beyond 256 GiB.
        let sealed = key.cipher.seal(nonce, &aad, plaintext).unwrap_or_default();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a datagram sealed for `mesh` under any key of the ring.
    pub fn open(&self, mesh: &str, datagram: &[u8]) -> Result<Vec<u8>, Refused> {
        if datagram.len() < OVERHEAD {
            return Err(Refused::Short);
        }
        let (header, sealed) = datagram.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return Err(Refused::Version);
        }
        let id = &header[1..1 + ID_LEN];
        let key = self.key(id).ok_or(Refused::UnknownKey)?;
        let nonce: &[u8; NONCE_LEN] = header[NONCE_AT..].try_into().map_err(|_| Refused::Short)?;
        key.cipher
            .open(nonce, &associated(mesh, header), sealed)
            .ok_or(Refused::Forged)
    }
}

/// The nonce a sealed datagram carries.
pub fn nonce_of(datagram: &[u8]) -> Option<[u8; NONCE_LEN]> {
    datagram.get(NONCE_AT..HEADER_LEN)?.try_into().ok()
}

/// When a sealed datagram says it was sent (Unix milliseconds on the sender's clock); to be
/// trusted only once the datagram opened.
pub fn sent_at_of(datagram: &[u8]) -> Option<u64> {
    let bytes = datagram.get(1 + ID_LEN..NONCE_AT)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// This host's clock in Unix milliseconds (0 before 1970).
pub use crate::clock::now_ms as unix_ms;

/// What the tag covers besides the ciphertext: a label, the mesh name and the header.
fn associated(mesh: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + mesh.len() + header.len());
    aad.extend_from_slice(b"shoal-gossip\0");
    aad.extend_from_slice(mesh.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    aad
}

/// 32 random bytes from the OS, as a key file line (base64).
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(Base64::encode_string(&bytes))
}

/// Writes a new key to `path`, a new file made 0600 from the start and synced; an existing
/// file is an `AlreadyExists` error and is left as it was.
pub fn write_new_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = generate()?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_all()
}

/// A fresh nonce from the OS.
pub fn nonce() -> std::io::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(lines: &[&str]) -> Keyring {
        Keyring::parse(&lines.join("\n")).expect("keys")
    }

    const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn a_sealed_datagram_opens_with_the_same_key_and_mesh_only() {
        let sealed = ring(&[A]).seal("prod", b"syn", &[7; NONCE_LEN]);
        assert_eq!(sealed.len(), 3 + OVERHEAD);
        assert_eq!(ring(&[A]).open("prod", &sealed), Ok(b"syn".to_vec()));
        assert_eq!(ring(&[B]).open("prod", &sealed), Err(Refused::UnknownKey));
        assert_eq!(ring(&[A]).open("staging", &sealed), Err(Refused::Forged));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let sealed = ring(&[A]).seal("prod", b"a delta", &[1; NONCE_LEN]);
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x10;
            assert!(ring(&[A]).open("prod", &bad).is_err(), "byte {at} flipped");
        }
        assert_eq!(ring(&[A]).open("prod", &sealed[..10]), Err(Refused::Short));
        let mut restamped = sealed.clone();
        restamped[1 + ID_LEN + TIME_LEN - 1] ^= 1;
        assert_eq!(
            ring(&[A]).open("prod", &restamped),
            Err(Refused::Forged),
            "the time is covered by the tag"
        );
        let mut old_format = sealed.clone();
        old_format[0] = 1;
        assert_eq!(ring(&[A]).open("prod", &old_format), Err(Refused::Version));
        let stamped = ring(&[A]).seal_at("prod", b"x", &[4; NONCE_LEN], 1_700_000_000_123);
        assert_eq!(sent_at_of(&stamped), Some(1_700_000_000_123));
    }

    #[test]
    fn a_rotated_ring_opens_the_old_key_and_seals_with_the_new() {
        let old = ring(&[A]).seal("prod", b"x", &[2; NONCE_LEN]);
        let rotated = ring(&[B, A]);
        assert_eq!(rotated.open("prod", &old), Ok(b"x".to_vec()));
        let new = rotated.seal("prod", b"y", &[3; NONCE_LEN]);
        assert_eq!(ring(&[A]).open("prod", &new), Err(Refused::UnknownKey));
        assert_eq!(ring(&[A, B]).open("prod", &new), Ok(b"y".to_vec()));
    }

    #[test]
    fn key_files_name_the_bad_line() {
        assert_eq!(Keyring::parse("# only a comment\n\n").err(), Some(None));
        assert_eq!(
            Keyring::parse(&format!("{A}\nnot base64\n")).err(),
            Some(Some(2))
        );
        assert_eq!(Keyring::parse("AAAA\n").err(), Some(Some(1)), "too short");
        let generated = generate().expect("random");
        assert!(Keyring::parse(&generated).is_ok());
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gossip.key");
        fs::write(&path, format!("{A}\n")).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = Keyring::load(&path).expect_err("world-readable");
        assert!(refused.to_string().contains("chmod 600"), "{refused}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(Keyring::load(&path).is_ok());
    }
}
