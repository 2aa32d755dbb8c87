//! What peers ask each other and answer, one JSON frame each way, over a [`Sealed`] stream.
//! A request asks for a content-addressed blob, or for what a group's channel verified of one
//! release (a store release's exact manifest and signature, a git tag's objects); the answer
//! says what follows, or that the peer is busy or does not have it.
//!
//! [`Sealed`]: super::stream::Sealed

use serde::{Deserialize, Serialize};

pub use crate::channel::store::Offered;

/// The largest request or answer frame's JSON.
pub const MAX_MESSAGE: usize = super::stream::MAX_FRAME;

/// What a peer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// A store bundle by its sha256 (lowercase hex).
    Blob {
        /// The bundle's sha256.
        sha256: String,
    },
    /// The manifest and signature of store release `version` of `group`, exactly as the
    /// origin served them when they verified.
    Store {
        /// The group.
        group: String,
        /// The release's version name.
        version: String,
    },
    /// A pack of git tag `tag` of `group` and every object it needs that is not reachable
    /// from `have` (commit ids the asker already has).
    Git {
        /// The group.
        group: String,
        /// The tag's name.
        tag: String,
        /// Commits the asker has.
        #[serde(default)]
        have: Vec<String>,
    },
}

/// A peer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// `size` bytes follow, in frames.
    Bytes {
        /// How many.
        size: u64,
    },
    /// Frames follow as they are made, up to an empty frame (a git pack of the tag object
    /// `tag`); a stream cut before the empty frame failed.
    Stream {
        /// The tag object's id.
        tag: String,
    },
    /// A store release.
    Store(Offered),
    /// It serves as many copies as it may now.
    Busy,
    /// It does not have that.
    Missing,
    /// It will not answer that request.
    Refused {
        /// Why, in one sentence.
        reason: String,
    },
}

/// Encodes a message as one frame.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// Decodes one frame; `None` when it is not such a message.
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Option<T> {
    serde_json::from_slice(frame).ok()
}

/// Whether `text` is a sha256 as blobs are named: 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `text` is a git object id: 40 or 64 lowercase hex digits.
pub fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_and_strangers_do_not() {
        let request = Request::Git {
            group: "web".into(),
            tag: "v1.0.0".into(),
            have: vec!["ab".repeat(20)],
        };
        assert_eq!(decode::<Request>(&encode(&request)), Some(request));
        let answer = Answer::Bytes { size: 7 };
        assert_eq!(decode::<Answer>(&encode(&answer)), Some(answer));
        assert_eq!(
            decode::<Request>(br#"{"blob":{"sha256":"x","more":1}}"#),
            None
        );
        assert_eq!(decode::<Answer>(b"busy"), None);
        assert_eq!(decode::<Answer>(br#""busy""#), Some(Answer::Busy));
    }

    #[test]
    fn names_are_checked_before_they_touch_a_path() {
        assert!(is_sha256(&"0a".repeat(32)));
        for bad in ["", "../../etc/passwd", &"0A".repeat(32), &"0a".repeat(33)] {
            assert!(!is_sha256(bad), "{bad}");
        }
        assert!(is_object_id(&"f".repeat(40)));
        assert!(!is_object_id("HEAD"));
    }
}
