//! The fetching side: asking one peer for a store release, a bundle or a git pack, and going
//! through a group's holders of a release in the order [`sources`] gives until one serves
//! bytes that check out. Nothing here trusts a peer: a bundle is checked against the sha256
//! and size its verified manifest pins as it arrives and lands in the cache only whole; a store
//! release or a pack goes to the channel, which verifies it as from the origin.
//!
//! [`sources`]: shoal_shared::rollout::sources

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::release::manifest::BundleRef;
use shoal_shared::rollout::sources::{self, Answer as Outcome, Next};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::{info, warn};

use super::stream::{Sealed, StreamError};
use super::wire::{self, Answer, Request};
use crate::channel::cache::{Incoming, ReleaseCache};
use crate::channel::store::Offered;
use crate::coordinate::Mesh;
use crate::coordinate::seal::Keyring;
use crate::report::Metrics;
use crate::verify::bundle::BundleCheck;

/// How long connecting to a peer and hearing its answer may take.
const ANSWER: Duration = Duration::from_secs(10);
/// How long a peer may send nothing in the middle of a transfer.
const STALL: Duration = Duration::from_secs(30);
/// How long a host waits for busy holders before it goes to the origin after all.
pub const PATIENCE: Duration = Duration::from_secs(600);
/// The largest git pack taken from a peer.
pub const MAX_PACK: u64 = 8 << 30;

/// A member that says it holds a release, and where it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its node id.
    pub node: String,
    /// Its release service.
    pub addr: SocketAddr,
}

/// What asking one peer came to.
#[derive(Debug)]
pub enum Got<T> {
    /// What it served (still to be verified, for a store release or a pack).
    Served(T),
    /// It serves as many copies as it may.
    Busy,
    /// It does not have it.
    Missing,
    /// It failed: why, for the log, and the reason counted.
    Failed(&'static str, String),
    /// This host could not keep what it served (its disk is full, its cache unwritable): no
    /// fault of the holder's.
    Local(String),
}

impl<T> Got<T> {
    /// The outcome as [`sources::Fetch`] takes it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Served(_) => Outcome::Served,
            Self::Busy => Outcome::Busy,
            Self::Missing => Outcome::Missing,
            Self::Failed(..) | Self::Local(_) => Outcome::Failed,
        }
    }
}

/// Going through the holders of one release ([`Peers::next_holder`]).
pub struct Asking {
    group: String,
    digest: String,
    fetch: sources::Fetch,
    started: tokio::time::Instant,
}

impl Asking {
    /// What asking `holder` came to.
    pub fn answered(&mut self, holder: &Holder, outcome: Outcome) {
        self.fetch.answered(&holder.node, outcome);
    }
}

/// This host's side of fetching from peers.
#[derive(Clone)]
pub struct Peers {
    ring: Arc<Keyring>,
    mesh: Arc<Mesh>,
    cluster: String,
    metrics: Metrics,
    /// Until then this start has not heard the mesh yet: who holds what is not known.
    heard_by: tokio::time::Instant,
    /// A gossip round.
    round: Duration,
    /// Set once the holders first looked for stopped changing (see [`Peers::holders`]).
    settled: Arc<tokio::sync::OnceCell<()>>,
}

/// At most this many rounds past the warmup are waited for the holders to settle.
const SETTLE_ROUNDS: u32 = 10;

impl Peers {
    /// Fetching from the members of `mesh` (named `cluster`), sealed with `ring`; `warmup`
    /// is how long a start listens to gossip before it knows who holds what, and `round` a
    /// gossip round.
    pub fn new(
        ring: Arc<Keyring>,
        mesh: Arc<Mesh>,
        cluster: String,
        metrics: Metrics,
        warmup: Duration,
        round: Duration,
    ) -> Self {
        Self {
            ring,
            mesh,
            cluster,
            metrics,
            heard_by: tokio::time::Instant::now() + warmup,
            round,
            settled: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// This host's node id.
    pub fn node(&self) -> &str {
        self.mesh.node()
    }

    /// The live members of `group` that say they hold the release with `digest`
    /// (`sha256:…`, `git:…`): their target or what they run.
    ///
    /// Right after a start, this waits until the mesh has been heard: the warmup, then, the
    /// first time, until the holders stop changing for a round (at most [`SETTLE_ROUNDS`]), so
    /// a host that starts under load asks in its whole order, not the first holders it heard.
    pub async fn holders(&self, group: &str, digest: &str) -> Vec<Holder> {
        tokio::time::sleep_until(self.heard_by).await;
        self.settled
            .get_or_init(|| async {
                let mut seen = self.holders_now(group, digest).await;
                for _ in 0..SETTLE_ROUNDS {
                    tokio::time::sleep(self.round).await;
                    let now = self.holders_now(group, digest).await;
                    if now == seen {
                        break;
                    }
                    seen = now;
                }
            })
            .await;
        self.holders_now(group, digest).await
    }

    /// The holders as the mesh shows them now.
    async fn holders_now(&self, group: &str, digest: &str) -> Vec<Holder> {
        let snapshot = self.mesh.group(group).await;
        snapshot
            .peers
            .iter()
            // Right after a start the failure detector has not judged anyone alive yet; a
            // peer heard lately is worth asking.
            .filter(|p| p.alive || p.recent)
            .filter(|p| {
                p.state.as_ref().is_some_and(|s| {
                    s.digest.as_deref() == Some(digest)
                        || s.target.as_ref().is_some_and(|t| t.digest == digest)
                })
            })
            .filter_map(|p| {
                Some(Holder {
                    node: p.node.clone(),
                    addr: p.share?,
                })
            })
            .collect()
    }

    /// Opens a stream to `addr`, sends `request` and reads the answer.
    async fn ask(
        &self,
        addr: SocketAddr,
        request: &Request,
    ) -> Result<(Sealed<TcpStream>, Answer), (&'static str, String)> {
        let opened = timeout(ANSWER, async {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            let mut stream = Sealed::connect(tcp, &self.ring, &self.cluster).await?;
            stream.send(&wire::encode(request)).await?;
            stream.flush().await?;
            let answer = stream.recv().await?;
            Ok::<_, StreamError>((stream, answer))
        })
        .await;
        let (stream, frame) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(StreamError::Io(e))) => return Err(("unreachable", e.to_string())),
            Ok(Err(e)) => return Err(("forged", e.to_string())),
            Err(_) => return Err(("unreachable", "no answer in time".to_owned())),
        };
        match wire::decode::<Answer>(&frame) {
            Some(answer) => Ok((stream, answer)),
            None => Err(("protocol", "an answer that is not one".to_owned())),
        }
    }

    /// Asks `holder` for store release `version` of `group`.
    pub async fn store_release(&self, holder: &Holder, group: &str, version: &str) -> Got<Offered> {
        let request = Request::Store {
            group: group.to_owned(),
            version: version.to_owned(),
        };
        match self.ask(holder.addr, &request).await {
            Ok((_, Answer::Store(offered))) => Got::Served(offered),
            Ok((_, answer)) => unexpected(answer),
            Err((reason, why)) => Got::Failed(reason, why),
        }
    }

    /// Asks `holder` for the bundle `bundle` pins and writes it into `cache` if it checks out.
    pub async fn blob(
        &self,
        holder: &Holder,
        bundle: &BundleRef,
        cache: &ReleaseCache,
    ) -> Got<PathBuf> {
        let request = Request::Blob {
            sha256: bundle.sha256.clone(),
        };
        let (mut stream, size) = match self.ask(holder.addr, &request).await {
            Ok((stream, Answer::Bytes { size, .. })) => (stream, size),
            Ok((_, answer)) => return unexpected(answer),
            Err((reason, why)) => return Got::Failed(reason, why),
        };
        if size != bundle.size {
            return Got::Failed(
                "size_mismatch",
                format!("offers {size} bytes, release.yaml pins {}", bundle.size),
            );
        }
        let mut file = match Incoming::create(cache, &bundle.sha256, size) {
            Ok(file) => file,
            Err(e) => {
                let root = cache.root().display();
                return Got::Local(format!("cannot start a download in {root}: {e}"));
            }
        };
        let mut check = BundleCheck::new(bundle);
        let mut left = size;
        while left > 0 {
            let frame = match next_frame(&mut stream).await {
                Ok(frame) if !frame.is_empty() => frame,
                Ok(_) => return Got::Failed("protocol", "an empty frame".to_owned()),
                Err((reason, why)) => return Got::Failed(reason, why),
            };
            left = left.saturating_sub(frame.len() as u64);
            if let Err(refusal) = check.add(&frame) {
                return Got::Failed(refusal.kind(), refusal.to_string());
            }
            if let Err(e) = file.write(&frame) {
                return Got::Local(format!("cannot write {}: {e}", file.temp().display()));
            }
        }
        if let Err(refusal) = check.finish() {
            return Got::Failed(refusal.kind(), refusal.to_string());
        }
        match file.land() {
            Ok(path) => Got::Served(path),
            Err((action, path, e)) => {
                Got::Local(format!("cannot {action} {}: {e}", path.display()))
            }
        }
    }

    /// Asks `holder` for a pack of tag `tag` of `group`, given the commits this host `have`s;
    /// the pack lands in a temporary file under `cache`, with the tag object's id.
    pub async fn git_pack(
        &self,
        holder: &Holder,
        group: &str,
        tag: &str,
        have: Vec<String>,
        cache: &ReleaseCache,
    ) -> Got<(tempfile::TempPath, String)> {
        let request = Request::Git {
            group: group.to_owned(),
            tag: tag.to_owned(),
            have,
        };
        let (mut stream, tag_oid) = match self.ask(holder.addr, &request).await {
            Ok((stream, Answer::Stream { tag })) if wire::is_object_id(&tag) => (stream, tag),
            Ok((_, answer)) => return unexpected(answer),
            Err((reason, why)) => return Got::Failed(reason, why),
        };
        let created = cache.temp_path("pack").and_then(|path| {
            let file = std::fs::File::create_new(&path)?;
            Ok((file, tempfile::TempPath::try_from_path(path)?))
        });
        let (file, path) = match created {
            Ok(created) => created,
            Err(e) => {
                let root = cache.root().display();
                return Got::Local(format!("cannot start a download in {root}: {e}"));
            }
        };
        let mut file = tokio::fs::File::from_std(file);
        let mut received: u64 = 0;
        loop {
            let frame = match next_frame(&mut stream).await {
                Ok(frame) if frame.is_empty() => break,
                Ok(frame) => frame,
                Err((reason, why)) => return Got::Failed(reason, why),
            };
            received += frame.len() as u64;
            if received > MAX_PACK {
                return Got::Failed(
                    "too_large",
                    format!("sends a pack of over {MAX_PACK} bytes"),
                );
            }
            if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut file, &frame).await {
                return Got::Local(format!("cannot write {}: {e}", path.display()));
            }
        }
        if let Err(e) = tokio::io::AsyncWriteExt::flush(&mut file).await {
            return Got::Local(format!("cannot write {}: {e}", path.display()));
        }
        Got::Served((path, tag_oid))
    }

    /// Brings the bundle `bundle` pins into `cache` from the holders of `digest` in `group`,
    /// each asked in this host's order, busy ones again after a wait; `Ok(true)` once it is
    /// there, `Ok(false)` when no holder is left (or they stayed busy for [`PATIENCE`]) and the
    /// origin must serve. `Err` says why this host cannot keep the bundle (no room for it, its
    /// cache unwritable): neither another holder nor the origin is asked then, as the bundle's
    /// size is the one its signed manifest pins, not a holder's choice.
    pub async fn fetch_blob(
        &self,
        group: &str,
        digest: &str,
        bundle: &BundleRef,
        cache: &ReleaseCache,
    ) -> Result<bool, String> {
        cache
            .room_for(bundle.size)
            .map_err(|e| format!("cannot fetch into {}: {e}", cache.root().display()))?;
        let mut asking = self.asking(group, digest);
        while let Some(holder) = self.next_holder(&mut asking).await {
            let got = self.blob(&holder, bundle, cache).await;
            tracing::debug!(peer = %holder.node, answer = ?got.outcome(), "asked a peer for a bundle");
            asking.answered(&holder, got.outcome());
            match got {
                Got::Served(_) => {
                    info!(peer = %holder.node, bytes = bundle.size, "bundle fetched from a peer");
                    self.metrics.release_fetched(group, "peer", bundle.size);
                    return Ok(true);
                }
                Got::Failed(reason, why) => self.bad_peer(group, &holder.node, reason, &why),
                Got::Local(why) => return Err(why),
                Got::Busy | Got::Missing => {}
            }
        }
        Ok(false)
    }

    /// Starts going through the holders of the release with `digest` in `group`.
    pub fn asking(&self, group: &str, digest: &str) -> Asking {
        Asking {
            group: group.to_owned(),
            digest: digest.to_owned(),
            fetch: sources::Fetch::new(digest, self.node()),
            started: tokio::time::Instant::now(),
        }
    }

    /// The next holder to ask, in this host's order; while every holder left is busy it waits
    /// and asks again. `None` when no holder is left, or they stayed busy for [`PATIENCE`]: the
    /// origin is to be asked.
    pub async fn next_holder(&self, asking: &mut Asking) -> Option<Holder> {
        loop {
            let mut holders = self.holders(&asking.group, &asking.digest).await;
            let names: Vec<&str> = holders.iter().map(|h| h.node.as_str()).collect();
            let elapsed = asking.started.elapsed();
            let asked = match asking.fetch.next(&names, elapsed) {
                Next::Origin => {
                    info!(
                        digest = %asking.digest,
                        holders = names.len(),
                        "no peer left to serve the release; asking the origin"
                    );
                    return None;
                }
                Next::Wait if elapsed >= PATIENCE => {
                    warn!(
                        digest = %asking.digest,
                        "peers that hold the release stayed busy; asking the origin"
                    );
                    return None;
                }
                Next::Wait => {
                    tokio::time::sleep(sources::BUSY_RETRY).await;
                    continue;
                }
                Next::Ask(node) => node.to_owned(),
            };
            if let Some(at) = holders.iter().position(|h| h.node == asked) {
                return Some(holders.swap_remove(at));
            }
        }
    }

    /// Logs and counts a peer dropped for a release of `group`.
    pub fn bad_peer(&self, group: &str, peer: &str, reason: &str, why: &str) {
        warn!(
            group,
            peer,
            reason,
            error = why,
            "a peer's release bytes failed; asking another"
        );
        self.metrics.bad_peer(group, reason);
    }
}

/// The next frame of a transfer, or why there is none: `cut` (closed, stalled for [`STALL`])
/// or `forged` (it did not open).
async fn next_frame(stream: &mut Sealed<TcpStream>) -> Result<Vec<u8>, (&'static str, String)> {
    match timeout(STALL, stream.recv()).await {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(StreamError::Io(e))) => Err(("cut", e.to_string())),
        Ok(Err(e)) => Err(("forged", e.to_string())),
        Err(_) => Err(("cut", "stalled".to_owned())),
    }
}

fn unexpected<T>(answer: Answer) -> Got<T> {
    match answer {
        Answer::Busy => Got::Busy,
        Answer::Missing => Got::Missing,
        Answer::Refused { reason } => Got::Failed("refused", reason),
        Answer::Bytes { .. } | Answer::Store(_) | Answer::Stream { .. } => {
            Got::Failed("protocol", "an answer to another request".to_owned())
        }
    }
}
