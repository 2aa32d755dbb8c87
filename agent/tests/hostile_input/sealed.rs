//! Datagrams from the gossip port: only what is sealed under the cluster key opens, and
//! reassembly stays bounded.

use std::net::SocketAddr;

use proptest::prelude::*;
use shoal_agent::coordinate::fragment::{self, MAX_MESSAGE, PART_HEADER, PENDING, Reassembly};
use shoal_agent::coordinate::seal::{Keyring, NONCE_LEN, OVERHEAD, Refused};

const KEYS: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\
                    ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n";

fn ring() -> Keyring {
    Keyring::parse(KEYS).expect("the test keyring")
}

/// Datagrams: noise, and noise behind the header of the ring's primary key, so cases reach
/// the tag check.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let id: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&ring().primary().id()[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        prop::collection::vec(any::<u8>(), 0..128)
            .prop_map(move |rest| { [&[1u8][..], &id, &rest].concat() }),
    ]
}

fn key_file_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8",
        "AAAA",
        "=",
        "# comment",
        "\n",
        "\r\n",
        " ",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn only_what_the_ring_sealed_opens(
        noise in datagram(),
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        nonce in any::<[u8; NONCE_LEN]>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
        key_text in key_file_text(),
    ) {
        let ring = ring();
        prop_assert!(ring.open("prod", &noise).is_err(), "noise opened");
        if noise.len() < OVERHEAD {
            prop_assert_eq!(ring.open("prod", &noise), Err(Refused::Short));
        }

        let sealed = ring.seal("prod", &plaintext, &nonce);
        prop_assert_eq!(sealed.len(), plaintext.len() + OVERHEAD);
        prop_assert_eq!(ring.open("prod", &sealed), Ok(plaintext.clone()));
        prop_assert_eq!(ring.open("staging", &sealed), Err(Refused::Forged));
        let mut tampered = sealed.clone();
        tampered[flip.index(sealed.len())] ^= 1 << bit;
        prop_assert!(ring.open("prod", &tampered).is_err(), "a changed datagram opened");

        if let Ok(parsed) = Keyring::parse(&key_text) {
            let sealed = parsed.seal("prod", &plaintext, &nonce);
            prop_assert_eq!(parsed.open("prod", &sealed), Ok(plaintext));
        }
    }
}

// Frames of sealed gossip (what opens)

/// Frames: noise, and part headers with small ids, indexes and counts, so parts of one
/// message meet.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            0..3u64,
            0..4u8,
            0..4u8,
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(id, index, count, bytes)| {
                [&[1u8][..], &id.to_be_bytes(), &[index, count], &bytes].concat()
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn reassembly_is_bounded_and_gives_back_what_was_framed(
        frames in prop::collection::vec((frame(), 0..3u16), 0..40),
        message in prop::collection::vec(any::<u8>(), 0..4096),
        room in (PART_HEADER + 1)..2048,
        order in any::<u64>(),
    ) {
        let mut r = Reassembly::default();
        for (frame, peer) in &frames {
            let from = SocketAddr::from(([10, 0, 0, 1], *peer));
            if let Ok(Some(whole)) = r.accept(from, frame) {
                prop_assert!(whole.len() <= MAX_MESSAGE);
            }
            prop_assert!(r.pending() <= PENDING);
        }

        // Framed in rooms of `room` bytes, the parts in a shuffled order give the message back.
        let Ok(mut parts) = fragment::frames(&message, room, 9) else {
            prop_assert!(message.len().div_ceil(room - PART_HEADER) > 255);
            return Ok(());
        };
        prop_assert!(parts.iter().all(|p| p.len() <= room));
        let n = parts.len();
        for i in (1..n).rev() {
            parts.swap(i, (order.rotate_left(i as u32) as usize) % (i + 1));
        }
        let from = SocketAddr::from(([10, 0, 0, 2], 7946));
        let mut r = Reassembly::default();
        for (i, part) in parts.iter().enumerate() {
            let got = r.accept(from, part).expect("our own frames");
            prop_assert_eq!(got.is_some(), i == n - 1, "complete only with the last part");
            if let Some(whole) = got {
                prop_assert_eq!(&*whole, &message[..]);
            }
        }
    }
}
