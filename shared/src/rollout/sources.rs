//! Who a host fetches a release's bytes from: the group's members that hold it, before the
//! origin. Every host verifies what it receives as if it came from the origin, so a source is a
//! matter of load, never of trust.
//!
//! Each fetcher asks the holders in its own order, rendezvous hashing on
//! sha256(digest ‖ 0x00 ‖ fetcher ‖ 0x00 ‖ holder), so fetchers spread over the holders instead
//! of all asking the first one. A holder serves a bounded number of copies at once and answers
//! "busy" beyond that; a fetcher that heard "busy" from every holder waits [`BUSY_RETRY`] and
//! asks again, by then of more holders (every host that got the bytes serves them in turn). A
//! holder that served bytes that failed verification, or no longer has them, is not asked
//! again for that release. Only when no holder is left does the fetcher go to the origin.
//!
//! [`Fetch`] is that state machine; the agent's fetcher and the simulator's model of a fleet
//! both run it.

use std::collections::BTreeSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// How many copies a host serves at once unless configured.
pub const DEFAULT_UPLOADS: usize = 2;

/// How often a fetcher whose holders are all busy looks for new holders (it asks a new one at
/// once).
pub const BUSY_RETRY: Duration = Duration::from_millis(500);

/// The longest a fetcher waits before it asks a busy holder again: the wait doubles from
/// [`BUSY_RETRY`] up to this, so a thousand fetchers waiting on a few holders do not flood
/// them with asks.
pub const MAX_BUSY_WAIT: Duration = Duration::from_secs(4);

/// The rank of `holder` in `me`'s order for `digest`.
fn rank(digest: &str, me: &str, holder: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(digest)
        .chain_update([0])
        .chain_update(me)
        .chain_update([0])
        .chain_update(holder)
        .finalize()
        .into()
}

/// The holders of `digest` in the order `me` asks them.
pub fn ask_order<'a>(digest: &str, me: &str, holders: &[&'a str]) -> Vec<&'a str> {
    let mut ranked: Vec<([u8; 32], &'a str)> = holders
        .iter()
        .filter(|holder| **holder != me)
        .map(|holder| (rank(digest, me, holder), *holder))
        .collect();
    ranked.sort_unstable();
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked.into_iter().map(|(_, holder)| holder).collect()
}

/// What asking one holder came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It served bytes that verified: the fetch is over.
    Served,
    /// It serves as many copies as it may: ask it again after a wait.
    Busy,
    /// It does not have the release (any more): not asked again for it.
    Missing,
    /// Its bytes failed verification, or it could not be reached or spoke nonsense: dropped
    /// for this release.
    Failed,
}

/// What the fetcher does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<'a> {
    /// Ask this holder.
    Ask(&'a str),
    /// Every holder left is busy: wait [`BUSY_RETRY`], then call [`Fetch::next`] again.
    Wait,
    /// No holder is left: fetch from the origin.
    Origin,
}

/// One host's fetch of one release (by digest) from its holders. Holders answer "busy" while
/// they serve all they may: a busy holder is asked again only after a wait that doubles up to
/// [`MAX_BUSY_WAIT`], while a holder not asked yet is asked at once.
#[derive(Debug, Clone)]
pub struct Fetch {
    digest: String,
    me: String,
    /// Holders ever offered, by rank: each is hashed once.
    ranked: Vec<([u8; 32], String)>,
    /// Holders not asked again for this release.
    dropped: BTreeSet<String>,
    /// Holders busy since the busy ones were last asked again.
    busy: BTreeSet<String>,
    /// When the busy ones are asked again (time as the caller counts it).
    retry_at: Option<Duration>,
    /// Waits so far, for the doubling.
    waits: u32,
}

impl Fetch {
    /// A fetch by `me` of the release with `digest`.
    pub fn new(digest: &str, me: &str) -> Self {
        Self {
            digest: digest.to_owned(),
            me: me.to_owned(),
            ranked: Vec::new(),
            dropped: BTreeSet::new(),
            busy: BTreeSet::new(),
            retry_at: None,
            waits: 0,
        }
    }

    /// What to do next at time `now` (any clock that only goes forward), with `holders` the
    /// members that now say they hold the release, in any order. A holder once given stays a
    /// candidate until it answers "missing" or fails (a holder that died fails at once), so
    /// a caller may give only the holders new since its last call.
    pub fn next(&mut self, holders: &[&str], now: Duration) -> Next<'_> {
        for holder in holders {
            if *holder == self.me {
                continue;
            }
            let rank = rank(&self.digest, &self.me, holder);
            let at = self.ranked.partition_point(|(r, _)| *r < rank);
            if self.ranked.get(at).is_none_or(|(r, _)| *r != rank) {
                self.ranked.insert(at, (rank, (*holder).to_owned()));
            }
        }
        if self.retry_at.is_some_and(|at| now >= at) {
            self.busy.clear();
            self.retry_at = None;
        }
        let mut left = self
            .ranked
            .iter()
            .map(|(_, holder)| holder.as_str())
            .filter(|holder| !self.dropped.contains(*holder))
            .peekable();
        if left.peek().is_none() {
            return Next::Origin;
        }
        match left.find(|holder| !self.busy.contains(*holder)) {
            Some(holder) => Next::Ask(holder),
            None => {
                if self.retry_at.is_none() {
                    let wait = BUSY_RETRY.saturating_mul(1 << self.waits.min(3));
                    self.retry_at = Some(now + wait.min(MAX_BUSY_WAIT));
                    self.waits += 1;
                }
                Next::Wait
            }
        }
    }

    /// When the busy holders are asked again, if they all were.
    pub fn retry_at(&self) -> Option<Duration> {
        self.retry_at
    }

    /// Takes what asking `holder` came to.
    pub fn answered(&mut self, holder: &str, answer: Answer) {
        match answer {
            Answer::Served => {}
            Answer::Busy => {
                self.busy.insert(holder.to_owned());
            }
            Answer::Missing | Answer::Failed => {
                self.dropped.insert(holder.to_owned());
            }
        }
    }

    /// The holders dropped for this release.
    pub fn dropped(&self) -> impl Iterator<Item = &str> {
        self.dropped.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("host-{i:03}")).collect()
    }

    #[test]
    fn fetchers_spread_over_the_holders() {
        let holders = names(10);
        let holders: Vec<&str> = holders.iter().map(String::as_str).collect();
        let fetchers = names(1000);
        let mut first = std::collections::BTreeMap::<&str, usize>::new();
        for fetcher in &fetchers {
            let fetcher = format!("f-{fetcher}");
            let order = ask_order("sha256:ab", &fetcher, &holders);
            assert_eq!(order.len(), 10);
            *first.entry(order[0]).or_default() += 1;
        }
        // 1000 fetchers over 10 holders: each is some fetcher's first choice, none is
        // everybody's.
        assert_eq!(first.len(), 10);
        assert!(
            first.values().all(|&n| (50..=150).contains(&n)),
            "{first:?}"
        );
    }

    #[test]
    fn a_host_never_asks_itself_and_the_order_is_stable() {
        let holders = ["a", "b", "c", "b"];
        let order = ask_order("d", "b", &holders);
        assert_eq!(order.len(), 2);
        assert!(!order.contains(&"b"));
        assert_eq!(order, ask_order("d", "b", &["c", "a"]));
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn busy_holders_make_the_fetcher_wait_and_bad_ones_are_dropped() {
        let holders = ["a", "b", "c"];
        let mut fetch = Fetch::new("d", "me");
        let mut asked = Vec::new();
        for answer in [Answer::Busy, Answer::Failed, Answer::Busy] {
            let Next::Ask(holder) = fetch.next(&holders, T0) else {
                panic!("expected a holder to ask");
            };
            let holder = holder.to_owned();
            fetch.answered(&holder, answer);
            asked.push(holder);
        }
        asked.sort_unstable();
        assert_eq!(asked, holders, "each holder asked once per round");
        assert_eq!(fetch.next(&holders, T0), Next::Wait);
        // Busy ones are not asked again before the wait is over; a new holder is, at once.
        assert_eq!(fetch.next(&holders, BUSY_RETRY / 2), Next::Wait);
        assert_eq!(
            fetch.next(&["z", "a", "b", "c"], BUSY_RETRY / 2),
            Next::Ask("z")
        );
        fetch.answered("z", Answer::Missing);
        // After the wait the two busy ones are asked again, never the failed one.
        let failed: Vec<String> = fetch.dropped().map(str::to_owned).collect();
        assert_eq!(failed.len(), 2);
        for _ in 0..2 {
            let Next::Ask(holder) = fetch.next(&holders, BUSY_RETRY) else {
                panic!("expected a holder to ask");
            };
            let holder = holder.to_owned();
            assert!(!failed.contains(&holder));
            fetch.answered(&holder, Answer::Missing);
        }
        assert_eq!(fetch.next(&holders, BUSY_RETRY), Next::Origin);
        // A new holder is asked before the origin; one given before is not new.
        assert_eq!(fetch.next(&["y", "a"], BUSY_RETRY), Next::Ask("y"));
        fetch.answered("y", Answer::Failed);
        assert_eq!(fetch.next(&["y"], BUSY_RETRY), Next::Origin);
    }

    #[test]
    fn the_wait_for_busy_holders_doubles_up_to_a_bound() {
        let mut fetch = Fetch::new("d", "me");
        let mut now = T0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            assert_eq!(fetch.next(&["a"], now), Next::Ask("a"));
            fetch.answered("a", Answer::Busy);
            assert_eq!(fetch.next(&["a"], now), Next::Wait);
            let mut waited = Duration::ZERO;
            while fetch.next(&["a"], now + waited) == Next::Wait {
                waited += Duration::from_millis(100);
            }
            waits.push(waited.as_millis());
            now += waited;
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn with_no_holder_the_origin_serves() {
        let mut fetch = Fetch::new("d", "me");
        assert_eq!(fetch.next(&[], T0), Next::Origin);
        assert_eq!(fetch.next(&["me"], T0), Next::Origin);
    }
}
