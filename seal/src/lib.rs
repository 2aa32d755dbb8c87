//! XChaCha20-Poly1305 behind plain (non-generic) functions. The cipher's code is generic, so
//! it is compiled in the crate that names its types; here that is this small crate, which the
//! workspace optimizes even in test builds. Agents in tests then seal and open release bytes
//! at the speed they do in a release build (about 100 times faster than unoptimized), and
//! the agent's own crate still builds unoptimized in seconds.
#![warn(missing_docs)]

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes the tag adds to a sealed message.
pub const TAG_LEN: usize = 16;

/// One key, ready to seal and open.
#[derive(Clone)]
pub struct Cipher(XChaCha20Poly1305);

impl Cipher {
    /// The cipher of `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(XChaCha20Poly1305::new(key.into()))
    }

    /// `message` encrypted and authenticated together with `aad`, under `nonce`; the tag is
    /// appended. `None` only for messages beyond 256 GiB.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], message: &[u8]) -> Option<Vec<u8>> {
        self.0
            .encrypt(XNonce::from_slice(nonce), Payload { msg: message, aad })
            .ok()
    }

    /// The message `sealed` holds if it was sealed under this key, `nonce` and `aad`.
    pub fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_nonce_and_aad_open() {
        let cipher = Cipher::new(&[7; KEY_LEN]);
        let sealed = cipher
            .seal(&[1; NONCE_LEN], b"mesh", b"hello")
            .expect("seal");
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(
            cipher.open(&[1; NONCE_LEN], b"mesh", &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        assert!(cipher.open(&[2; NONCE_LEN], b"mesh", &sealed).is_none());
        assert!(cipher.open(&[1; NONCE_LEN], b"other", &sealed).is_none());
        assert!(
            Cipher::new(&[8; KEY_LEN])
                .open(&[1; NONCE_LEN], b"mesh", &sealed)
                .is_none()
        );
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(cipher.open(&[1; NONCE_LEN], b"mesh", &flipped).is_none());
    }
}
