//! Who may steer a rollout through the status endpoint: a client on this host (a loopback
//! peer) that sends the admin token as `Authorization: Bearer <token>`. The token is compared
//! in constant time, through its sha256, so neither its bytes nor its length leak by timing.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use sha2::{Digest as _, Sha256};

/// The admin token the steering calls must carry (kept as its digest).
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// What an `Authorization` header proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is not the admin token.
    Wrong,
    /// The admin token.
    Admin,
}

impl AdminToken {
    /// The token as read from `status.token_file` (already trimmed).
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Checks the value of an `Authorization` header: `Bearer <token>` (the scheme in any case).
    pub fn check(&self, authorization: Option<&str>) -> Credential {
        let Some(given) = authorization.and_then(bearer) else {
            return Credential::Missing;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let difference = given
            .iter()
            .zip(&self.digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference == 0 {
            Credential::Admin
        } else {
            Credential::Wrong
        }
    }
}

/// The token of a `Bearer` authorization.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether `peer` is this host (IPv4 or IPv6 loopback, IPv4-mapped included).
pub fn is_local(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// Whether a `Host` header names this host as a client on it would: an IP address,
/// `localhost` (or a name under it), or `hostname`, with or without a port.
///
/// A web page that a browser on this host loaded from elsewhere can reach loopback only under
/// a name of its own, made to resolve to 127.0.0.1 (DNS rebinding); refusing other names keeps
/// such a page from reading the status, the fleet and the deployment logs.
pub fn names_this_host(host: &str, hostname: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((ip, rest)) if rest.is_empty() || is_port(rest) => {
                return ip.parse::<Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let lowercase = name.to_ascii_lowercase();
    name.parse::<Ipv4Addr>().is_ok()
        || lowercase == "localhost"
        || lowercase.ends_with(".localhost")
        || (!name.is_empty() && name.eq_ignore_ascii_case(hostname))
}

/// `:` and 1 to 5 digits.
fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_header_names_this_host_by_address_localhost_or_hostname() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:9100",
            "10.0.0.5:80",
            "[::1]",
            "[::1]:9100",
            "localhost",
            "LOCALHOST:9100",
            "localhost.",
            "fleet.localhost:9100",
            "web-1",
            "Web-1:9100",
        ] {
            assert!(names_this_host(host, "web-1"), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9100",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "web-1.evil.example",
            "",
            ":9100",
            "[::1",
            "[::1]x",
            "[evil]",
            "127.0.0.1:port",
            "127.0.0.1:123456",
            "web-1:9100:1",
        ] {
            assert!(!names_this_host(host, "web-1"), "{host}");
        }
        assert!(!names_this_host("", ""), "an empty hostname names nothing");
    }

    #[test]
    fn only_the_admin_token_as_a_bearer_is_admitted() {
        let token = AdminToken::new("0123abcd");
        assert_eq!(token.check(Some("Bearer 0123abcd")), Credential::Admin);
        assert_eq!(token.check(Some("bearer  0123abcd ")), Credential::Admin);
        assert_eq!(token.check(Some("Bearer 0123abce")), Credential::Wrong);
        assert_eq!(token.check(Some("Bearer 0123abcd0")), Credential::Wrong);
        assert_eq!(token.check(Some("Bearer 0123")), Credential::Wrong);
        for missing in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer  "),
            Some("0123abcd"),
        ] {
            assert_eq!(token.check(missing), Credential::Missing, "{missing:?}");
        }
        assert_eq!(token.check(Some("Basic 0123abcd")), Credential::Missing);
    }

    #[test]
    fn the_token_is_not_shown_in_debug_output() {
        assert!(!format!("{:?}", AdminToken::new("secret")).contains("secret"));
    }

    #[test]
    fn only_loopback_peers_are_local() {
        for local in [
            "127.0.0.1:1",
            "127.9.9.9:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_local(local.parse().expect("address")), "{local}");
        }
        for remote in [
            "10.0.0.5:1",
            "[2001:db8::1]:1",
            "[::ffff:10.0.0.5]:1",
            "0.0.0.0:1",
        ] {
            assert!(!is_local(remote.parse().expect("address")), "{remote}");
        }
    }
}
