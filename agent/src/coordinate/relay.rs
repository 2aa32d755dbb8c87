//! chitchat's own byte encoding, reached through its `UdpSocket`s on loopback (chitchat 0.13
//! keeps `ChitchatEnvelope`'s encoding private): an [`Encoder`] whose datagrams are caught on a
//! tap, and a [`Decoder`] fed from a socket of ours.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chitchat::transport::{RecvOutcome, Socket, UdpSocket as ChitchatUdp};
use chitchat::{ChitchatEnvelope, ChitchatMessage};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// How long the decoder may take with a message and the marker after it before the message
/// counts as undecodable (a safety net: on loopback both come back within microseconds).
const DECODE_WITHIN: Duration = Duration::from_secs(1);
pub(super) async fn loopback() -> std::io::Result<UdpSocket> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await
}

pub(super) async fn chitchat_loopback() -> std::io::Result<(ChitchatUdp, SocketAddr)> {
    let socket = ChitchatUdp::open((Ipv4Addr::LOCALHOST, 0).into())
        .await
        .map_err(std::io::Error::other)?;
    let addr = socket.local_addr().map_err(std::io::Error::other)?;
    Ok((socket, addr))
}

/// chitchat's own encoder, and the socket its bytes are caught on.
pub(super) struct Encoder {
    socket: ChitchatUdp,
    addr: SocketAddr,
    tap: UdpSocket,
    tap_addr: SocketAddr,
    buf: Vec<u8>,
}

impl Encoder {
    pub(super) fn new(
        socket: ChitchatUdp,
        addr: SocketAddr,
        tap: UdpSocket,
        tap_addr: SocketAddr,
    ) -> Self {
        Self {
            socket,
            addr,
            tap,
            tap_addr,
            buf: vec![0; super::fragment::MAX_MESSAGE],
        }
    }

    /// The bytes chitchat sends for `envelope`.
    pub(super) async fn encode(&mut self, envelope: ChitchatEnvelope) -> anyhow::Result<&[u8]> {
        self.socket.send(self.tap_addr, envelope).await?;
        loop {
            let (len, from) = self.tap.recv_from(&mut self.buf).await?;
            if from == self.addr {
                return Ok(&self.buf[..len]);
            }
        }
    }
}

/// chitchat's own decoder, fed from a socket of ours.
///
/// chitchat's socket skips what it cannot read without a word, so each message is followed by
/// a marker (a `BadCluster` message, which no member of a sealed mesh has a reason to send, and
/// which is therefore never fed as a message): the marker coming back first means the message
/// was undecodable, at once rather than after a timeout.
pub(super) struct Decoder {
    socket: ChitchatUdp,
    addr: SocketAddr,
    feeder: UdpSocket,
    feeder_addr: SocketAddr,
    marker: Vec<u8>,
    /// Markers still to come back for messages given up on after [`DECODE_WITHIN`].
    owed: usize,
}

/// What the decoder made of a message.
pub(super) enum Decoded {
    Envelope(RecvOutcome),
    Undecodable,
    /// The decoder's socket is broken.
    Broken,
}

impl Decoder {
    /// chitchat's `socket` at `addr`, fed from `feeder`, with `marker` (the bytes of a
    /// `BadCluster` message) after each message.
    pub(super) fn new(
        socket: ChitchatUdp,
        addr: SocketAddr,
        feeder: UdpSocket,
        marker: Vec<u8>,
    ) -> std::io::Result<Self> {
        let feeder_addr = feeder.local_addr()?;
        Ok(Self {
            socket,
            addr,
            feeder,
            feeder_addr,
            marker,
            owed: 0,
        })
    }

    pub(super) async fn decode(&mut self, message: &[u8]) -> Decoded {
        if is_bad_cluster(message, &self.marker) {
            return Decoded::Undecodable;
        }
        let fed = async {
            self.feeder.send_to(message, self.addr).await?;
            self.feeder.send_to(&self.marker, self.addr).await
        };
        if fed.await.is_err() {
            return Decoded::Undecodable;
        }
        let feeder_addr = self.feeder_addr;
        let owed = &mut self.owed;
        let socket = &mut self.socket;
        let read = timeout(DECODE_WITHIN, async {
            let mut decoded = None;
            loop {
                match socket.recv().await {
                    Ok(outcome) if outcome.from_addr != feeder_addr => {} // another process
                    Ok(outcome)
                        if matches!(outcome.envelope.message, ChitchatMessage::BadCluster) =>
                    {
                        if *owed == 0 {
                            return decoded.map_or(Decoded::Undecodable, Decoded::Envelope);
                        }
                        // The marker of a message given up on: what came before it was that one.
                        *owed -= 1;
                        decoded = None;
                    }
                    Ok(outcome) => decoded = Some(outcome),
                    Err(_) => return Decoded::Broken,
                }
            }
        })
        .await;
        read.unwrap_or_else(|_| {
            self.owed += 1;
            Decoded::Undecodable
        })
    }
}

/// Whether `message` is chitchat's `BadCluster` (same magic number and message type as the
/// marker, any protocol version).
fn is_bad_cluster(message: &[u8], marker: &[u8]) -> bool {
    match (message, marker) {
        ([m0, m1, _, kind, ..], [k0, k1, _, marker_kind, ..]) => {
            (m0, m1, kind) == (k0, k1, marker_kind)
        }
        _ => false,
    }
}
