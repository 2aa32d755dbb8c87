//! Every value a peer publishes over gossip, through `gossip::decode` for each type, and the key
//! schema (`split_group_key`): whatever a peer sends, decoding answers without panicking, and
//! whatever decodes, encodes and decodes back to the same value (when the encoding fits the
//! size peers accept).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_shared::gossip::{
    self, DecodeError, GroupState, Groups, Halt, MAX_VALUE, Promote, Resume, group_prefix,
    halt_key, promote_key, resume_key, split_group_key, state_key,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    round_trips::<Groups>(&text);
    round_trips::<GroupState>(&text);
    round_trips::<Halt>(&text);
    round_trips::<Resume>(&text);
    round_trips::<Promote>(&text);

    if let Some((group, kind)) = split_group_key(&text) {
        assert!(!group.is_empty() && !kind.is_empty() && !kind.contains(':'));
        assert_eq!(format!("{}{kind}", group_prefix(group)), text);
    }
    if !text.is_empty() {
        for (key, kind) in [
            (state_key(&text), "state"),
            (halt_key(&text), "halt"),
            (resume_key(&text), "resume"),
            (promote_key(&text), "promote"),
        ] {
            assert_eq!(split_group_key(&key), Some((&*text, kind)), "{key}");
        }
    }
});

fn round_trips<T: DeserializeOwned + Serialize + PartialEq + Debug>(text: &str) {
    let Ok(value) = gossip::decode::<T>(text) else {
        return;
    };
    let encoded = gossip::encode(&value);
    if encoded.len() > MAX_VALUE {
        assert_eq!(
            gossip::decode::<T>(&encoded),
            Err(DecodeError::TooLong(encoded.len()))
        );
        return;
    }
    assert_eq!(
        gossip::decode::<T>(&encoded),
        Ok(value),
        "{text} -> {encoded}"
    );
}
