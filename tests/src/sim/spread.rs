//! A model of how one release's bytes spread through a fleet: every host fetching them from the
//! peers that already hold them (the agent's own `rollout::sources::Fetch`, with
//! `rollout::pollers` choosing the few hosts that look at the origin), against every host
//! fetching them from the origin. A model, not a measurement: links are fluids shared max-min
//! fairly, asks are answered at once, and gossip reaches every host after the same delay.
//!
//! The pollers see the release at a uniformly random moment of one poll interval, or earlier
//! from gossip; every other host hears of it when gossip announces the first holder, a gossip
//! delay after that holder's copy verified, and of each later holder likewise. Every host then
//! runs its `Fetch` over the holders it heard of; an ask takes no time.
//!
//! Time is in microseconds, bytes and rates are integers: a seed replays the same run
//! everywhere. Rates change only when a transfer starts or ends; then every transfer's rate is
//! filled progressively over the links it crosses (the sender's uplink, shared by its uploads,
//! the receiver's downlink, the origin's uplink), and the run jumps to the next completion or
//! timed event.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use shoal_shared::rollout::pollers::{DEFAULT_POLLERS, pollers};
use shoal_shared::rollout::sources::{Answer, BUSY_RETRY, DEFAULT_UPLOADS, Fetch, Next};

use super::rng::Rng;

/// One gigabit per second, in bytes per second.
pub const GBIT: u64 = 125_000_000;

/// A run stops here, whoever still lacks the release.
pub const HORIZON: Duration = Duration::from_secs(24 * 3600);

/// Where hosts fetch the release's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// From the hosts that hold them, as `Fetch` decides; each holder serves at most `uploads`
    /// copies at once, and only `pollers` hosts look at the origin.
    Peers {
        /// Copies a holder serves at once.
        uploads: usize,
        /// Hosts that poll the origin.
        pollers: usize,
    },
    /// Every host polls the origin and fetches from it as soon as it sees the release.
    Origin,
}

/// One release spreading through one group: what a run is made of.
#[derive(Debug, Clone)]
pub struct Spread {
    /// Hosts in the group.
    pub hosts: usize,
    /// The release's size in bytes.
    pub size: u64,
    /// Where hosts fetch it.
    pub sources: Sources,
    /// Each host's uplink, bytes per second.
    pub host_up: u64,
    /// Each host's downlink, bytes per second.
    pub host_down: u64,
    /// The origin's uplink, bytes per second.
    pub origin_up: u64,
    /// A poller sees the release at a uniformly random moment within this of publication.
    pub poll_interval: Duration,
    /// From a host holding the release to every host knowing it does.
    pub gossip_delay: Duration,
    /// The first this many hosts to hold the release serve bytes that fail verification, once
    /// sent in full (their own copy verified).
    pub bad_holders: usize,
    /// Draws the pollers' moments, the order hosts hear gossip, the release's digest.
    pub seed: u64,
}

impl Spread {
    /// `hosts` fetching a 1 GB release from their peers as the agent does by default, over
    /// 1 Gbit/s host links and a 10 Gbit/s origin.
    pub fn peers(hosts: usize, seed: u64) -> Self {
        Self {
            hosts,
            size: 1_000_000_000,
            sources: Sources::Peers {
                uploads: DEFAULT_UPLOADS,
                pollers: DEFAULT_POLLERS,
            },
            host_up: GBIT,
            host_down: GBIT,
            origin_up: 10 * GBIT,
            poll_interval: Duration::from_secs(30),
            gossip_delay: Duration::from_secs(3),
            bad_holders: 0,
            seed,
        }
    }

    /// The same fleet and links, every host fetching from the origin.
    pub fn origin_only(hosts: usize, seed: u64) -> Self {
        Self {
            sources: Sources::Origin,
            ..Self::peers(hosts, seed)
        }
    }

    /// Runs the model to the moment nothing is left to happen.
    pub fn run(&self) -> Outcome {
        let mut world = World::new(self);
        world.run();
        world.outcome
    }
}

/// Where a copy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The origin.
    Origin,
    /// The host of this index.
    Host(usize),
}

/// What a run came to. Times are from the release's publication.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Each host's name, as it polls and fetches under.
    pub names: Vec<String>,
    /// When each host held verified bytes, and where they came from.
    pub held: Vec<Option<(Duration, Source)>>,
    /// The hosts that served bad bytes.
    pub bad: Vec<usize>,
    /// Copies the origin served.
    pub origin_copies: u64,
    /// Bytes the origin served.
    pub origin_bytes: u64,
    /// Copies each host served in all.
    pub served: Vec<u64>,
    /// Copies each host served at most at once.
    pub most_at_once: Vec<usize>,
    /// Asks a holder answered "busy".
    pub busy: u64,
    /// Copies that failed verification.
    pub failed: u64,
    /// Events and completions the run went through.
    pub steps: u64,
}

impl Outcome {
    /// When each host held the release, sorted; `None` if one never did.
    pub fn times(&self) -> Option<Vec<Duration>> {
        let mut times: Vec<Duration> = self
            .held
            .iter()
            .map(|h| h.map(|(at, _)| at))
            .collect::<Option<_>>()?;
        times.sort_unstable();
        Some(times)
    }

    /// The time by which `percent` of the hosts held the release (nearest rank).
    pub fn percentile(&self, percent: usize) -> Option<Duration> {
        let times = self.times()?;
        let rank = (times.len() * percent).div_ceil(100).max(1);
        times.get(rank - 1).copied()
    }

    /// The most copies one host served in all, and at once.
    pub fn most_served(&self) -> (u64, usize) {
        let total = self.served.iter().copied().max().unwrap_or(0);
        let at_once = self.most_at_once.iter().copied().max().unwrap_or(0);
        (total, at_once)
    }
}

/// Max-min fair rates of `flows`, each crossing the links it names, over links of capacity
/// `caps`: progressive filling, the most constrained link first. Rates are written to `rates`.
pub fn fair_rates(caps: &[u64], flows: &[[usize; 2]], rates: &mut Vec<u64>) {
    let mut left = caps.to_vec();
    let mut users = vec![0_u64; caps.len()];
    for link in flows.iter().flatten() {
        users[*link] += 1;
    }
    // The flows of each link, packed: link l's are crossing[start[l]..start[l + 1]].
    let mut start = vec![0; caps.len() + 1];
    for (l, n) in users.iter().enumerate() {
        start[l + 1] = start[l] + *n as usize;
    }
    let mut fill = start.clone();
    let mut crossing = vec![0; start[caps.len()]];
    for (f, links) in flows.iter().enumerate() {
        for link in links {
            crossing[fill[*link]] = f;
            fill[*link] += 1;
        }
    }
    // A link's fair share only grows as other links fix their flows, so an entry in the heap
    // is at most its link's share: a stale one is refreshed when it comes out.
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..caps.len())
        .filter(|l| users[*l] > 0)
        .map(|l| Reverse((left[l] / users[l], l)))
        .collect();
    rates.clear();
    rates.resize(flows.len(), 0);
    let mut fixed = vec![false; flows.len()];
    while let Some(Reverse((share, link))) = heap.pop() {
        if users[link] == 0 {
            continue;
        }
        let now = left[link] / users[link];
        if now != share {
            heap.push(Reverse((now, link)));
            continue;
        }
        for &f in &crossing[start[link]..start[link + 1]] {
            if std::mem::replace(&mut fixed[f], true) {
                continue;
            }
            rates[f] = share;
            for other in flows[f] {
                left[other] -= share;
                users[other] -= 1;
            }
        }
    }
}

/// A timed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The host sees the release: a poller on the origin, any host from gossip.
    Learn(usize),
    /// The host asks again after every holder was busy.
    Retry(usize),
    /// Gossip says the host holds the release.
    Announce(usize),
}

/// A copy on its way.
#[derive(Debug, Clone)]
struct Transfer {
    from: Source,
    to: usize,
    /// Bytes left as of `World::updated`.
    left: u64,
    rate: u64,
    /// When it completes at this rate.
    ends: u64,
}

#[derive(Debug, Default)]
struct Host {
    /// Set once it knows of the release, until it holds it.
    fetch: Option<Fetch>,
    /// How many of `World::visible` its fetch was given.
    given: usize,
    aware: bool,
    serving: usize,
    /// It serves bad bytes.
    bad: bool,
}

struct World<'s> {
    spread: &'s Spread,
    digest: String,
    index: HashMap<String, usize>,
    hosts: Vec<Host>,
    /// The holders gossip announced, in the order it did.
    visible: Vec<usize>,
    /// Uploads under way from holders.
    uploading: usize,
    transfers: Vec<Transfer>,
    /// Link capacities: the origin's uplink, then each host's uplink, then each downlink.
    caps: Vec<u64>,
    rates: Vec<u64>,
    now: u64,
    /// When the transfers' bytes left were last brought up to date.
    updated: u64,
    dirty: bool,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    heard: bool,
    holders: usize,
    rng: Rng,
    outcome: Outcome,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<'s> World<'s> {
    fn new(spread: &'s Spread) -> Self {
        let n = spread.hosts;
        let names: Vec<String> = (0..n).map(|i| format!("host-{i:04}")).collect();
        let mut rng = Rng::new(spread.seed);
        let mut caps = vec![spread.origin_up];
        caps.extend(std::iter::repeat_n(spread.host_up, n));
        caps.extend(std::iter::repeat_n(spread.host_down, n));
        assert!(caps.iter().all(|c| *c > 0), "a link without capacity");
        let mut world = Self {
            spread,
            digest: format!("sha256:{:016x}", rng.next_u64()),
            index: names.iter().cloned().zip(0..).collect(),
            hosts: (0..n).map(|_| Host::default()).collect(),
            visible: Vec::new(),
            uploading: 0,
            transfers: Vec::new(),
            caps,
            rates: Vec::new(),
            now: 0,
            updated: 0,
            dirty: false,
            queue: BinaryHeap::new(),
            seq: 0,
            heard: false,
            holders: 0,
            rng,
            outcome: Outcome {
                held: vec![None; n],
                served: vec![0; n],
                most_at_once: vec![0; n],
                ..Outcome::default()
            },
        };
        let count = match spread.sources {
            Sources::Peers { pollers, .. } => pollers,
            Sources::Origin => n,
        };
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut polling: Vec<usize> = pollers("web", &all, count)
            .into_iter()
            .map(|name| world.index[name])
            .collect();
        polling.sort_unstable();
        let interval = micros(spread.poll_interval);
        for host in polling {
            let at = world.rng.below(interval);
            world.at(at, Event::Learn(host));
        }
        world.outcome.names = names;
        world
    }

    fn at(&mut self, at: u64, event: Event) {
        self.queue.push(Reverse((at, self.seq, event)));
        self.seq += 1;
    }

    fn run(&mut self) {
        let horizon = micros(HORIZON);
        loop {
            if self.dirty {
                self.refill();
            }
            let event = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let ends = self.transfers.iter().map(|t| t.ends).min();
            let Some(next) = event.into_iter().chain(ends).min() else {
                return;
            };
            if next > horizon {
                return;
            }
            if ends == Some(next) {
                self.complete(next);
            } else if let Some(Reverse((at, _, event))) = self.queue.pop() {
                self.now = at;
                self.handle(event);
            }
            self.outcome.steps += 1;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Learn(host) => {
                let host_state = &mut self.hosts[host];
                if host_state.aware {
                    return;
                }
                host_state.aware = true;
                if self.spread.sources == Sources::Origin {
                    self.start(Source::Origin, host);
                    return;
                }
                let name = &self.outcome.names[host];
                host_state.fetch = Some(Fetch::new(&self.digest, name));
                self.ask(host);
            }
            Event::Retry(host) => self.ask(host),
            Event::Announce(host) => {
                self.visible.push(host);
                if !std::mem::replace(&mut self.heard, true) {
                    // Gossip of the first holder: every host hears of the release, in an
                    // order of the seed's.
                    let mut unaware: Vec<usize> = (0..self.hosts.len())
                        .filter(|h| !self.hosts[*h].aware)
                        .collect();
                    for i in (1..unaware.len()).rev() {
                        unaware.swap(i, self.rng.index(i + 1));
                    }
                    for host in unaware {
                        self.at(self.now, Event::Learn(host));
                    }
                }
            }
        }
    }

    /// `host` asks the holders, as its `Fetch` says, until one serves, every one was busy, or
    /// none is left.
    fn ask(&mut self, host: usize) {
        let Sources::Peers { uploads, .. } = self.spread.sources else {
            return;
        };
        let mut fetch = self.hosts[host].fetch.take().expect("a fetch under way");
        let now = Duration::from_micros(self.now);
        // Holders once given stay the fetch's candidates: only the new ones are given. With no
        // new holder and the busy ones not due to be asked again, nothing is asked.
        let given = self.hosts[host].given;
        let due = fetch.retry_at().is_none_or(|at| now >= at);
        let picked = if given == self.visible.len() && !due && given > 0 {
            None
        } else {
            let names = &self.outcome.names;
            let new: Vec<&str> = self.visible[given..]
                .iter()
                .map(|h| names[*h].as_str())
                .collect();
            self.hosts[host].given = self.visible.len();
            let mut busy = 0;
            let mut holders = new;
            let picked = loop {
                match fetch.next(&holders, now) {
                    Next::Ask(name) => {
                        let holder = self.index[name];
                        if self.hosts[holder].serving < uploads {
                            break Some(Source::Host(holder));
                        }
                        let name = name.to_owned();
                        fetch.answered(&name, Answer::Busy);
                        busy += 1;
                    }
                    Next::Wait => break None,
                    Next::Origin => break Some(Source::Origin),
                }
                holders = Vec::new();
            };
            self.outcome.busy += busy as u64;
            picked
        };
        self.hosts[host].fetch = Some(fetch);
        match picked {
            Some(from) => self.start(from, host),
            None => self.at(self.now + micros(BUSY_RETRY), Event::Retry(host)),
        }
    }

    fn start(&mut self, from: Source, to: usize) {
        match from {
            Source::Origin => {
                self.outcome.origin_copies += 1;
                self.outcome.origin_bytes += self.spread.size;
            }
            Source::Host(holder) => {
                let host = &mut self.hosts[holder];
                host.serving += 1;
                self.uploading += 1;
                self.outcome.served[holder] += 1;
                let most = &mut self.outcome.most_at_once[holder];
                *most = (*most).max(host.serving);
            }
        }
        self.transfers.push(Transfer {
            from,
            to,
            left: self.spread.size,
            rate: 0,
            ends: u64::MAX,
        });
        self.dirty = true;
    }

    /// Brings every transfer's bytes up to now and shares the links out again.
    fn refill(&mut self) {
        let elapsed = u128::from(self.now - self.updated);
        let n = self.spread.hosts;
        let flows: Vec<[usize; 2]> = self
            .transfers
            .iter_mut()
            .map(|t| {
                let sent = u128::from(t.rate) * elapsed / 1_000_000;
                t.left -= u64::try_from(sent).unwrap_or(u64::MAX).min(t.left);
                let up = match t.from {
                    Source::Origin => 0,
                    Source::Host(h) => 1 + h,
                };
                [up, 1 + n + t.to]
            })
            .collect();
        fair_rates(&self.caps, &flows, &mut self.rates);
        for (t, rate) in self.transfers.iter_mut().zip(&self.rates) {
            t.rate = *rate;
            let micros = (u128::from(t.left) * 1_000_000).div_ceil(u128::from(*rate));
            t.ends = self.now + u64::try_from(micros).unwrap_or(u64::MAX);
        }
        self.updated = self.now;
        self.dirty = false;
    }

    /// The transfers that end at `at` end.
    fn complete(&mut self, at: u64) {
        self.now = at;
        let (done, going): (Vec<Transfer>, Vec<Transfer>) = std::mem::take(&mut self.transfers)
            .into_iter()
            .partition(|t| t.ends <= at);
        self.transfers = going;
        self.dirty = true;
        for t in done {
            self.arrived(t.from, t.to);
        }
    }

    fn arrived(&mut self, from: Source, to: usize) {
        let mut bad = false;
        if let Source::Host(holder) = from {
            self.hosts[holder].serving -= 1;
            self.uploading -= 1;
            bad = self.hosts[holder].bad;
            let name = &self.outcome.names[holder];
            let answer = if bad { Answer::Failed } else { Answer::Served };
            if let Some(fetch) = self.hosts[to].fetch.as_mut() {
                fetch.answered(name, answer);
            }
        }
        if bad {
            self.outcome.failed += 1;
            self.ask(to);
            return;
        }
        let at = Duration::from_micros(self.now);
        self.outcome.held[to] = Some((at, from));
        let host = &mut self.hosts[to];
        host.fetch = None;
        host.bad = self.holders < self.spread.bad_holders;
        if host.bad {
            self.outcome.bad.push(to);
        }
        self.holders += 1;
        self.at(
            self.now + micros(self.spread.gossip_delay),
            Event::Announce(to),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holders_uplink_is_shared_by_its_uploads_and_the_origin_by_all() {
        let mut rates = Vec::new();
        // Link 0: a 10-unit origin; 1: a 4-unit uplink; 2..=6: downlinks of 3.
        let caps = [10, 4, 3, 3, 3, 3, 3];
        fair_rates(&caps, &[[1, 2], [1, 3]], &mut rates);
        assert_eq!(rates, [2, 2]);
        fair_rates(&caps, &[[0, 2], [0, 3], [0, 4]], &mut rates);
        assert_eq!(rates, [3, 3, 3], "each bound by its downlink");
        fair_rates(&caps, &[[0, 2], [0, 3], [0, 4], [0, 5], [1, 6]], &mut rates);
        assert_eq!(rates, [2, 2, 2, 2, 3]);
        // What a flow bound elsewhere leaves is shared by the others.
        let caps = [10, 1, 8, 8];
        fair_rates(&caps, &[[0, 1], [0, 2], [0, 3]], &mut rates);
        assert_eq!(rates, [1, 4, 4]);
    }
}
