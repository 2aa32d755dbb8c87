//! A closer look at a certificate that curl refused without saying why (with GnuTLS, as
//! Debian's git is built, it says only "verification failed"): one TLS handshake with rustls,
//! trusting the same CA file, tells an untrusted CA from an expired certificate or a wrong
//! name.

use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

/// What the handshake found wrong with the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not signed by a CA in the file.
    Untrusted,
    /// Expired, or not valid yet.
    Expired,
    /// Valid, but for other names (those it names, when rustls says).
    OtherName(Option<String>),
}

/// Connects to `host:port` directly (the caller makes sure no proxy is in the way) and checks
/// its certificate against the CAs in `cafile`; `None` when that cannot be done or finds
/// nothing wrong.
pub(super) fn look(host: &str, port: u16, cafile: &Path, timeout: Duration) -> Option<Verdict> {
    let pem = std::fs::read(cafile).ok()?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        // A CA that rustls cannot parse is one fewer to trust, as for curl.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let mut connection = ClientConnection::new(Arc::new(config), name).ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).ok()?;
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    while connection.is_handshaking() {
        if let Err(e) = connection.complete_io(&mut tcp) {
            let error = e.get_ref()?.downcast_ref::<rustls::Error>()?;
            return verdict(error);
        }
    }
    None
}

fn verdict(error: &rustls::Error) -> Option<Verdict> {
    let rustls::Error::InvalidCertificate(why) = error else {
        return None;
    };
    match why {
        CertificateError::UnknownIssuer => Some(Verdict::Untrusted),
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => Some(Verdict::Expired),
        CertificateError::NotValidForName => Some(Verdict::OtherName(None)),
        CertificateError::NotValidForNameContext { presented, .. } => {
            Some(Verdict::OtherName(Some(presented.join(", "))))
        }
        _ => None,
    }
}
