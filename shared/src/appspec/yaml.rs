//! A YAML document tree that keeps what the CodeDeploy agent's YAML 1.1 reader would see:
//! each scalar's source text and quoting, each node's line, and every duplicate key.
//!
//! serde-saphyr does the parsing (with duplicate keys passed through and leading-zero numbers
//! kept as text); this module turns its output into [`Node`]s the AppSpec rules can inspect.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use crate::yaml_limits;

/// One YAML node with its position and, for scalars, the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value as YAML 1.1 resolves it (leading-zero integers stay text, see [`Node::raw`]).
    pub value: Value,
    /// 1-based line of the node in the source (0 when unknown).
    pub line: u64,
    /// The scalar exactly as written, quotes included; empty for collections.
    pub raw: String,
}

/// The resolved value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true`/`false`, and YAML 1.1's `yes`/`no`/`on`/`off`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string, or a plain number written with a leading zero such as `0644`.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, duplicate keys included.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Whether the scalar was written in quotes.
    pub fn is_quoted(&self) -> bool {
        self.raw.starts_with('\'') || self.raw.starts_with('"')
    }

    /// The text of a scalar as a user reads it: a string's content, a number or boolean as written.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(text) => Some(text.clone()),
            Value::Null => Some(String::new()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => Some(self.raw.trim().to_owned()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short description of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error, with the line where the parser stopped when it knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The parser's own description, or for a document beyond the reader's limits, the sentence
    /// that says which.
    pub message: String,
    /// Refused for its size (nodes, nesting, how far aliases expand), not its syntax.
    pub too_large: bool,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses one YAML document. An empty or comment-only document is `Ok(None)`.
pub fn parse(source: &str) -> Result<Option<Node>, SyntaxError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut options = yaml_limits::APPSPEC.options();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.legacy_octal_numbers = true;
    options.leading_zero_numbers_as_strings = true;
    let parsed: Option<Spanned<RawValue>> = serde_saphyr::from_str_with_options(source, options)
        .map_err(|error| {
            let refusal = yaml_limits::APPSPEC.refusal(&error);
            SyntaxError {
                line: error
                    .location()
                    .map(|at| at.line())
                    .filter(|line| *line > 0),
                too_large: refusal.is_some(),
                message: refusal.unwrap_or_else(|| yaml_limits::first_line(&error.to_string())),
            }
        })?;
    Ok(parsed.map(|root| into_node(root, source)))
}

/// What serde-saphyr hands us: values with spans, before the source text is attached.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

fn into_node(spanned: Spanned<RawValue>, source: &str) -> Node {
    let at = spanned.referenced;
    let raw = at
        .span()
        .byte_offset()
        .zip(at.span().byte_len())
        .and_then(|(offset, len)| {
            let start = usize::try_from(offset).ok()?;
            source.get(start..start.checked_add(usize::try_from(len).ok()?)?)
        })
        .unwrap_or_default();
    let (value, raw) = match spanned.value {
        RawValue::Null => (Value::Null, raw),
        RawValue::Bool(b) => (Value::Bool(b), raw),
        RawValue::Int(i) => (Value::Int(i), raw),
        RawValue::Float(x) => (Value::Float(x), raw),
        RawValue::Str(s) => (Value::Str(s), raw),
        RawValue::Seq(items) => (
            Value::Seq(items.into_iter().map(|n| into_node(n, source)).collect()),
            "",
        ),
        RawValue::Map(entries) => (
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (into_node(k, source), into_node(v, source)))
                    .collect(),
            ),
            "",
        ),
    };
    Node {
        value,
        line: at.line(),
        raw: raw.to_owned(),
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<RawValue, E> {
        i64::try_from(u)
            .map(RawValue::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, x: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(source: &str) -> Vec<(Node, Node)> {
        match parse(source)
            .expect("valid yaml")
            .expect("a document")
            .value
        {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keeps_leading_zero_numbers_as_written_and_tells_quoted_from_plain() {
        let e = entries("plain: 0644\nquoted: '0644'\nzero: 0000\nint: 644\n");
        assert_eq!(e[0].1.value, Value::Str("0644".into()));
        assert!(!e[0].1.is_quoted());
        assert_eq!(e[1].1.value, Value::Str("0644".into()));
        assert!(e[1].1.is_quoted());
        assert_eq!(e[2].1.raw, "0000");
        assert_eq!(e[3].1.value, Value::Int(644));
    }

    #[test]
    fn resolves_yaml_1_1_scalars() {
        let e = entries("v: 0.0\nb: yes\nn: ~\ne:\ns: \"0.0\"\n");
        assert_eq!(e[0].1.value, Value::Float(0.0));
        assert_eq!(e[1].1.value, Value::Bool(true));
        assert_eq!(e[2].1.value, Value::Null);
        assert_eq!(e[3].1.value, Value::Null);
        assert_eq!(e[4].1.value, Value::Str("0.0".into()));
    }

    #[test]
    fn passes_duplicate_keys_through_with_their_lines() {
        let e = entries("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].0.line, e[2].0.line), (1, 3));
        assert_eq!(e[2].1.value, Value::Int(3));
    }

    #[test]
    fn empty_and_comment_only_documents_are_none() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("# nothing\n\n"), Ok(None));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let error = parse("a: 1\nb: [1, 2\nc: 3\n").expect_err("unclosed flow sequence");
        assert_eq!(error.line, Some(3), "{error:?}");
        assert!(!error.message.starts_with("error"), "{error:?}");
        assert!(!error.message.contains("line 3"), "{error:?}");
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let e = entries("\u{feff}version: 0.0\r\nos: linux\r\n");
        assert_eq!(e[1].1.value, Value::Str("linux".into()));
        assert_eq!(e[1].0.line, 2);
    }
}
