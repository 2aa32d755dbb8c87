//! The gossip socket: opened before chitchat starts, so a listen port of 0 works and the port
//! actually bound is the one advertised; then handed to chitchat through a one-shot transport.
//!
//! Why not a `Transport` over our own tokio socket: in chitchat 0.13 a `Socket` exchanges
//! `ChitchatEnvelope`s whose wire encoding is crate-private (quickwit-oss/chitchat#207), so a
//! socket outside the crate cannot turn them into bytes. The datagram socket is therefore
//! chitchat's own `UdpSocket`; a layer that must see bytes (the gossip AEAD) needs that
//! encoding made public, or chitchat patched.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;

use chitchat::transport::{Socket, Transport, UdpSocket};

use super::MeshError;

/// Binds the UDP gossip socket at `listen`.
pub(super) async fn bind(listen: SocketAddr) -> Result<Box<dyn Socket>, MeshError> {
    match UdpSocket::open(listen).await {
        Ok(socket) => Ok(Box::new(socket)),
        Err(error) => Err(MeshError::Bind {
            addr: listen,
            source: error
                .downcast::<std::io::Error>()
                .unwrap_or_else(|other| std::io::Error::other(other.to_string())),
        }),
    }
}

/// Opens a socket of any transport (tests' in-memory one) at `listen`.
pub(super) async fn open(
    transport: &dyn Transport,
    listen: SocketAddr,
) -> Result<Box<dyn Socket>, MeshError> {
    transport
        .open(listen)
        .await
        .map_err(|error| MeshError::Open {
            addr: listen,
            source: error.into(),
        })
}

/// The address a socket is bound at.
pub(super) fn bound_addr(socket: &dyn Socket, listen: SocketAddr) -> Result<SocketAddr, MeshError> {
    socket.local_addr().map_err(|error| MeshError::Open {
        addr: listen,
        source: error.into(),
    })
}

/// A transport that hands out one already opened socket, whatever address it is asked for.
pub(super) struct Handover {
    socket: Mutex<Option<Box<dyn Socket>>>,
}

impl Handover {
    pub(super) fn new(socket: Box<dyn Socket>) -> Self {
        Self {
            socket: Mutex::new(Some(socket)),
        }
    }

    fn take(&self) -> anyhow::Result<Box<dyn Socket>> {
        self.socket
            .lock()
            .map_err(|_| anyhow::anyhow!("the gossip socket was poisoned"))?
            .take()
            .ok_or_else(|| anyhow::anyhow!("the gossip socket was already handed over"))
    }
}

type OpenFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Box<dyn Socket>>> + Send + 'a>>;

/// Written out by hand as `#[async_trait]` would expand it, to need no macro crate for one method.
impl Transport for Handover {
    fn open<'life0, 'async_trait>(
        &'life0 self,
        _listen_addr: SocketAddr,
    ) -> OpenFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let socket = self.take();
        Box::pin(async move { socket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_binds_a_real_port_and_hands_it_over_once() {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let socket = bind(listen).await.expect("bind");
        let addr = bound_addr(socket.as_ref(), listen).expect("addr");
        assert_ne!(addr.port(), 0);
        let handover = Handover::new(socket);
        let again = handover.open(listen).await.expect("first open");
        assert_eq!(again.local_addr().expect("addr"), addr);
        assert!(handover.open(listen).await.is_err());
    }

    #[tokio::test]
    async fn a_taken_port_names_the_address() {
        let first = bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let taken = first.local_addr().expect("addr");
        let err = bind(taken).await.err().expect("already bound");
        assert_eq!(err.kind(), "bind");
        assert!(err.to_string().contains(&taken.to_string()), "{err}");
        let MeshError::Bind { source, .. } = err else {
            panic!("a bind error");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
    }
}
