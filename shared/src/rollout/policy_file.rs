//! A rollout policy file: the `shoal.yaml` a bundle may carry at its root, and the file
//! `shoal release --rollout` reads. One reader for both, bounded as every document from a
//! channel is, so an alias bomb or deep nesting is refused quickly in one sentence.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::policy::RawPolicy;
use crate::yaml_limits::{self, first_line};

/// How a policy file may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A `rollout:` block, or nothing: a bundle's `shoal.yaml`.
    Block,
    /// A `rollout:` block, or the policy's keys at the top: `shoal release --rollout FILE`.
    BlockOrKeys,
}

/// A policy file's one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Block {
    #[serde(default)]
    rollout: Option<RawPolicy>,
}

/// A policy file that cannot be read, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyFileError {
    /// The file, as the caller names it (`the bundle's shoal.yaml`, a path).
    pub file: String,
    /// 1-based line where the reader stopped, when known.
    pub line: Option<u64>,
    /// What is wrong: the key the parser names, or why the document is beyond the bounds.
    pub message: String,
}

/// Reads the text of a policy file that `file` names (for errors). `None` when it sets no
/// policy: empty, comments only, or a `rollout:` left empty. Keys are not checked here
/// ([`RawPolicy::check`] does, against the defaults that apply).
pub fn parse_policy_file(
    text: &str,
    file: &str,
    shape: Shape,
) -> Result<Option<RawPolicy>, PolicyFileError> {
    let keys_alone = match shape {
        Shape::Block => false,
        Shape::BlockOrKeys => {
            // The top keys say which: a `rollout:` block is the only top key a block has.
            let top: Option<BTreeMap<String, IgnoredAny>> = parse(text, file)?;
            top.is_some_and(|keys| !keys.contains_key("rollout"))
        }
    };
    if keys_alone {
        parse::<Option<RawPolicy>>(text, file)
    } else {
        Ok(parse::<Option<Block>>(text, file)?.and_then(|block| block.rollout))
    }
}

fn parse<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, PolicyFileError> {
    let limits = yaml_limits::POLICY;
    serde_saphyr::from_str_with_options(text, limits.options()).map_err(|error| PolicyFileError {
        file: file.to_owned(),
        line: error
            .location()
            .map(|at| at.line())
            .filter(|line| *line > 0),
        message: limits
            .refusal(&error)
            .unwrap_or_else(|| first_line(&error.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Policy;

    const FILE: &str = "the bundle's shoal.yaml";

    fn block(text: &str) -> Result<Option<RawPolicy>, PolicyFileError> {
        parse_policy_file(text, FILE, Shape::Block)
    }

    #[test]
    fn a_rollout_block_is_read() {
        let raw = block("# canary first\nrollout:\n  strategy: canary\n  canary: 10%\n")
            .expect("valid")
            .expect("a policy");
        assert_eq!(raw.strategy.as_deref(), Some("canary"));
        let policy = raw.check(&Policy::default()).expect("valid");
        assert_eq!(policy.canary.to_string(), "10%");
    }

    #[test]
    fn a_file_that_sets_nothing_is_no_policy() {
        for text in ["", "# nothing yet\n", "rollout:\n"] {
            assert_eq!(block(text), Ok(None), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key_in_one_line() {
        let cases = [
            (
                "rollout:\n  max_paralel: 2\n",
                "the bundle's shoal.yaml: line 2: unknown field `max_paralel`, expected one of",
            ),
            (
                "strategy: rolling\n",
                "the bundle's shoal.yaml: line 1: unknown field `strategy`, expected one of rollout",
            ),
        ];
        for (text, expected) in cases {
            let message = block(text).expect_err(text).to_string();
            assert!(message.starts_with(expected), "{text}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn the_release_command_takes_a_block_or_its_keys() {
        let read = |text: &str| parse_policy_file(text, "rollout.yaml", Shape::BlockOrKeys);
        let wrapped = read("rollout: {strategy: canary}\n").expect("valid");
        let flow = read("{rollout: {strategy: canary}}\n").expect("valid");
        let bare = read("# the keys alone\nstrategy: canary\n").expect("valid");
        assert_eq!(
            wrapped.as_ref().and_then(|r| r.strategy.as_deref()),
            Some("canary")
        );
        assert_eq!(flow, wrapped);
        assert_eq!(bare, wrapped);
        assert_eq!(read(""), Ok(None));
        let both = read("rollout: {strategy: canary}\ncanary: 1\n").expect_err("both");
        assert!(
            both.to_string()
                .starts_with("rollout.yaml: line 2: unknown field `canary`"),
            "{both}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_in_one_sentence() {
        let text = format!(
            "rollout:\n  canary: {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        let message = block(&text).expect_err("too deep").to_string();
        assert_eq!(
            message,
            "the bundle's shoal.yaml: line 2: the rollout policy is refused because it nests \
             deeper than 64 levels"
        );
    }
}
