//! The service that gives peers what this host verified: one request per connection, over a
//! [`Sealed`] stream. Bounded: at most [`MAX_CONNECTIONS`] connections at once, a client that
//! does not prove it holds the key within [`HANDSHAKE`] is dropped, a bundle or pack takes one
//! of `uploads` slots (a client beyond that hears "busy"), every frame must leave within
//! [`STALL`], and all uploads together keep under `upload_rate`. It serves while the host
//! deploys: nothing here waits for the group's loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use super::stream::{MAX_FRAME, Sealed, StreamError};
use super::wire::{self, Answer, Request};
use crate::channel::cache::ReleaseCache;
use crate::channel::store;
use crate::config::{Channel, Group};
use crate::coordinate::seal::Keyring;
use crate::report::Metrics;

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has to open the stream and send its request.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long one frame may take to leave: a client that stops reading gives its slot back.
pub const STALL: Duration = Duration::from_secs(30);

/// The groups this host serves and their channels; a reload replaces them.
#[derive(Debug, Clone, Default)]
pub struct Catalog(Arc<RwLock<BTreeMap<String, Channel>>>);

impl Catalog {
    /// The groups of the config now.
    pub fn set(&self, groups: &[Group]) {
        let channels = groups
            .iter()
            .map(|g| (g.name.clone(), g.channel.clone()))
            .collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = channels;
    }

    fn channel(&self, group: &str) -> Option<Channel> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
    }
}

/// What the server needs.
pub struct Server {
    /// The cluster keys.
    pub ring: Arc<Keyring>,
    /// The mesh name, bound into every stream.
    pub mesh: String,
    /// The agent's data dir (channel records, git mirrors).
    pub data_dir: PathBuf,
    /// The release cache (store bundles).
    pub cache: ReleaseCache,
    /// The groups served.
    pub catalog: Catalog,
    /// Copies served at once.
    pub uploads: usize,
    /// Bytes a second for all uploads together.
    pub upload_rate: Option<u64>,
    /// Where results are counted.
    pub metrics: Metrics,
}

/// Serves until `stop` completes.
pub async fn run(server: Server, listener: TcpListener, stop: impl Future<Output = ()>) {
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(server.uploads)),
        connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        pace: Pace::new(server.upload_rate),
        server,
    });
    if let Ok(addr) = listener.local_addr() {
        info!(share.addr = %addr, uploads = shared.server.uploads, "serving verified releases to the mesh's members");
    }
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "cannot accept a peer's connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            shared.server.metrics.share_request("busy");
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let result = shared.connection(tcp).await;
            debug!(peer = %peer, result, "peer request");
            shared.server.metrics.share_request(result);
            drop(permit);
        });
    }
}

struct Shared {
    server: Server,
    slots: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    pace: Pace,
}

impl Shared {
    /// Serves one connection; returns what it came to, as counted.
    async fn connection(&self, tcp: TcpStream) -> &'static str {
        let _ = tcp.set_nodelay(true);
        let opened = timeout(HANDSHAKE, async {
            let mut stream = Sealed::accept(tcp, &self.server.ring, &self.server.mesh).await?;
            let frame = stream.recv().await?;
            Ok::<_, StreamError>((stream, frame))
        })
        .await;
        let (mut stream, frame) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(StreamError::Io(_))) | Err(_) => return "failed",
            Ok(Err(_)) => return "stranger",
        };
        let Some(request) = wire::decode::<Request>(&frame) else {
            let _ = self.answer(&mut stream, &refused("not a request")).await;
            return "refused";
        };
        match self.serve(&mut stream, request).await {
            Ok(result) => result,
            Err(e) => {
                debug!(error = %e, "a peer's request was cut short");
                "failed"
            }
        }
    }

    async fn serve(
        &self,
        stream: &mut Sealed<TcpStream>,
        request: Request,
    ) -> Result<&'static str, StreamError> {
        match request {
            Request::Blob { sha256 } => {
                if !wire::is_sha256(&sha256) {
                    self.answer(stream, &refused("not a sha256")).await?;
                    return Ok("refused");
                }
                let path = self.server.cache.blob_path(&sha256);
                let Ok(file) = tokio::fs::File::open(&path).await else {
                    self.answer(stream, &Answer::Missing).await?;
                    return Ok("missing");
                };
                self.upload(stream, file).await
            }
            Request::Store { group, version } => {
                let Some(Channel::Store(_)) = self.server.catalog.channel(&group) else {
                    self.answer(stream, &Answer::Missing).await?;
                    return Ok("missing");
                };
                let data_dir = self.server.data_dir.clone();
                let offered = tokio::task::spawn_blocking(move || {
                    store::offered(&data_dir, &group, &version)
                })
                .await
                .ok()
                .flatten();
                match offered {
                    Some(offered) => {
                        self.answer(stream, &Answer::Store(offered)).await?;
                        Ok("served")
                    }
                    None => {
                        self.answer(stream, &Answer::Missing).await?;
                        Ok("missing")
                    }
                }
            }
            Request::Git { group, tag, have } => {
                let Some(Channel::Git(source)) = self.server.catalog.channel(&group) else {
                    self.answer(stream, &Answer::Missing).await?;
                    return Ok("missing");
                };
                let mirror = crate::channel::git::mirror_of(&self.server.data_dir, &source);
                let Some(slot) = self.slot() else {
                    self.answer(stream, &Answer::Busy).await?;
                    return Ok("busy");
                };
                match crate::channel::git::pack_for(&mirror, &source, &tag, &have).await {
                    Ok(Some(pack)) => self.stream_pack(stream, pack, slot).await,
                    Ok(None) => {
                        self.answer(stream, &Answer::Missing).await?;
                        Ok("missing")
                    }
                    Err(e) => {
                        warn!(group = %group, tag = %tag, error = %e, "cannot pack a tag for a peer");
                        self.answer(stream, &Answer::Missing).await?;
                        Ok("missing")
                    }
                }
            }
        }
    }

    fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Sends `file` in frames, in one of the upload slots ("busy" when none is free).
    async fn upload(
        &self,
        stream: &mut Sealed<TcpStream>,
        mut file: tokio::fs::File,
    ) -> Result<&'static str, StreamError> {
        let Some(slot) = self.slot() else {
            self.answer(stream, &Answer::Busy).await?;
            return Ok("busy");
        };
        let size = file.metadata().await?.len();
        self.answer(stream, &Answer::Bytes { size }).await?;
        let mut buffer = vec![0; MAX_FRAME];
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left.min(MAX_FRAME as u64)).unwrap_or(MAX_FRAME);
            let read = file.read(&mut buffer[..want]).await?;
            if read == 0 {
                return Err(StreamError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.send_paced(stream, &buffer[..read]).await?;
            left -= read as u64;
        }
        within(stream.flush()).await?;
        drop(slot);
        Ok("served")
    }

    /// Sends a git pack as `git pack-objects` makes it, then the empty frame that ends it; a
    /// pack that fails ends the stream without it.
    async fn stream_pack(
        &self,
        stream: &mut Sealed<TcpStream>,
        mut pack: crate::channel::git::Pack,
        slot: OwnedSemaphorePermit,
    ) -> Result<&'static str, StreamError> {
        self.answer(
            stream,
            &Answer::Stream {
                tag: pack.tag.clone(),
            },
        )
        .await?;
        let mut buffer = vec![0; MAX_FRAME];
        loop {
            let read = within(pack.stdout.read(&mut buffer)).await?;
            if read == 0 {
                break;
            }
            self.send_paced(stream, &buffer[..read]).await?;
        }
        let status = within(pack.child.wait()).await?;
        if !status.success() {
            return Err(StreamError::Io(std::io::Error::other(format!(
                "git pack-objects ended with {status}"
            ))));
        }
        stream.send(b"").await?;
        within(stream.flush()).await?;
        drop(slot);
        Ok("served")
    }

    async fn answer(
        &self,
        stream: &mut Sealed<TcpStream>,
        answer: &Answer,
    ) -> Result<(), StreamError> {
        within(async {
            stream.send(&wire::encode(answer)).await?;
            stream.flush().await
        })
        .await
    }

    /// Sends one frame of release bytes at the upload rate, and counts it.
    async fn send_paced(
        &self,
        stream: &mut Sealed<TcpStream>,
        bytes: &[u8],
    ) -> Result<(), StreamError> {
        self.pace.take(bytes.len()).await;
        within(stream.send(bytes)).await?;
        self.server.metrics.share_uploaded(bytes.len() as u64);
        Ok(())
    }
}

/// `work`, ended as timed out when it takes longer than [`STALL`].
async fn within<T, E: Into<StreamError>>(
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, StreamError> {
    timeout(STALL, work)
        .await
        .map_err(|_| StreamError::Io(std::io::ErrorKind::TimedOut.into()))?
        .map_err(Into::into)
}

fn refused(reason: &str) -> Answer {
    Answer::Refused {
        reason: reason.to_owned(),
    }
}

/// The upload rate, shared by every upload: each frame books the time it takes at the rate
/// and waits for its turn.
struct Pace {
    rate: Option<u64>,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(rate: Option<u64>) -> Self {
        Self {
            rate,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn take(&self, bytes: usize) {
        let Some(rate) = self.rate else {
            return;
        };
        let start = {
            let mut next = self.next.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}
