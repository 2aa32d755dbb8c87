//! Sealed gossip (`coordinate::seal::Keyring`): a datagram from the network opens only if it was
//! sealed under a key of the ring for this mesh. With a fixed keyring, arbitrary bytes never
//! open (the fuzzer does not hold the key) and never panic; the same bytes sealed under the
//! ring open back to themselves, for this mesh only, and not once a byte is changed. The bytes
//! read as a key file parse or are refused without panicking, and a ring they make opens what
//! it seals.
//!
//! What opens is a frame (`coordinate::fragment`): the same bytes read as a run of frames
//! from two peers never panic reassembly, which keeps at most `PENDING` unfinished messages and
//! never gives one over `MAX_MESSAGE`; and the bytes framed in parts of a size they pick come
//! back whole from their parts in reverse order.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

use shoal_agent::coordinate::fragment::{self, MAX_MESSAGE, PART_HEADER, PENDING, Reassembly};
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

    reassembly(data);
});

/// `data` as frames (each a length byte, then that many bytes), alternately from two peers;
/// then `data` framed and put back together.
fn reassembly(data: &[u8]) {
    let peers = [
        SocketAddr::from(([10, 0, 0, 1], 7946)),
        SocketAddr::from(([10, 0, 0, 2], 7946)),
    ];
    let mut r = Reassembly::default();
    let mut rest = data;
    let mut turn = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, next) = tail.split_at(usize::from(len).min(tail.len()));
        if let Ok(Some(message)) = r.accept(peers[turn % 2], frame) {
            assert!(message.len() <= MAX_MESSAGE);
        }
        assert!(r.pending() <= PENDING);
        rest = next;
        turn += 1;
    }

    let room = usize::from(u16::from_le_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]))
    .max(PART_HEADER + 1);
    let frames = match fragment::frames(data, room, 7) {
        Ok(frames) => frames,
        Err(_) => {
            assert!(
                data.len().div_ceil(room - PART_HEADER) > 255,
                "{} bytes in rooms of {room}",
                data.len()
            );
            return;
        }
    };
    assert!(frames.iter().all(|f| f.len() <= room));
    let mut r = Reassembly::default();
    let mut whole = None;
    for frame in frames.iter().rev() {
        assert!(whole.is_none(), "complete before the last part");
        whole = r
            .accept(peers[0], frame)
            .expect("our own frames")
            .map(|m| m.into_owned());
    }
    assert_eq!(whole.as_deref(), Some(data));
}
