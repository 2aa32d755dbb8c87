//! Sealed gossip (`coordinate::seal::Keyring`): a datagram from the network opens only if it was
//! sealed under a key of the ring for this mesh. With a fixed keyring, arbitrary bytes never
//! open (the fuzzer does not hold the key) and never panic; the same bytes sealed under the
//! ring open back to themselves, for this mesh only, and not once a byte is changed. The bytes
//! read as a key file parse or are refused without panicking, and a ring they make opens what
//! it seals.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shoal_agent::coordinate::seal::{Keyring, NONCE_LEN, OVERHEAD, Refused, nonce_of};

const MESH: &str = "prod";

/// Two keys: the first seals, both open (a ring in the middle of a rotation).
fn ring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        Keyring::parse(
            "# fuzzing keys\n\
             AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\
             ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n",
        )
        .expect("the fixed keyring")
    })
}

fuzz_target!(|data: &[u8]| {
    let ring = ring();
    let opened = ring.open(MESH, data);
    assert!(opened.is_err(), "arbitrary bytes opened: {opened:?}");
    if data.len() < OVERHEAD {
        assert_eq!(opened, Err(Refused::Short));
    }

    let mut nonce = [0; NONCE_LEN];
    for (n, b) in nonce.iter_mut().zip(data.iter().rev()) {
        *n = *b;
    }
    let sealed = ring.seal(MESH, data, &nonce);
    assert_eq!(sealed.len(), data.len() + OVERHEAD);
    assert_eq!(nonce_of(&sealed), Some(nonce));
    assert_eq!(ring.open(MESH, &sealed).as_deref(), Ok(data));
    assert_eq!(ring.open("staging", &sealed), Err(Refused::Forged));
    let mut tampered = sealed.clone();
    let at = usize::from(data.first().copied().unwrap_or(0)) % tampered.len();
    tampered[at] ^= 0x01;
    assert!(
        ring.open(MESH, &tampered).is_err(),
        "byte {at} changed and it opened"
    );

    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = Keyring::parse(text)
    {
        let sealed = parsed.seal(MESH, b"ping", &nonce);
        assert_eq!(parsed.open(MESH, &sealed).as_deref(), Ok(&b"ping"[..]));
    }
});
