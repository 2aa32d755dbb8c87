//! Errors and warnings about an AppSpec, each naming the key and line it is about.

use std::fmt;

/// Which rule an AppSpec broke; the stable names appear in JSON output and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid YAML.
    Syntax,
    /// Beyond the YAML reader's limits: too many nodes, too deep, or aliases that expand too far.
    TooLarge,
    /// Empty, or not a mapping at the top.
    Empty,
    /// `version` is not 0.0.
    Version,
    /// `os` is missing or not `linux`.
    Os,
    /// A `hooks` entry is malformed.
    Hooks,
    /// A `files` entry is malformed.
    Files,
    /// A `permissions` entry is malformed.
    Permissions,
    /// `file_exists_behavior` is not one of the three values.
    FileExistsBehavior,
}

impl ErrorKind {
    /// The stable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::TooLarge => "too-large",
            Self::Empty => "empty",
            Self::Version => "version",
            Self::Os => "os",
            Self::Hooks => "hooks",
            Self::Files => "files",
            Self::Permissions => "permissions",
            Self::FileExistsBehavior => "file-exists-behavior",
        }
    }
}

/// Why an AppSpec was rejected: one sentence naming the key, the line and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(*line, key, message))]
pub struct AppSpecError {
    /// The rule that was broken.
    pub kind: ErrorKind,
    /// 1-based line in the file, when known.
    pub line: Option<u64>,
    /// Where in the document, e.g. `permissions[2].mode` (empty for the whole file).
    pub key: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl AppSpecError {
    /// The stable name of the broken rule.
    pub fn kind(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// Something shoal accepts but the user should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line in the file, when known.
    pub line: Option<u64>,
    /// Where in the document, e.g. `hooks.AfterInstall`.
    pub key: String,
    /// What shoal noticed and what it does about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(self.line, &self.key, &self.message))
    }
}

fn render(line: Option<u64>, key: &str, message: &str) -> String {
    match (line, key.is_empty()) {
        (Some(line), false) => format!("line {line}: {key}: {message}"),
        (Some(line), true) => format!("line {line}: {message}"),
        (None, false) => format!("{key}: {message}"),
        (None, true) => message.to_owned(),
    }
}
