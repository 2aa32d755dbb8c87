//! Deployment ids: derived from the group and the revision, so every host of a group computes
//! the same id for the same rollout without asking anyone.

use sha2::{Digest, Sha256};

/// `d-` + the first 12 hex digits of sha256(group ‖ 0x00 ‖ revision digest). The zero byte keeps
/// `("ab", "c…")` and `("a", "bc…")` apart. `digest` is written `git:<commit>` or `sha256:<hex>`.
pub fn deployment_id(group: &str, digest: &str) -> String {
    short_id(&[group, digest])
}

/// The id of the deployment that reverts `failed` by reinstalling the revision with `digest`:
/// the same on every host that reverts the same failure.
pub fn revert_id(group: &str, digest: &str, failed: &str) -> String {
    short_id(&[group, digest, "revert", failed])
}

/// The id of the deployment an operator's rollback order starts: the group back to `to` from
/// `from`, ordered at `issued` (seconds since the epoch). Every host that takes the order
/// computes it from the order alone, and it differs from the id `to` had when it was new, so
/// nothing recorded of that deployment (complete, halted) carries over.
pub fn rollback_id(group: &str, to: &str, from: &str, issued: i64) -> String {
    short_id(&[group, "rollback", to, from, &issued.to_string()])
}

fn short_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash.update([0]);
        }
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("d-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sha256_of_the_group_and_digest() {
        // printf 'web\0git:abc' | sha256sum → eba4e0bf3197…
        let id = deployment_id("web", "git:abc");
        assert_eq!(id, "d-eba4e0bf3197");
        assert_eq!(id, deployment_id("web", "git:abc"));
        assert_ne!(id, deployment_id("we", "bgit:abc"));
        assert_ne!(id, deployment_id("api", "git:abc"));
        assert_ne!(revert_id("web", "git:abc", &id), id);
    }
}
