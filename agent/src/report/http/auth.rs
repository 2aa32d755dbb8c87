//! Who may steer a rollout through the status endpoint: a client on this host (a loopback
//! peer) that sends the admin token as `Authorization: Bearer <token>`. The token is compared
//! in constant time, through its sha256, so neither its bytes nor its length leak by timing.

use std::net::SocketAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
