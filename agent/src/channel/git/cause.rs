//! The cause of a git failure as libgit2 (or the file system) told it, with credentials kept
//! out of its text: what both the channel's errors and a fetch's failures carry.

use std::io;

/// The cause of a git failure as libgit2 (or the file system) told it, with any credential
/// removed from the text.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Cause {
    message: String,
    /// libgit2's error code, when the cause came from libgit2.
    pub code: Option<git2::ErrorCode>,
}

impl Cause {
    /// A libgit2 error, with `secrets` (a token, a url's password) blanked out of its text.
    pub fn git(error: &git2::Error, secrets: &[&str]) -> Self {
        Self {
            message: redact(error.message(), secrets),
            code: Some(error.code()),
        }
    }

    /// An I/O error.
    pub fn io(error: &io::Error) -> Self {
        Self {
            message: error.to_string(),
            code: None,
        }
    }
}

/// Replaces each non-empty secret in `text` with `***`.
pub(super) fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_never_carry_secrets() {
        let error = git2::Error::from_str("auth failed for https://bot:s3cret@host/r.git");
        let cause = Cause::git(&error, &["s3cret", ""]);
        assert_eq!(
            cause.to_string(),
            "auth failed for https://bot:***@host/r.git"
        );
        assert!(!format!("{cause:?}").contains("s3cret"));
    }
}
