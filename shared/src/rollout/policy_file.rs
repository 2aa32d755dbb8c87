//! A release's settings file: the `shoal.yaml` a bundle may carry at its root (`rollout:`,
//! `health:`, `ignore_application_stop_failures:`), and the file `shoal release --rollout`
//! reads (`rollout:` alone). One reader for both, bounded as every document from a channel is,
//! so an alias bomb or deep nesting is refused quickly in one sentence.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::policy::{RawPolicy, Scalar};
use crate::yaml_limits::{self, first_line};

/// How a policy file may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A `rollout:` block, or nothing: a bundle's `shoal.yaml`.
    Block,
    /// A `rollout:` block, or the policy's keys at the top: `shoal release --rollout FILE`.
    BlockOrKeys,
}

/// A `health:` block as written, in a bundle's `shoal.yaml` or a group of the agent's config;
/// the agent checks its values.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawHealth {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub interval: Option<Scalar>,
    #[serde(default)]
    pub timeout: Option<Scalar>,
}

/// What a bundle's `shoal.yaml` sets, each part signed with the release.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    /// The rollout policy.
    #[serde(default)]
    pub rollout: Option<RawPolicy>,
    /// The health check of this release, in place of the group's.
    #[serde(default)]
    pub health: Option<RawHealth>,
    /// Go on when the previous revision's ApplicationStop (or block-traffic) scripts fail, as
    /// CodeDeploy's deployment option of the same name.
    #[serde(default)]
    pub ignore_application_stop_failures: bool,
}

/// Reads a bundle's `shoal.yaml`, which `file` names in errors. Empty or comments only sets
/// nothing. Values are not checked here.
pub fn parse_release_file(text: &str, file: &str) -> Result<ReleaseFile, PolicyFileError> {
    Ok(parse::<Option<ReleaseFile>>(text, file)?.unwrap_or_default())
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
        return parse::<Option<RawPolicy>>(text, file);
    }
    let release = parse_release_file(text, file)?;
    let release_only = [
        ("health", release.health.is_some()),
        (
            "ignore_application_stop_failures",
            release.ignore_application_stop_failures,
        ),
    ];
    if let Some((key, _)) = release_only.iter().find(|(_, set)| *set) {
        return Err(PolicyFileError {
            file: file.to_owned(),
            line: None,
            message: format!(
                "`{key}:` belongs in the bundle's own shoal.yaml, signed with it, where every \
                 host reads it; this file sets `rollout:` only"
            ),
        });
    }
    Ok(release.rollout)
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
    fn a_bundle_file_carries_health_and_the_stop_option_the_release_command_does_not() {
        let text = "rollout: {strategy: canary}\nhealth: {command: /bin/true}\n\
                    ignore_application_stop_failures: true\n";
        let file = parse_release_file(text, FILE).expect("valid");
        assert_eq!(
            file.health.and_then(|h| h.command).as_deref(),
            Some("/bin/true")
        );
        assert!(file.ignore_application_stop_failures);
        let refused = parse_policy_file(text, "rollout.yaml", Shape::BlockOrKeys)
            .expect_err("release-only keys")
            .to_string();
        assert!(
            refused.starts_with("rollout.yaml: `health:` belongs in the bundle's own shoal.yaml"),
            "{refused}"
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
