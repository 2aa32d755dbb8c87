//! OpenSSH `allowed_signers` files (the trust file of `git verify-tag` and `ssh-keygen -Y verify`):
//! who may sign, with which key, for which namespaces, and when.
//!
//! A line is `principals [options] keytype base64-key [comment]`. Principals are a comma list
//! of patterns (`*`, `?`, `!` negation); options, each at most once, are `namespaces="a,b"`
//! (a pattern list like the principals), `valid-after=`,
//! `valid-before=` (`YYYYMMDD[HHMM[SS]][Z]`) and `cert-authority`, which shoal refuses because
//! it does not verify certificates. Blank lines and `#` comments are skipped.

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

use crate::time::unix_from_utc;

/// Key types OpenSSH knows that shoal parses but does not verify signatures of.
const UNSUPPORTED_KEY_TYPES: [&str; 7] = [
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
];

/// A parsed `allowed_signers` file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The principals field as written (a comma list of patterns).
    pub principals: String,
    /// `namespaces="..."`: the namespaces this key may sign for; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, as seconds since the Unix epoch.
    pub valid_after: Option<i64>,
    /// `valid-before`, as seconds since the Unix epoch.
    pub valid_before: Option<i64>,
    /// The key, if its type is one shoal verifies.
    pub key: SignerKey,
}

/// The key of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerKey {
    /// A key shoal verifies signatures of (ssh-ed25519).
    Supported(KeyData),
    /// A key of a type OpenSSH knows but shoal does not verify.
    Unsupported {
        /// The key type as written, e.g. `ecdsa-sha2-nistp256`.
        algorithm: String,
    },
}

/// Why an `allowed_signers` file was refused: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with the line.
    pub reason: LineError,
}

/// What is wrong with one line, in one sentence saying what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// `""` before the key.
    #[error("the principals field is empty; write `name@example.com ssh-ed25519 AAAA...`")]
    EmptyPrincipals,
    /// A principals field opened with `"` and not closed.
    #[error("a quoted principals field has no closing `\"`")]
    UnclosedPrincipals,
    /// An option value opened with `"` and not closed.
    #[error("an option value has no closing `\"`")]
    UnclosedOption,
    /// The field after the principals is neither a key type nor options.
    #[error(
        "`{0}` is neither a key type (shoal verifies ssh-ed25519) nor options (namespaces=\"...\", valid-after=\"...\", valid-before=\"...\")"
    )]
    NotKeyOrOptions(String),
    /// No key type and key after the principals (and options).
    #[error(
        "there is no public key; a line is `principals [options] ssh-ed25519 AAAA... [comment]`"
    )]
    NoKey,
    /// A certificate type, e.g. `ssh-ed25519-cert-v01@openssh.com`.
    #[error("`{0}` is a certificate; shoal verifies plain keys only")]
    Certificate(String),
    /// An ssh-ed25519 key that does not decode.
    #[error("the ssh-ed25519 key cannot be read ({0})")]
    BadKey(ssh_key::Error),
    /// A key type OpenSSH does not know either.
    #[error("`{0}` is not a public key type; shoal verifies ssh-ed25519 keys")]
    UnknownKeyType(String),
    /// An option given twice (OpenSSH refuses the line).
    #[error("option `{0}` is given twice; OpenSSH refuses such a line, so write it once")]
    OptionTwice(String),
    /// `cert-authority`: shoal does not verify certificates.
    #[error(
        "cert-authority is not supported: shoal verifies signatures by plain keys, so list the signing keys themselves"
    )]
    CertAuthority,
    /// `namespaces`, `valid-after` or `valid-before` without `=value`.
    #[error("option `{0}` needs a value, e.g. {0}=\"...\"")]
    OptionNeedsValue(String),
    /// An option shoal does not know.
    #[error(
        "unknown option `{0}`; accepted: namespaces=\"...\", valid-after=\"...\", valid-before=\"...\""
    )]
    UnknownOption(String),
    /// Two commas in a row, or one at an end, in the options.
    #[error("the options `{0}` have an empty entry")]
    EmptyOption(String),
    /// An option value with quotes that do not enclose it.
    #[error("the option value `{0}` has unbalanced quotes")]
    UnbalancedQuotes(String),
    /// A `valid-after` or `valid-before` that is not a time.
    #[error(
        "`{0}` is not a time; write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z"
    )]
    BadTime(String),
    /// `valid-after` is not before `valid-before`.
    #[error("valid-after is not earlier than valid-before, so the key is never valid")]
    NeverValid,
}

impl AllowedSigners {
    /// Parses the text of an `allowed_signers` file; the first bad line is an error.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let entry = parse_line(trimmed, line).map_err(|reason| ParseError { line, reason })?;
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries whose key is `key`.
    pub fn entries_for<'a>(&'a self, key: &'a KeyData) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| matches!(&e.key, SignerKey::Supported(k) if k == key))
    }
}

impl Entry {
    /// Whether this entry lets its key sign for `namespace`. The list is matched as OpenSSH's
    /// `match_pattern_list` does: a `!pattern` that matches refuses, whatever else matches, so
    /// `namespaces="*,!git"` does not allow `git`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|list| principal_matches(&list.join(","), namespace))
    }
}

/// Whether `identity` matches a comma list of patterns, as OpenSSH's `match_pattern_list` does:
/// `*` and `?` wildcards, and a `!pattern` that matches makes the whole list not match.
pub fn principal_matches(patterns: &str, identity: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if pattern_matches(negated, identity) {
                return false;
            }
        } else if pattern_matches(pattern, identity) {
            matched = true;
        }
    }
    matched
}

/// Shell-style wildcard match of a whole string: `*` any run, `?` any one character.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

fn parse_line(line: &str, number: usize) -> Result<Entry, LineError> {
    let (principals, rest) = take_field(line)?;
    if principals.is_empty() {
        return Err(LineError::EmptyPrincipals);
    }
    let rest = rest.trim_start();
    let (first, after_first) = take_field(rest)?;
    let (options, key_text) = if first.is_empty() || is_key_type(&first) {
        (None, rest)
    } else if first.contains('=') || first.eq_ignore_ascii_case("cert-authority") {
        (Some(first), after_first.trim_start())
    } else {
        return Err(LineError::NotKeyOrOptions(first));
    };
    let mut entry = Entry {
        line: number,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: parse_key(key_text)?,
    };
    if let Some(options) = options {
        apply_options(&mut entry, &options)?;
    }
    if let (Some(after), Some(before)) = (entry.valid_after, entry.valid_before)
        && after >= before
    {
        return Err(LineError::NeverValid);
    }
    Ok(entry)
}

/// Takes one whitespace-separated field; double quotes group text (quotes are kept for options
/// and dropped for a quoted principals field).
fn take_field(text: &str) -> Result<(String, &str), LineError> {
    if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted.find('"').ok_or(LineError::UnclosedPrincipals)?;
        return Ok((quoted[..end].to_owned(), &quoted[end + 1..]));
    }
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => return Ok((text[..i].to_owned(), &text[i..])),
            _ => {}
        }
    }
    if in_quotes {
        return Err(LineError::UnclosedOption);
    }
    Ok((text.to_owned(), ""))
}

fn is_key_type(word: &str) -> bool {
    word == "ssh-ed25519"
        || UNSUPPORTED_KEY_TYPES.contains(&word)
        || word.contains("-cert-v01@openssh.com")
}

fn parse_key(text: &str) -> Result<SignerKey, LineError> {
    let mut words = text.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err(LineError::NoKey);
    };
    if kind.contains("-cert-v01@openssh.com") {
        return Err(LineError::Certificate(kind.to_owned()));
    }
    if kind == "ssh-ed25519" {
        let key = PublicKey::from_openssh(&format!("{kind} {blob}")).map_err(LineError::BadKey)?;
        return Ok(SignerKey::Supported(key.key_data().clone()));
    }
    if UNSUPPORTED_KEY_TYPES.contains(&kind) {
        return Ok(SignerKey::Unsupported {
            algorithm: kind.to_owned(),
        });
    }
    Err(LineError::UnknownKeyType(kind.to_owned()))
}

fn apply_options(entry: &mut Entry, options: &str) -> Result<(), LineError> {
    let mut given: Vec<String> = Vec::new();
    for option in split_options(options)? {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name.to_ascii_lowercase(), Some(unquote(value)?)),
            None => (option.to_ascii_lowercase(), None),
        };
        // OpenSSH refuses a line that gives an option twice ("multiple clauses"), even with
        // the same value; taking the first or the last would trust what ssh-keygen does not.
        if given.contains(&name) {
            return Err(LineError::OptionTwice(name));
        }
        given.push(name.clone());
        match (name.as_str(), value) {
            ("cert-authority", None) => {
                return Err(LineError::CertAuthority);
            }
            ("namespaces", Some(value)) => {
                entry.namespaces = Some(value.split(',').map(str::to_owned).collect());
            }
            ("valid-after", Some(value)) => entry.valid_after = Some(parse_time(&value)?),
            ("valid-before", Some(value)) => entry.valid_before = Some(parse_time(&value)?),
            ("namespaces" | "valid-after" | "valid-before", None) => {
                return Err(LineError::OptionNeedsValue(name));
            }
            _ => {
                return Err(LineError::UnknownOption(option.to_owned()));
            }
        }
    }
    Ok(())
}

/// Splits `a,b="x,y",c` at the commas outside quotes.
fn split_options(options: &str) -> Result<Vec<&str>, LineError> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes) = (0, false);
    for (i, c) in options.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&options[start..]);
    if parts.iter().any(|p| p.is_empty()) {
        return Err(LineError::EmptyOption(options.to_owned()));
    }
    Ok(parts)
}

fn unquote(value: &str) -> Result<String, LineError> {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => Ok(inner.to_owned()),
        None if !value.contains('"') => Ok(value.to_owned()),
        None => Err(LineError::UnbalancedQuotes(value.to_owned())),
    }
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, with an optional `Z`. Times are read as UTC
/// with or without the `Z` (OpenSSH reads them without `Z` in the host's local zone).
fn parse_time(value: &str) -> Result<i64, LineError> {
    let digits = value.strip_suffix(['Z', 'z']).unwrap_or(value);
    let bad = || LineError::BadTime(value.to_owned());
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| {
        digits
            .get(range)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let year = i64::from(field(0..4));
    unix_from_utc(
        year,
        field(4..6),
        field(6..8),
        field(8..10),
        field(10..12),
        field(12..14),
    )
    .ok_or_else(bad)
}

/// The `SHA256:...` fingerprint `ssh-keygen -l` prints for a key.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl0tQ6nhQhOybW+X3JtMmFv1rxr4rzPjHhpVRx4MFMg";

    fn parse(text: &str) -> Result<AllowedSigners, ParseError> {
        AllowedSigners::parse(text)
    }

    #[test]
    fn reads_principals_options_and_key() {
        let text = format!(
            "# release keys\n\n  alice@example.com,bob@* namespaces=\"git,shoal-release\",valid-after=\"20240101\",valid-before=\"20300101120000Z\" {KEY} alice laptop\n"
        );
        let signers = parse(&text).expect("parses");
        let [entry] = signers.entries() else {
            panic!("one entry")
        };
        assert_eq!(entry.line, 3);
        assert_eq!(entry.principals, "alice@example.com,bob@*");
        assert_eq!(
            entry.namespaces.as_deref(),
            Some(&["git".to_owned(), "shoal-release".to_owned()][..])
        );
        assert_eq!(entry.valid_after, Some(1_704_067_200));
        assert_eq!(entry.valid_before, Some(1_893_499_200));
        assert!(matches!(entry.key, SignerKey::Supported(_)));
        assert!(entry.allows_namespace("git"));
        assert!(!entry.allows_namespace("file"));
    }

    #[test]
    fn quoted_principals_and_no_options() {
        let signers = parse(&format!("\"release bot@example.com\" {KEY}")).expect("parses");
        assert_eq!(signers.entries()[0].principals, "release bot@example.com");
        assert!(signers.entries()[0].allows_namespace("anything"));
    }

    #[test]
    fn unsupported_key_types_are_kept_by_name() {
        let signers = parse("ops@example.com ecdsa-sha2-nistp256 AAAAE2VjZHNh").expect("parses");
        assert_eq!(
            signers.entries()[0].key,
            SignerKey::Unsupported {
                algorithm: "ecdsa-sha2-nistp256".into()
            }
        );
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let cases = [
            (
                format!("a@b cert-authority {KEY}"),
                1,
                "cert-authority is not supported",
            ),
            (
                format!("\n\na@b nosuch=\"x\" {KEY}"),
                3,
                "unknown option `nosuch=\"x\"`",
            ),
            (
                format!("a@b valid-after=\"2024\" {KEY}"),
                1,
                "`2024` is not a time",
            ),
            (
                format!("a@b valid-after=\"20240230\" {KEY}"),
                1,
                "`20240230` is not a time",
            ),
            ("a@b".to_owned(), 1, "there is no public key"),
            (
                "a@b ssh-ed25519 not-base64!".to_owned(),
                1,
                "cannot be read",
            ),
            (
                "a@b foo-key AAAA".to_owned(),
                1,
                "`foo-key` is neither a key type",
            ),
            (
                format!("a@b valid-after=\"20300101\",valid-before=\"20200101\" {KEY}"),
                1,
                "never valid",
            ),
            (format!("a@b namespaces=\"git {KEY}"), 1, "no closing"),
            (
                format!("a@b namespaces=\"git\",Namespaces=\"x\" {KEY}"),
                1,
                "option `namespaces` is given twice",
            ),
            (
                format!("a@b valid-before=\"20300101\",valid-before=\"20300101\" {KEY}"),
                1,
                "option `valid-before` is given twice",
            ),
            (
                format!("a@b ssh-ed25519-cert-v01@openssh.com {}", &KEY[12..]),
                1,
                "certificate",
            ),
        ];
        for (text, line, needle) in cases {
            let err = parse(&text).expect_err(&text);
            assert_eq!(err.line, line, "{text}");
            let reason = err.reason.to_string();
            assert!(reason.contains(needle), "{text}: {reason}");
        }
    }

    #[test]
    fn principal_patterns_follow_openssh() {
        assert!(principal_matches("alice@example.com", "alice@example.com"));
        assert!(principal_matches("*@example.com", "bob@example.com"));
        assert!(!principal_matches("*@example.com", "bob@example.org"));
        assert!(principal_matches("a?c", "abc"));
        assert!(!principal_matches(
            "*@example.com,!eve@*",
            "eve@example.com"
        ));
        assert!(principal_matches("x,*", "anyone"));
        let ns = |list: &str| Entry {
            namespaces: Some(list.split(',').map(str::to_owned).collect()),
            ..parse(&format!("a@b {KEY}")).expect("parses").entries()[0].clone()
        };
        assert!(!ns("*,!git").allows_namespace("git"));
        assert!(!ns("!git,*").allows_namespace("git"));
        assert!(ns("*,!git").allows_namespace("shoal-release"));
        assert!(!ns("!x").allows_namespace("git"));
        assert!(pattern_matches("v*", "v1.2.3"));
        assert!(pattern_matches("release-*-*", "release-1-2"));
        assert!(!pattern_matches("v*", "1.2.3"));
        assert!(pattern_matches("*", ""));
    }
}
