//! The gossip socket with every datagram sealed under the cluster key ([`super::seal`]).
//!
//! chitchat 0.13 keeps its wire encoding private (quickwit-oss/chitchat#207): a `Socket` gets
//! and gives `ChitchatEnvelope`s, not bytes. So the bytes are made and read by chitchat's own
//! `UdpSocket`s on loopback, relayed through sockets of ours:
//!
//! ```text
//! send:  envelope -> encoder (127.0.0.1) -> tap (127.0.0.1) -> seal -> public socket -> peer
//! recv:  peer -> public socket -> open -> feeder (127.0.0.1) -> decoder (127.0.0.1) -> envelope
//! ```
//!
//! Each message is framed ([`super::fragment`]): one sealed datagram when it fits in
//! `mesh.max_datagram`, else parts sealed one by one and put back together before chitchat
//! reads them.
//!
//! Loopback datagrams from anyone but our own relay socket are ignored (their source address
//! is checked; on loopback it cannot be forged without root). Receiving runs in a task of its
//! own, one datagram at a time, so each decoded envelope is paired with the peer that sent it,
//! and chitchat can cancel a `recv` without losing that pairing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chitchat::transport::{RecvOutcome, SendOutcome, Socket};
use chitchat::{ChitchatEnvelope, ChitchatMessage, ProtocolVersion};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::MeshError;
use super::fragment::{self, Reassembly};
use super::relay::{Decoded, Decoder, Encoder, chitchat_loopback, loopback};
use super::seal::{Keyring, NONCE_LEN, OVERHEAD, nonce_of, sent_at_of, unix_ms};

/// The largest UDP payload, and the default `mesh.max_datagram`.
pub const MAX_DATAGRAM: usize = 65_507;
/// The smallest `mesh.max_datagram`: what every IPv4 host must take in one piece (576 bytes),
/// less the IP and UDP headers.
pub const MIN_DATAGRAM: usize = 548;
/// At most one log line per reason in this time.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How many recent nonces are remembered to drop exact replays. Older replays are refused by
/// their age past [`MAX_AGE`]; a replay younger than that which a key holder's flood pushed
/// out of the window reaches chitchat, whose versioned state does not go back for it.
pub const REPLAY_WINDOW: usize = 16_384;
/// The oldest a datagram may be, by its `sent at` against this host's clock.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How far ahead of this host's clock a datagram's `sent at` may be.
pub const MAX_AHEAD: Duration = Duration::from_secs(60);

/// Datagrams dropped, by reason: the four of [`super::seal::Refused`], `replayed` (a nonce seen
/// lately), `stale` (sent more than [`MAX_AGE`] ago), `early` (sent more than [`MAX_AHEAD`]
/// ahead of this clock), `before_start` (sent before this agent started: a replay, or a
/// datagram in flight across the restart), `undecodable` (opened, but not a well-formed frame or
/// chitchat message: only a key holder can send those) and `too_large` (ours, unsent: a message
/// over 255 parts). `stale` and `early` from a live peer mean the two clocks disagree.
#[derive(Debug, Default)]
pub struct Dropped {
    counts: Mutex<HashMap<&'static str, (u64, Option<Instant>)>>,
}

impl Dropped {
    /// Counts one datagram dropped for `reason`, and logs it unless a line for the same reason
    /// was logged within the last 10 s (then the next line says how many were not logged).
    fn count(&self, reason: &'static str, from: SocketAddr) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let (count, logged) = counts.entry(reason).or_insert((0, None));
        *count += 1;
        let now = Instant::now();
        if logged.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            *logged = Some(now);
            warn!(%from, reason, total = *count, "gossip datagram dropped");
        }
    }

    /// Every reason's count so far.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let Ok(counts) = self.counts.lock() else {
            return Vec::new();
        };
        let mut all: Vec<_> = counts.iter().map(|(r, (n, _))| (*r, *n)).collect();
        all.sort_unstable();
        all
    }
}

/// What the public socket sent and received: every sealed datagram as it went on the wire
/// (received ones counted before they are opened, so the dropped ones are in it too).
#[derive(Debug, Default)]
pub struct Traffic {
    sent: Direction,
    received: Direction,
}

#[derive(Debug, Default)]
struct Direction {
    datagrams: AtomicU64,
    bytes: AtomicU64,
}

impl Direction {
    fn count(&self, bytes: usize) {
        self.datagrams.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn get(&self) -> Flow {
        Flow {
            datagrams: self.datagrams.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Datagrams and bytes in one direction so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub datagrams: u64,
    pub bytes: u64,
}

impl Traffic {
    /// What was sent so far.
    pub fn sent(&self) -> Flow {
        self.sent.get()
    }

    /// What was received so far.
    pub fn received(&self) -> Flow {
        self.received.get()
    }
}

/// The sealed socket chitchat gossips through.
pub(super) struct SealedSocket {
    public: Arc<UdpSocket>,
    encoder: Encoder,
    /// The plaintext one sealed datagram carries: `mesh.max_datagram` less the seal.
    room: usize,
    /// Names the next message sent in parts.
    next_id: u64,
    keyring: Arc<Keyring>,
    mesh: Arc<str>,
    dropped: Arc<Dropped>,
    traffic: Arc<Traffic>,
    inbox: mpsc::Receiver<RecvOutcome>,
    receiver: JoinHandle<()>,
}

impl Drop for SealedSocket {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Binds the public gossip socket at `listen`, sealing for the mesh `mesh` with `keyring` in
/// datagrams of at most `max_datagram` bytes; what it drops and what it carries are counted in
/// `dropped` and `traffic`.
pub(super) async fn bind(
    listen: SocketAddr,
    keyring: Arc<Keyring>,
    mesh: &str,
    max_datagram: usize,
    dropped: Arc<Dropped>,
    traffic: Arc<Traffic>,
) -> Result<Box<dyn Socket>, MeshError> {
    let public = UdpSocket::bind(listen)
        .await
        .map_err(|source| MeshError::Bind {
            addr: listen,
            source,
        })?;
    let relay = async {
        let (encoder, encoder_addr) = chitchat_loopback().await?;
        let tap = loopback().await?;
        let (decoder, decoder_addr) = chitchat_loopback().await?;
        let feeder = loopback().await?;
        Ok::<_, std::io::Error>((encoder, encoder_addr, tap, decoder, decoder_addr, feeder))
    };
    let (encoder, encoder_addr, tap, decoder, decoder_addr, feeder) =
        relay.await.map_err(|source| MeshError::Bind {
            addr: (Ipv4Addr::LOCALHOST, 0).into(),
            source,
        })?;
    let tap_addr = tap.local_addr().map_err(|source| MeshError::Bind {
        addr: listen,
        source,
    })?;
    let mut encoder = Encoder::new(encoder, encoder_addr, tap, tap_addr);
    let marker = encoder
        .encode(ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::BadCluster,
        })
        .await
        .map(<[u8]>::to_vec)
        .map_err(|source| MeshError::Spawn {
            source: source.into(),
        })?;
    let decoder =
        Decoder::new(decoder, decoder_addr, feeder, marker).map_err(|source| MeshError::Bind {
            addr: (Ipv4Addr::LOCALHOST, 0).into(),
            source,
        })?;
    let public = Arc::new(public);
    let mesh: Arc<str> = Arc::from(mesh);
    let (inbox_tx, inbox) = mpsc::channel(64);
    let receiver = tokio::spawn(receive(Receiver {
        public: Arc::clone(&public),
        decoder,
        keyring: Arc::clone(&keyring),
        mesh: Arc::clone(&mesh),
        dropped: Arc::clone(&dropped),
        traffic: Arc::clone(&traffic),
        inbox: inbox_tx,
        started: unix_ms(),
    }));
    Ok(Box::new(SealedSocket {
        public,
        encoder,
        room: max_datagram.clamp(MIN_DATAGRAM, MAX_DATAGRAM) - OVERHEAD,
        next_id: first_id().map_err(|source| MeshError::Spawn {
            source: Box::new(source),
        })?,
        keyring,
        mesh,
        dropped,
        traffic,
        inbox,
        receiver,
    }))
}

/// A random first message id, so a restarted peer's parts never join its earlier ones.
fn first_id() -> std::io::Result<u64> {
    let [a, b, c, d, e, f, g, h, ..] = super::seal::nonce()?;
    Ok(u64::from_be_bytes([a, b, c, d, e, f, g, h]))
}

/// What the receiving task owns.
struct Receiver {
    public: Arc<UdpSocket>,
    decoder: Decoder,
    keyring: Arc<Keyring>,
    mesh: Arc<str>,
    dropped: Arc<Dropped>,
    traffic: Arc<Traffic>,
    inbox: mpsc::Sender<RecvOutcome>,
    /// When this socket was bound (Unix milliseconds): nothing sent before is fresh.
    started: u64,
}

/// Why a datagram that opened is too old or too new to be taken, if it is; `sent_at` and
/// `now` are Unix milliseconds.
fn untimely(sent_at: u64, now: u64, started: u64) -> Option<&'static str> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if sent_at.saturating_add(ms(MAX_AGE)) < now {
        Some("stale")
    } else if sent_at > now.saturating_add(ms(MAX_AHEAD)) {
        Some("early")
    } else if sent_at < started {
        Some("before_start")
    } else {
        None
    }
}

/// Opens each datagram from the public socket and hands chitchat what it decodes, paired with
/// the peer that sent it; ends when the socket is dropped or broken.
async fn receive(mut r: Receiver) {
    let mut buf = vec![0; MAX_DATAGRAM];
    let mut recent = Recent::default();
    let mut reassembly = Reassembly::default();
    loop {
        let (len, from) = match r.public.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                warn!(error = %e, "gossip socket broken");
                return;
            }
        };
        r.traffic.received.count(len);
        let plaintext = match r.keyring.open(&r.mesh, &buf[..len]) {
            Ok(plaintext) => plaintext,
            Err(refused) => {
                r.dropped.count(refused.as_str(), from);
                continue;
            }
        };
        let sent_at = sent_at_of(&buf[..len]).unwrap_or(0);
        if let Some(reason) = untimely(sent_at, unix_ms(), r.started) {
            r.dropped.count(reason, from);
            continue;
        }
        if !nonce_of(&buf[..len]).is_some_and(|nonce| recent.first_time(nonce)) {
            r.dropped.count("replayed", from);
            continue;
        }
        let message = match reassembly.accept(from, &plaintext) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(_) => {
                r.dropped.count("undecodable", from);
                continue;
            }
        };
        match r.decoder.decode(&message).await {
            Decoded::Envelope(mut outcome) => {
                outcome.from_addr = from;
                outcome.num_bytes_received = message.len();
                if r.inbox.send(outcome).await.is_err() {
                    return;
                }
            }
            Decoded::Undecodable => r.dropped.count("undecodable", from),
            Decoded::Broken => return,
        }
    }
}

/// The last `REPLAY_WINDOW` nonces seen.
#[derive(Default)]
struct Recent {
    seen: HashSet<[u8; NONCE_LEN]>,
    order: VecDeque<[u8; NONCE_LEN]>,
}

impl Recent {
    /// Remembers `nonce`; false when it was already seen.
    fn first_time(&mut self, nonce: [u8; NONCE_LEN]) -> bool {
        if !self.seen.insert(nonce) {
            return false;
        }
        self.order.push_back(nonce);
        if self.order.len() > REPLAY_WINDOW
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}

fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
    )
}

impl SealedSocket {
    async fn send_sealed(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let message = self.encoder.encode(envelope).await?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let Ok(frames) = fragment::frames(message, self.room, id) else {
            self.dropped.count("too_large", to);
            return Ok(SendOutcome { num_bytes_sent: 0 });
        };
        let mut num_bytes_sent = 0;
        for frame in frames {
            let sealed = self
                .keyring
                .seal(&self.mesh, &frame, &super::seal::nonce()?);
            let sent = self.public.send_to(&sealed, to).await?;
            self.traffic.sent.count(sent);
            num_bytes_sent += sent;
        }
        Ok(SendOutcome { num_bytes_sent })
    }

    async fn recv_opened(&mut self) -> anyhow::Result<RecvOutcome> {
        self.inbox
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the gossip socket stopped receiving"))
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// Written out as `#[async_trait]` would expand it (see `udp.rs`).
impl Socket for SealedSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.public.local_addr()?)
    }

    fn send<'life0, 'async_trait>(
        &'life0 mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> Boxed<'async_trait, SendOutcome>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send_sealed(to, envelope))
    }

    fn recv<'life0, 'async_trait>(&'life0 mut self) -> Boxed<'async_trait, RecvOutcome>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.recv_opened())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_taken_only_within_its_age_and_after_this_agent_started() {
        let started = 1_000_000_000;
        let now = started + 120_000;
        assert_eq!(untimely(now - 1_000, now, started), None);
        assert_eq!(untimely(now - 60_000, now, started), None, "at the limit");
        assert_eq!(untimely(now - 60_001, now, started), Some("stale"));
        assert_eq!(untimely(now + 60_001, now, started), Some("early"));
        assert_eq!(untimely(started + 1, started + 2, started), None);
        assert_eq!(
            untimely(started - 1, started + 2, started),
            Some("before_start"),
            "a replay of what was sent before a restart"
        );
        assert_eq!(untimely(0, now, started), Some("stale"));
        assert_eq!(untimely(u64::MAX, now, started), Some("early"));
    }
}
