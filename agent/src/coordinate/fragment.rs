//! Framing for sealed gossip: a chitchat message goes out as one datagram or as several parts.
//!
//! chitchat fills its messages up to 65,507 bytes, the largest UDP payload, and sealing adds
//! 45; `mesh.max_datagram` may ask for smaller datagrams still (for networks that drop IP
//! fragments). So every sealed plaintext is a frame:
//!
//! ```text
//! whole: 0 ‖ message
//! part:  1 ‖ message id (8) ‖ index (1) ‖ count (1) ‖ bytes
//! ```
//!
//! Frames are sealed one by one, so only a key holder can make one; reassembly still bounds
//! what it keeps: at most [`PENDING`] unfinished messages (the oldest is dropped first), none
//! larger than [`MAX_MESSAGE`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// The largest message: what chitchat's own decoder reads in one datagram.
pub const MAX_MESSAGE: usize = 65_507;
/// Frame bytes before a part's bytes.
pub const PART_HEADER: usize = 11;
/// Unfinished messages kept at once, from all peers.
pub const PENDING: usize = 16;

const WHOLE: u8 = 0;
const PART: u8 = 1;

/// A message that cannot be framed in `room` bytes a frame: over [`MAX_MESSAGE`], over 255
/// parts, or a room too small for a part header.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// A frame no shoal agent sends.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadFrame {
    #[error("an empty frame")]
    Empty,
    #[error("frame kind {0}")]
    Kind(u8),
    #[error("a part shorter than its header")]
    Short,
    #[error("part {index} of {count}")]
    Index { index: u8, count: u8 },
    #[error("a part whose count differs from its message's other parts")]
    Count,
    #[error("a part received twice")]
    Duplicate,
    #[error("a message over {MAX_MESSAGE} bytes")]
    Oversized,
}

/// The frames of `message`, each at most `room` bytes; `id` names the message's parts.
pub fn frames(message: &[u8], room: usize, id: u64) -> Result<Vec<Vec<u8>>, TooLarge> {
    if message.len() > MAX_MESSAGE {
        return Err(TooLarge);
    }
    if message.len() < room {
        let mut whole = Vec::with_capacity(1 + message.len());
        whole.push(WHOLE);
        whole.extend_from_slice(message);
        return Ok(vec![whole]);
    }
    let chunk = room
        .checked_sub(PART_HEADER)
        .filter(|c| *c > 0)
        .ok_or(TooLarge)?;
    let count = u8::try_from(message.len().div_ceil(chunk)).map_err(|_| TooLarge)?;
    Ok(message
        .chunks(chunk)
        .zip(0u8..)
        .map(|(bytes, index)| {
            let mut part = Vec::with_capacity(PART_HEADER + bytes.len());
            part.push(PART);
            part.extend_from_slice(&id.to_be_bytes());
            part.extend_from_slice(&[index, count]);
            part.extend_from_slice(bytes);
            part
        })
        .collect())
}

/// Messages whose parts have not all arrived.
#[derive(Debug, Default)]
pub struct Reassembly {
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct Pending {
    from: SocketAddr,
    id: u64,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
}

impl Reassembly {
    /// Takes one opened frame from `from`: the whole message when it is complete.
    pub fn accept<'a>(
        &mut self,
        from: SocketAddr,
        frame: &'a [u8],
    ) -> Result<Option<Cow<'a, [u8]>>, BadFrame> {
        let (&kind, rest) = frame.split_first().ok_or(BadFrame::Empty)?;
        match kind {
            WHOLE if rest.len() <= MAX_MESSAGE => Ok(Some(Cow::Borrowed(rest))),
            WHOLE => Err(BadFrame::Oversized),
            PART => self.part(from, rest).map(|done| done.map(Cow::Owned)),
            other => Err(BadFrame::Kind(other)),
        }
    }

    fn part(&mut self, from: SocketAddr, rest: &[u8]) -> Result<Option<Vec<u8>>, BadFrame> {
        let (header, bytes) = rest
            .split_first_chunk::<{ PART_HEADER - 1 }>()
            .ok_or(BadFrame::Short)?;
        let [i0, i1, i2, i3, i4, i5, i6, i7, index, count] = *header;
        let id = u64::from_be_bytes([i0, i1, i2, i3, i4, i5, i6, i7]);
        if index >= count {
            return Err(BadFrame::Index { index, count });
        }
        let at = match self.find(from, id) {
            Some(at) => at,
            None => {
                if self.pending.len() >= PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(Pending {
                    from,
                    id,
                    parts: vec![None; usize::from(count)],
                    bytes: 0,
                });
                self.pending.len() - 1
            }
        };
        let pending = &mut self.pending[at];
        let refused = if pending.parts.len() != usize::from(count) {
            Some(BadFrame::Count)
        } else if pending.bytes + bytes.len() > MAX_MESSAGE {
            Some(BadFrame::Oversized)
        } else {
            None
        };
        if let Some(refused) = refused {
            self.pending.remove(at);
            return Err(refused);
        }
        let slot = &mut pending.parts[usize::from(index)];
        if slot.is_some() {
            return Err(BadFrame::Duplicate);
        }
        *slot = Some(bytes.to_vec());
        pending.bytes += bytes.len();
        if pending.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let done = self
            .pending
            .remove(at)
            .map(|p| p.parts.into_iter().flatten().flatten());
        Ok(done.map(Iterator::collect))
    }

    fn find(&self, from: SocketAddr, id: u64) -> Option<usize> {
        self.pending
            .iter()
            .position(|p| p.from == from && p.id == id)
    }

    /// Unfinished messages held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn message(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + len) as u8).collect()
    }

    /// Feeds `frames` in order; the message they make, once, at the end.
    fn reassemble(r: &mut Reassembly, from: SocketAddr, frames: &[Vec<u8>]) -> Vec<u8> {
        let (last, first) = frames.split_last().expect("at least one frame");
        for frame in first {
            assert_eq!(
                r.accept(from, frame),
                Ok(None),
                "not complete before the last"
            );
        }
        r.accept(from, last)
            .expect("valid")
            .expect("complete")
            .into_owned()
    }

    #[test]
    fn messages_cross_whole_or_in_parts_at_every_size_boundary() {
        for room in [512, 1_400, 65_462] {
            let chunk = room - PART_HEADER;
            for len in [
                0,
                1,
                room - 2,
                room - 1,
                room,
                room + 1,
                2 * chunk,
                2 * chunk + 1,
                MAX_MESSAGE,
            ]
            .into_iter()
            .filter(|len| *len <= MAX_MESSAGE)
            {
                let m = message(len);
                let frames = frames(&m, room, 7).expect("frames");
                assert!(
                    frames.iter().all(|f| f.len() <= room),
                    "{len} bytes in rooms of {room}"
                );
                assert_eq!(
                    frames.len() == 1,
                    len < room,
                    "{len} bytes in rooms of {room}"
                );
                let mut r = Reassembly::default();
                assert_eq!(reassemble(&mut r, peer(1), &frames), m);
                assert_eq!(r.pending(), 0);
            }
        }
    }

    #[test]
    fn parts_out_of_order_and_interleaved_between_peers_come_back_apart() {
        let (m1, m2) = (message(3_000), message(2_500));
        let mut f1 = frames(&m1, 1_000, 1).expect("frames");
        let f2 = frames(&m2, 1_000, 1).expect("frames");
        f1.reverse();
        let mut r = Reassembly::default();
        for (a, b) in f1.iter().zip(&f2).take(2) {
            assert_eq!(r.accept(peer(1), a), Ok(None));
            assert_eq!(r.accept(peer(2), b), Ok(None));
        }
        assert_eq!(r.pending(), 2, "the same id from two peers is two messages");
        assert_eq!(reassemble(&mut r, peer(1), &f1[2..]), m1);
        assert_eq!(reassemble(&mut r, peer(2), &f2[2..]), m2);
    }

    #[test]
    fn unfinished_messages_are_bounded_and_the_oldest_goes_first() {
        let mut r = Reassembly::default();
        let all: Vec<_> = (0..PENDING as u64 + 1)
            .map(|id| frames(&message(2_000), 1_000, id).expect("frames"))
            .collect();
        for f in &all {
            assert_eq!(r.accept(peer(1), &f[0]), Ok(None));
        }
        assert_eq!(r.pending(), PENDING);
        // The first message was dropped: its remaining parts start it again, unfinished.
        assert_eq!(r.accept(peer(1), &all[0][1]), Ok(None));
        assert_eq!(r.accept(peer(1), &all[0][2]), Ok(None));
        // The newest is still there and completes.
        let last = all.last().expect("some");
        assert_eq!(reassemble(&mut r, peer(1), &last[1..]), message(2_000));
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut r = Reassembly::default();
        let part = |id: u64, index: u8, count: u8, len: usize| {
            let mut f = vec![PART];
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&[index, count]);
            f.extend(std::iter::repeat_n(0, len));
            f
        };
        assert_eq!(r.accept(peer(1), &[]), Err(BadFrame::Empty));
        assert_eq!(r.accept(peer(1), &[9, 1]), Err(BadFrame::Kind(9)));
        assert_eq!(r.accept(peer(1), &[PART, 0, 0]), Err(BadFrame::Short));
        assert_eq!(
            r.accept(peer(1), &part(1, 2, 2, 5)),
            Err(BadFrame::Index { index: 2, count: 2 })
        );
        assert_eq!(
            r.accept(peer(1), &part(1, 0, 0, 5)),
            Err(BadFrame::Index { index: 0, count: 0 })
        );
        assert_eq!(r.accept(peer(1), &part(2, 0, 3, 5)), Ok(None));
        assert_eq!(
            r.accept(peer(1), &part(2, 0, 3, 5)),
            Err(BadFrame::Duplicate)
        );
        assert_eq!(r.accept(peer(1), &part(2, 1, 4, 5)), Err(BadFrame::Count));
        assert_eq!(
            r.pending(),
            0,
            "a message with conflicting parts is dropped"
        );
        assert_eq!(r.accept(peer(1), &part(3, 0, 3, 40_000)), Ok(None));
        assert_eq!(
            r.accept(peer(1), &part(3, 1, 3, 40_000)),
            Err(BadFrame::Oversized)
        );
        let mut whole = vec![WHOLE];
        whole.extend(std::iter::repeat_n(0, MAX_MESSAGE + 1));
        assert_eq!(r.accept(peer(1), &whole), Err(BadFrame::Oversized));
    }

    #[test]
    fn a_room_too_small_for_the_parts_is_refused() {
        assert_eq!(frames(&message(100), PART_HEADER, 1), Err(TooLarge));
        assert_eq!(frames(&message(MAX_MESSAGE), 200, 1), Err(TooLarge));
        assert_eq!(frames(&message(MAX_MESSAGE + 1), 65_462, 1), Err(TooLarge));
    }
}
