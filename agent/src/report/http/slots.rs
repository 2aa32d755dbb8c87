//! Who holds the status endpoint's connections: at most so many in all and so many per client
//! address. When a new connection finds no room, the oldest connection that is not answering a
//! request right now is asked to close (gracefully: a response being sent is finished first),
//! so clients that open connections and then say nothing cannot keep anyone else out.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The connections the endpoint holds.
#[derive(Debug)]
pub(super) struct Slots {
    max_total: usize,
    max_per_peer: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    next: u64,
    /// By admission order, so the first entry is the oldest.
    slots: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

/// One admitted connection; its place is given back when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

impl Slots {
    pub(super) fn new(max_total: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_peer: max_per_peer.max(1),
            held: Mutex::default(),
        })
    }

    /// Admits a connection from `peer`, making room by evicting the oldest idle connection
    /// (of that peer when it holds its share, else of anyone); `None` when every connection
    /// that would have to go is busy.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let peer = group(peer);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let of_peer = held.slots.values().filter(|e| e.peer == peer).count();
        if of_peer >= self.max_per_peer && !held.evict_oldest_idle(Some(peer)) {
            return None;
        }
        if held.slots.len() >= self.max_total && !held.evict_oldest_idle(None) {
            return None;
        }
        let id = held.next;
        held.next += 1;
        let entry = Entry {
            peer,
            busy: Arc::default(),
            evict: Arc::default(),
        };
        let slot = Slot {
            id,
            slots: Arc::clone(self),
            busy: Arc::clone(&entry.busy),
            evict: Arc::clone(&entry.evict),
        };
        held.slots.insert(id, entry);
        Some(slot)
    }

    /// How many connections are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().map(|h| h.slots.len()).unwrap_or(0)
    }
}

impl Held {
    /// Asks the oldest connection with no request in progress (of `peer`, if given) to close,
    /// and forgets it; false when there is none.
    fn evict_oldest_idle(&mut self, peer: Option<IpAddr>) -> bool {
        let oldest = self
            .slots
            .iter()
            .find(|(_, e)| peer.is_none_or(|p| e.peer == p) && e.busy.load(Ordering::Acquire) == 0);
        let Some((&id, _)) = oldest else {
            return false;
        };
        if let Some(entry) = self.slots.remove(&id) {
            entry.evict.notify_one();
        }
        true
    }
}

impl Slot {
    /// Resolves when the connection is asked to make room for a newer one.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// What marks requests in progress on this connection.
    pub(super) fn requests(&self) -> Requests {
        Requests(Arc::clone(&self.busy))
    }
}

/// Counts the requests in progress on one connection; a busy connection is not evicted.
#[derive(Debug, Clone)]
pub(super) struct Requests(Arc<AtomicUsize>);

impl Requests {
    /// Marks a request in progress until the guard is dropped.
    pub(super) fn start(&self) -> Busy {
        self.0.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(&self.0))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        held.slots.remove(&self.id);
    }
}

/// A request in progress on a connection.
pub(super) struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address a peer's share is counted by: an IPv4 address, or an IPv6 /64 (what one
/// host is usually given).
fn group(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[tokio::test]
    async fn a_full_endpoint_evicts_the_oldest_idle_connection_never_a_busy_one() {
        let slots = Slots::new(2, 2);
        let first = slots.admit(ip("127.0.0.1")).expect("room");
        let second = slots.admit(ip("10.0.0.2")).expect("room");
        let _busy = first.requests().start();
        let third = slots
            .admit(ip("10.0.0.3"))
            .expect("the idle second makes room");
        second.evicted().await;
        assert_eq!(slots.len(), 2);
        let _also_busy = third.requests().start();
        assert!(slots.admit(ip("10.0.0.4")).is_none(), "both busy: no room");
        drop(third);
        assert!(
            slots.admit(ip("10.0.0.4")).is_some(),
            "a closed one's place is free"
        );
    }

    #[tokio::test]
    async fn a_peer_past_its_share_evicts_its_own_oldest() {
        let slots = Slots::new(10, 2);
        let other = slots.admit(ip("10.0.0.9")).expect("room");
        let first = slots.admit(ip("2001:db8::1")).expect("room");
        let _second = slots.admit(ip("2001:db8::2")).expect("room");
        let _third = slots
            .admit(ip("2001:db8::3"))
            .expect("one /64 is one peer: its oldest makes room");
        first.evicted().await;
        let _busy = other.requests().start();
        assert_eq!(slots.len(), 3);
    }
}
