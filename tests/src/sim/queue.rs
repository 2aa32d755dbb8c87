//! The queue of timed events, ordered by time, then by insertion, so a run is a pure function
//! of its seed. The heap holds one packed integer per event (time, sequence number, slot) and
//! the events wait in a slab: a heap of the events themselves was a fifth of the simulator's
//! time in the debug builds tests run in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events of type `E`, ordered by time, then by insertion.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<u128>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `at` (milliseconds; runs stay far below 2^32).
    pub fn push(&mut self, at: u64, event: E) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let at = u128::from(at.min(u64::from(u32::MAX)));
        let key = (at << 96) | (u128::from(self.seq) << 32) | u128::from(slot);
        self.seq += 1;
        self.heap.push(Reverse(key));
    }

    /// The next event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let Reverse(key) = self.heap.pop()?;
        let slot = (key & u128::from(u32::MAX)) as u32;
        let at = (key >> 96) as u64;
        self.free.push(slot);
        self.slots[slot as usize].take().map(|e| (at, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_insertion() {
        let mut q = Queue::default();
        q.push(5, "b");
        q.push(100_000, "far");
        q.push(5, "c");
        q.push(1, "a");
        assert_eq!(q.pop(), Some((1, "a")));
        q.push(100_000, "far, later");
        q.push(5, "d");
        let order: Vec<(u64, &str)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (5, "b"),
                (5, "c"),
                (5, "d"),
                (100_000, "far"),
                (100_000, "far, later")
            ]
        );
    }
}
