//! An operator's signed order to roll a group back to a release it ran before
//! (`shoal rollback`): a few `key: value` lines, signed with SSHSIG in the namespace
//! [`ROLLBACK_NAMESPACE`] by a key of the group's `allowed_signers` that allows it. Every host
//! checks the order itself; gossip only carries it.
//!
//! ```text
//! shoal rollback order 1
//! group: web
//! to: v1.0.0
//! from: v2.0.0
//! issued: 2026-12-07T13:00:00Z
//! by: alice@web-1
//! ```

use crate::release::{AllowedSigners, SignatureError, Signer, verify};
use crate::time::{format_rfc3339, parse_rfc3339};

/// The signature namespace of rollback orders: a release key that may only sign releases
/// (`namespaces="git"`) cannot order a rollback.
pub const ROLLBACK_NAMESPACE: &str = "shoal-rollback";

/// The first line of an order, naming its format.
const HEADER: &str = "shoal rollback order 1";

/// How long after it was issued an order is taken: a replayed old order does nothing.
pub const MAX_AGE_SECS: i64 = 3600;

/// How far ahead of this host's clock an order's time may be (clocks differ a little).
pub const MAX_SKEW_SECS: i64 = 300;

/// Longest order accepted (it travels in one gossip value with its signature).
pub const MAX_ORDER: usize = 512;

/// A rollback order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOrder {
    /// The group.
    pub group: String,
    /// The release to go back to.
    pub to: String,
    /// The release the group runs (or rolls out) when the order is given: the order applies
    /// only to that one, and that release stays the floor.
    pub from: String,
    /// When it was issued (seconds since the epoch).
    pub issued: i64,
    /// Who gave it (`user@node`).
    pub by: String,
}

/// Why an order is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Not an order of this format.
    #[error("not a rollback order: {0}")]
    Malformed(String),
    /// Its signature does not verify against the group's `allowed_signers`.
    #[error("the rollback order's signature: {0}")]
    Signature(#[from] SignatureError),
    /// Issued too long ago, or too far ahead.
    #[error(
        "the rollback order was issued at {issued}, not within the last hour of this host's clock ({now}); sign a new one"
    )]
    Stale {
        /// When it says it was issued.
        issued: String,
        /// This host's time.
        now: String,
    },
    /// For another group.
    #[error("the rollback order is for group `{0}`")]
    OtherGroup(String),
}

impl RollbackOrder {
    /// The order's text, as signed.
    pub fn text(&self) -> String {
        format!(
            "{HEADER}\ngroup: {}\nto: {}\nfrom: {}\nissued: {}\nby: {}\n",
            self.group,
            self.to,
            self.from,
            format_rfc3339(self.issued),
            self.by
        )
    }

    /// The id of the deployment the order starts (the same on every host).
    pub fn deployment_id(&self) -> String {
        crate::rollout::rollback_id(&self.group, &self.to, &self.from, self.issued)
    }

    /// Reads an order's text: exactly the lines [`RollbackOrder::text`] writes.
    pub fn parse(text: &str) -> Result<Self, OrderError> {
        let bad = |why: &str| OrderError::Malformed(why.to_owned());
        if text.len() > MAX_ORDER {
            return Err(bad("longer than an order can be"));
        }
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("it does not start with `shoal rollback order 1`"));
        }
        let mut field = |key: &str| -> Result<String, OrderError> {
            let line = lines.next().unwrap_or_default();
            let value = line
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(": "))
                .ok_or_else(|| OrderError::Malformed(format!("no `{key}:` line where expected")))?;
            if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(OrderError::Malformed(format!(
                    "`{key}` is empty or holds spaces or control characters"
                )));
            }
            Ok(value.to_owned())
        };
        let order = RollbackOrder {
            group: field("group")?,
            to: field("to")?,
            from: field("from")?,
            issued: {
                let issued = field("issued")?;
                parse_rfc3339(&issued).ok_or_else(|| {
                    bad("`issued` is not an RFC 3339 time like 2026-12-07T13:00:00Z")
                })?
            },
            by: field("by")?,
        };
        if lines.next().is_some() {
            return Err(bad("it has lines after `by:`"));
        }
        if order.to == order.from {
            return Err(bad("`to` and `from` are the same release"));
        }
        Ok(order)
    }
}

/// How old an order may be when it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Given now (on the host it is given to): issued within the last [`MAX_AGE_SECS`], so
    /// an order signed but never given cannot be given long after.
    Fresh,
    /// Heard from a peer that took it: any age. It only ever applies while its `from` is the
    /// newest release the host verified (the floor), so an old order can send the group no
    /// further back than its operator did, and a host that was away when it was given
    /// follows the others.
    Taken,
}

/// Checks the order `text` with its `armored` signature for `group` at `now`: it reads, is
/// for `group`, is as recent as `age` asks (and not more than [`MAX_SKEW_SECS`] ahead), and
/// is signed by a key of `signers` allowed to order rollbacks.
pub fn verify_order(
    text: &str,
    armored: &[u8],
    group: &str,
    signers: &AllowedSigners,
    now: i64,
    age: Age,
) -> Result<(RollbackOrder, Signer), OrderError> {
    let order = RollbackOrder::parse(text)?;
    if order.group != group {
        return Err(OrderError::OtherGroup(order.group));
    }
    let too_old = age == Age::Fresh && now - order.issued > MAX_AGE_SECS;
    if order.issued > now + MAX_SKEW_SECS || too_old {
        return Err(OrderError::Stale {
            issued: format_rfc3339(order.issued),
            now: format_rfc3339(now),
        });
    }
    let signer = verify(
        armored,
        text.as_bytes(),
        ROLLBACK_NAMESPACE,
        signers,
        order.issued,
    )?;
    Ok((order, signer))
}

#[cfg(test)]
mod tests {
    use ssh_key::{HashAlg, LineEnding, PrivateKey, private::Ed25519Keypair};

    use super::*;

    const NOW: i64 = 1_796_652_000; // 2026-12-07T14:00:00Z

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn sign(key: &PrivateKey, namespace: &str, text: &str) -> Vec<u8> {
        key.sign(namespace, HashAlg::Sha512, text.as_bytes())
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .expect("sign")
            .into_bytes()
    }

    fn signers(namespaces: &str, key: &PrivateKey) -> AllowedSigners {
        let public = key.public_key().to_openssh().expect("openssh");
        AllowedSigners::parse(&format!(
            "ops@example.com namespaces=\"{namespaces}\" {public}"
        ))
        .expect("parse")
    }

    fn order() -> RollbackOrder {
        RollbackOrder {
            group: "web".into(),
            to: "v1.0.0".into(),
            from: "v2.0.0".into(),
            issued: NOW - 60,
            by: "alice@web-1".into(),
        }
    }

    #[test]
    fn an_order_reads_back_from_its_text() {
        let text = order().text();
        assert_eq!(
            text,
            "shoal rollback order 1\ngroup: web\nto: v1.0.0\nfrom: v2.0.0\n\
             issued: 2026-12-07T13:59:00Z\nby: alice@web-1\n"
        );
        assert_eq!(RollbackOrder::parse(&text), Ok(order()));
        for bad in [
            String::new(),
            text.replace("order 1", "order 2"),
            text.replace("to: v1.0.0\n", ""),
            text.replace("v1.0.0", "v1 0"),
            text.replace("v1.0.0", "v2.0.0"),
            text.replace("2026-12-07T13:59:00Z", "yesterday"),
            format!("{text}extra: 1\n"),
            "x".repeat(MAX_ORDER + 1),
        ] {
            assert!(
                matches!(RollbackOrder::parse(&bad), Err(OrderError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_order_signed_by_an_allowed_key_for_its_group_and_time_is_taken() {
        let ops = key(7);
        let text = order().text();
        let armored = sign(&ops, ROLLBACK_NAMESPACE, &text);
        let (taken, signer) = verify_order(
            &text,
            &armored,
            "web",
            &signers("shoal-rollback", &ops),
            NOW,
            Age::Fresh,
        )
        .expect("taken");
        assert_eq!(
            (taken, signer.principal.as_str()),
            (order(), "ops@example.com")
        );
    }

    #[test]
    fn forged_replayed_misdirected_and_release_only_orders_are_refused() {
        let (ops, intruder) = (key(7), key(8));
        let trusted = signers("shoal-rollback", &ops);
        let text = order().text();
        let good = sign(&ops, ROLLBACK_NAMESPACE, &text);
        let kind = |result: Result<(RollbackOrder, Signer), OrderError>| match result {
            Ok(_) => "taken".to_owned(),
            Err(OrderError::Signature(e)) => e.kind().to_owned(),
            Err(OrderError::Stale { .. }) => "stale".to_owned(),
            Err(OrderError::OtherGroup(_)) => "other_group".to_owned(),
            Err(OrderError::Malformed(_)) => "malformed".to_owned(),
        };
        let intruders = sign(&intruder, ROLLBACK_NAMESPACE, &text);
        let as_release = sign(&ops, "shoal-release", &text);
        let release_only = signers("git,shoal-release", &ops);
        let tampered = text.replace("v1.0.0", "v0.9.0");
        let cases = [
            // Signed by a key not in allowed_signers.
            (
                verify_order(&text, &intruders, "web", &trusted, NOW, Age::Fresh),
                "untrusted_key",
            ),
            // The text changed after signing (another target).
            (
                verify_order(&tampered, &good, "web", &trusted, NOW, Age::Fresh),
                "bad_signature",
            ),
            // A release signature is no order.
            (
                verify_order(&text, &as_release, "web", &trusted, NOW, Age::Fresh),
                "wrong_namespace",
            ),
            // A release key that may sign only releases.
            (
                verify_order(&text, &good, "web", &release_only, NOW, Age::Fresh),
                "namespace_not_allowed",
            ),
            // Replayed two hours later, or dated far ahead of this host's clock.
            (
                verify_order(&text, &good, "web", &trusted, NOW + 7200, Age::Fresh),
                "stale",
            ),
            (
                verify_order(&text, &good, "web", &trusted, NOW - 3600, Age::Fresh),
                "stale",
            ),
            // Heard from a peer that took it long ago: taken (its `from` decides), but not
            // when dated ahead of this host's clock.
            (
                verify_order(&text, &good, "web", &trusted, NOW + 7200, Age::Taken),
                "taken",
            ),
            (
                verify_order(&text, &good, "web", &trusted, NOW - 3600, Age::Taken),
                "stale",
            ),
            // For another group.
            (
                verify_order(&text, &good, "api", &trusted, NOW, Age::Fresh),
                "other_group",
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(kind(result), expected);
        }
    }
}
