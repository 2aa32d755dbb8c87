//! Signed git tags and their SSH signatures: `split_signed_tag`, then `verify` against a fixed
//! `allowed_signers` that trusts one key (derived from a constant seed, so runs reproduce).
//!
//! The first byte picks the case:
//! - even: the rest is a raw tag object. Splitting and verifying never panic; a split cuts the
//!   bytes in two at the signature marker; and no such bytes verify, since the fuzzer does not
//!   hold the trusted key.
//! - odd: the rest is a tag's payload, which the target signs with the trusted key. The split
//!   gives back exactly that payload and signature, the signature verifies, and it is refused
//!   for another namespace or with one byte of the payload changed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shoal_shared::release::{
    AllowedSigners, GIT_NAMESPACE, RELEASE_NAMESPACE, TagError, split_signed_tag, verify,
};
use ssh_key::private::{Ed25519Keypair, PrivateKey};
use ssh_key::{HashAlg, LineEnding};

const PRINCIPAL: &str = "release@example.com";
const NAME: &str = "v1.0.0";
const MARKER: &[u8] = b"-----BEGIN SSH SIGNATURE-----";

struct Trust {
    key: PrivateKey,
    signers: AllowedSigners,
}

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
        let public = key.public_key().to_openssh().expect("openssh public key");
        let signers = AllowedSigners::parse(&format!(
            "{PRINCIPAL} namespaces=\"git,shoal-release\" {public}\n"
        ))
        .expect("the fixed allowed_signers");
        Trust { key, signers }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    if case % 2 == 0 {
        raw_tag(rest);
    } else {
        self_signed(rest);
    }
});

fn raw_tag(raw: &[u8]) {
    let trust = trust();
    // The signature parser on its own, whatever the bytes.
    let direct = verify(raw, b"payload", GIT_NAMESPACE, &trust.signers, 0);
    assert!(direct.is_err(), "arbitrary bytes verified: {direct:?}");

    let Ok(tag) = split_signed_tag(NAME, raw) else {
        return;
    };
    assert_eq!(
        [tag.payload, tag.signature].concat(),
        raw,
        "the split loses bytes"
    );
    assert!(tag.signature.starts_with(MARKER), "{:?}", tag.signature);
    let at = tag.tagger_time.unwrap_or(0);
    for namespace in [GIT_NAMESPACE, RELEASE_NAMESPACE] {
        let result = verify(tag.signature, tag.payload, namespace, &trust.signers, at);
        assert!(result.is_err(), "a forged tag verified: {result:?}");
    }
}

fn self_signed(payload: &[u8]) {
    let trust = trust();
    let mut payload = payload.to_vec();
    if !payload.ends_with(b"\n") {
        payload.push(b'\n');
    }
    let armored = trust
        .key
        .sign(GIT_NAMESPACE, HashAlg::Sha512, &payload)
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .expect("sign");
    let raw = [payload.as_slice(), armored.as_bytes()].concat();
    let tag = match split_signed_tag(NAME, &raw) {
        Ok(tag) => tag,
        // Only the headers can be wrong: the signature is there and is SSH.
        Err(TagError::Malformed { .. }) => return,
        Err(other) => panic!("a tag ending in an SSH signature is refused as {other:?}"),
    };
    assert_eq!(tag.payload, payload.as_slice());
    assert_eq!(tag.signature, armored.as_bytes());
    let at = tag.tagger_time.unwrap_or(0);
    let signer = verify(
        tag.signature,
        tag.payload,
        GIT_NAMESPACE,
        &trust.signers,
        at,
    )
    .expect("a tag signed by the trusted key verifies");
    assert_eq!(signer.principal, PRINCIPAL);
    assert_eq!(signer.algorithm, "ssh-ed25519");

    let other = verify(
        tag.signature,
        tag.payload,
        RELEASE_NAMESPACE,
        &trust.signers,
        at,
    );
    assert_eq!(other.map_err(|e| e.kind()), Err("wrong_namespace"));

    let mut tampered = payload.clone();
    let at_byte = payload.len() / 2;
    tampered[at_byte] ^= 0x20;
    let forged = verify(tag.signature, &tampered, GIT_NAMESPACE, &trust.signers, at);
    assert_eq!(forged.map_err(|e| e.kind()), Err("bad_signature"));
}
