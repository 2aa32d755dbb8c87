//! A bundle checked as it arrives against the sha256 and size its verified manifest pins,
//! whoever sends it (the origin or a peer): more bytes than pinned stop it at once, and a short
//! bundle or another digest is refused after the last byte.

use sha2::{Digest as _, Sha256};
use shoal_shared::release::manifest::BundleRef;

use super::Refusal;

/// The running check of one bundle download.
#[derive(Debug, Clone)]
pub struct BundleCheck {
    hasher: Sha256,
    received: u64,
    size: u64,
    sha256: String,
}

impl BundleCheck {
    /// A check against what `bundle` pins.
    pub fn new(bundle: &BundleRef) -> Self {
        Self {
            hasher: Sha256::new(),
            received: 0,
            size: bundle.size,
            sha256: bundle.sha256.clone(),
        }
    }

    /// Takes the next `chunk`; refused as soon as the bundle runs over its size.
    pub fn add(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.received > self.size {
            return Err(Refusal::SizeMismatch {
                expected: self.size,
                actual: self.received,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The bundle's size, once it is complete and has the pinned digest.
    pub fn finish(self) -> Result<u64, Refusal> {
        if self.received != self.size {
            return Err(Refusal::SizeMismatch {
                expected: self.size,
                actual: self.received,
            });
        }
        let actual = format!("{:x}", self.hasher.finalize());
        if actual != self.sha256 {
            return Err(Refusal::DigestMismatch {
                expected: self.sha256,
                actual,
            });
        }
        Ok(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(bytes: &[u8]) -> BundleRef {
        BundleRef {
            path: "bundle.tar".into(),
            sha256: format!("{:x}", Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn only_the_pinned_bytes_pass() {
        let bundle = pinned(b"hello world");
        let mut check = BundleCheck::new(&bundle);
        check.add(b"hello ").expect("first");
        check.add(b"world").expect("second");
        assert!(matches!(check.finish(), Ok(11)));

        let mut over = BundleCheck::new(&bundle);
        assert!(matches!(
            over.add(b"hello world!"),
            Err(Refusal::SizeMismatch { actual: 12, .. })
        ));
        let mut short = BundleCheck::new(&bundle);
        short.add(b"hello").expect("short");
        assert!(matches!(short.finish(), Err(Refusal::SizeMismatch { .. })));
        let mut other = BundleCheck::new(&bundle);
        other.add(b"hellO world").expect("same size");
        assert!(matches!(
            other.finish(),
            Err(Refusal::DigestMismatch { .. })
        ));
    }
}
