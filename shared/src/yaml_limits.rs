//! What reading one YAML document from a channel may cost. serde-saphyr counts nodes, nesting
//! and the events that aliases (`*name`) replay while it parses; these are the bounds shoal
//! gives it, so an alias bomb ("billion laughs") is refused after a few thousand nodes, in
//! milliseconds, with one sentence instead of the parser's debug output. Any other error is
//! cut to the parser's first line ([`first_line`]).

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, Error};

/// Nesting of sequences and mappings: deeper documents are refused (serde-saphyr's default).
const MAX_DEPTH: usize = 64;

/// Bounds on one document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// What the document is, as a refusal names it (`the AppSpec`, `the manifest`).
    pub what: &'static str,
    /// Nodes (scalars, sequences, mappings), those that aliases replay included.
    pub nodes: usize,
    /// Events that aliases may replay in all: how far `*name` references may expand.
    pub expanded: usize,
    /// Bytes of scalar text, what aliases replay included.
    pub scalar_bytes: usize,
}

/// An AppSpec: the largest real ones have a few hundred nodes, and aliases, where used, share
/// a hook list or a permission.
pub(crate) const APPSPEC: Limits = Limits {
    what: "the AppSpec",
    nodes: 50_000,
    expanded: 10_000,
    scalar_bytes: 16 << 20,
};

/// A store release's `release.yaml`: about twenty nodes, and no use for aliases.
pub(crate) const MANIFEST: Limits = Limits {
    what: "the manifest",
    nodes: 2_000,
    expanded: 1_000,
    scalar_bytes: 1 << 20,
};

/// A rollout policy file (a bundle's `shoal.yaml`): a dozen nodes, and no use for aliases.
pub(crate) const POLICY: Limits = Limits {
    what: "the rollout policy",
    nodes: 2_000,
    expanded: 1_000,
    scalar_bytes: 1 << 20,
};

impl Limits {
    /// Parser options enforcing these bounds, over serde-saphyr's defaults.
    pub(crate) fn options(self) -> serde_saphyr::Options {
        let mut budget = Budget::default();
        budget.max_nodes = self.nodes;
        budget.max_depth = MAX_DEPTH;
        budget.max_events = self.nodes.saturating_mul(4);
        budget.max_aliases = self.expanded;
        budget.max_total_scalar_bytes = self.scalar_bytes;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        options.alias_limits.max_total_replayed_events = self.expanded;
        options
    }

    /// The one sentence for a document refused by these bounds, or `None` for any other error
    /// (the line where the parser stopped is in the error's location).
    pub(crate) fn refusal(self, error: &Error) -> Option<String> {
        let what = self.what;
        let mut cause = error;
        while let Error::WithSnippet { error, .. } | Error::AliasError { error, .. } = cause {
            cause = error;
        }
        let sentence = match cause {
            Error::AliasReplayLimitExceeded { .. }
            | Error::AliasExpansionLimitExceeded { .. }
            | Error::AliasReplayStackDepthExceeded { .. }
            | Error::Budget {
                breach: BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. },
                ..
            } => format!(
                "{what} is refused because its aliases (`*name`) expand beyond {} nodes, as an \
                 alias bomb (\"billion laughs\") does; write the repeated parts out instead",
                self.expanded
            ),
            Error::Budget {
                breach: BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. },
                ..
            } => format!(
                "{what} is refused because it has more than {} nodes, counting what its aliases \
                 (`*name`) expand to; no real one comes near that",
                self.nodes
            ),
            Error::Budget {
                breach: BudgetBreach::ScalarBytes { .. },
                ..
            } => format!(
                "{what} is refused because its text, counting what its aliases (`*name`) \
                 expand to, is longer than {} bytes",
                self.scalar_bytes
            ),
            Error::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            } => format!("{what} is refused because it nests deeper than {MAX_DEPTH} levels"),
            Error::Budget { breach, .. } => format!(
                "{what} is refused because it is beyond the YAML reader's limits ({breach:?})"
            ),
            _ => return None,
        };
        Some(sentence)
    }
}

/// The parser's first line, without its own `error:` and `line N column M:` prefixes
/// (the line is reported separately).
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim();
    let line = line.strip_prefix("error:").unwrap_or(line).trim_start();
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, message)) if position.contains("column") => message.to_owned(),
        _ => line.to_owned(),
    }
}
