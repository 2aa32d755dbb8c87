//! Reading YAML mappings the way the CodeDeploy agent does: the last duplicate key wins (with a
//! warning here), and keys nobody reads are reported instead of silently ignored. Also the
//! helpers every section's reader shares: scalars, lists, errors, and paths that climb (`..`).

use super::diagnostic::{AppSpecError, ErrorKind, Warning};
use super::yaml::{Node, Value};

/// Collects warnings while the AppSpec is read.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub(crate) warnings: Vec<Warning>,
}

/// The entries of one mapping after duplicate keys are resolved, in source order.
pub(crate) struct Fields<'a> {
    path: String,
    entries: Vec<(String, u64, &'a Node)>,
    taken: Vec<bool>,
}

impl Reader {
    pub(crate) fn warn(&mut self, line: u64, key: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            line: (line > 0).then_some(line),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// Reads `node` as a mapping; `what` says what it should be, for the error message.
    pub(crate) fn fields<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        kind: ErrorKind,
        what: &str,
    ) -> Result<Fields<'a>, AppSpecError> {
        let Value::Map(pairs) = &node.value else {
            return Err(error(
                kind,
                node,
                path,
                format!("must be {what}, not {}", node.type_name()),
            ));
        };
        let mut entries: Vec<(String, u64, &'a Node)> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = key.scalar_text() else {
                return Err(error(
                    kind,
                    key,
                    path,
                    "a key must be a plain word, not a list or mapping",
                ));
            };
            if let Some(at) = entries.iter().position(|(seen, _, _)| *seen == name) {
                let first = entries[at].1;
                self.warn(
                    key.line,
                    &join(path, &name),
                    format!(
                        "appears again (first on line {first}); like the CodeDeploy agent, \
                         shoal uses this last value"
                    ),
                );
                entries.remove(at);
            }
            entries.push((name, key.line, value));
        }
        let taken = vec![false; entries.len()];
        Ok(Fields {
            path: path.to_owned(),
            entries,
            taken,
        })
    }
}

impl<'a> Fields<'a> {
    /// The value of `key`, unless it is absent or null.
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Node> {
        let at = self.entries.iter().position(|(name, _, _)| name == key)?;
        self.taken[at] = true;
        let node = self.entries[at].2;
        (node.value != Value::Null).then_some(node)
    }

    /// Whether `key` is present at all, null included.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(name, _, _)| name == key)
    }

    /// The full path of `key` in this mapping, for messages.
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Entries in source order as (key, line of the key, value), each marked as read.
    pub(crate) fn all(&mut self) -> Vec<(String, u64, &'a Node)> {
        self.taken.iter_mut().for_each(|t| *t = true);
        self.entries.clone()
    }

    /// Warns about every key that nothing read.
    pub(crate) fn warn_unknown(&self, reader: &mut Reader, known: &str, consequence: &str) {
        for ((name, line, _), taken) in self.entries.iter().zip(&self.taken) {
            if !taken {
                reader.warn(
                    *line,
                    &join(&self.path, name),
                    format!("unknown key, {consequence}; known keys here: {known}"),
                );
            }
        }
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn error(
    kind: ErrorKind,
    node: &Node,
    key: &str,
    message: impl Into<String>,
) -> AppSpecError {
    AppSpecError {
        kind,
        line: (node.line > 0).then_some(node.line),
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Reads a scalar as text (numbers and booleans as written); `None` for lists and mappings.
pub(crate) fn text(
    node: &Node,
    kind: ErrorKind,
    key: &str,
    what: &str,
) -> Result<String, AppSpecError> {
    node.scalar_text().ok_or_else(|| {
        error(
            kind,
            node,
            key,
            format!("must be {what}, not {}", node.type_name()),
        )
    })
}

/// Reads a list; a single mapping or scalar where a list is expected is an error.
pub(crate) fn list<'a>(
    node: &'a Node,
    kind: ErrorKind,
    key: &str,
    example: &str,
) -> Result<&'a [Node], AppSpecError> {
    match &node.value {
        Value::Seq(items) => Ok(items),
        _ => Err(error(
            kind,
            node,
            key,
            format!(
                "must be a list (each item starting with `- `, or {example}), not {}",
                node.type_name()
            ),
        )),
    }
}

/// Whether the path `path` has a `..` component (a `files` destination or a permission's
/// `object` that could leave the directory it names).
pub(crate) fn climbs(path: &str) -> bool {
    path.split('/').any(|part| part == "..")
}
