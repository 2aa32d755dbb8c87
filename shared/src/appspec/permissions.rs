//! The `permissions` section: objects, patterns, modes, ACL entries and SELinux contexts,
//! validated by the grammar the CodeDeploy agent accepts.

use super::diagnostic::{AppSpecError, ErrorKind};
use super::fields::{Reader, climbs, error, list, text};
use super::model::{AclEntry, AclTag, Mode, ObjectTypes, Permission, SelinuxContext};
use super::yaml::{Node, Value};

const KIND: ErrorKind = ErrorKind::Permissions;
const PERMISSION_KEYS: &str = "object, pattern, except, owner, group, mode, acls, context, type";

pub(crate) fn permissions(
    reader: &mut Reader,
    node: &Node,
) -> Result<Vec<Permission>, AppSpecError> {
    let items = list(
        node,
        KIND,
        "permissions",
        "`[{object: /srv/app, mode: 644}]`",
    )?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(permission(reader, item, &format!("permissions[{i}]"))?);
    }
    Ok(out)
}

fn permission(reader: &mut Reader, node: &Node, path: &str) -> Result<Permission, AppSpecError> {
    let mut fields = reader.fields(node, path, KIND, "a mapping with at least `object`")?;
    let object = match fields.get("object") {
        Some(n) => text(n, KIND, &fields.path("object"), "a path")?
            .trim()
            .to_owned(),
        None => String::new(),
    };
    if object.is_empty() {
        return Err(error(
            KIND,
            node,
            path,
            "has no `object`; name the installed path it applies to",
        ));
    }
    if climbs(&object) {
        return Err(error(
            KIND,
            node,
            &fields.path("object"),
            format!(
                "`{object}` contains `..`, which could name a path outside the install; write \
                 the installed path without `..`, e.g. /srv/app"
            ),
        ));
    }
    let pattern = match fields.get("pattern") {
        Some(n) => text(n, KIND, &fields.path("pattern"), "a glob such as `*.sh`")?,
        None => "**".to_owned(),
    };
    let except = match fields.get("except") {
        Some(n) => strings(n, &fields.path("except"), "`[secret.txt]`")?,
        None => Vec::new(),
    };
    let types = match fields.get("type") {
        Some(n) => object_types(n, &fields.path("type"))?,
        None => ObjectTypes::default(),
    };
    let owner = optional_text(fields.get("owner"), &fields.path("owner"), "a user name")?;
    let group = optional_text(fields.get("group"), &fields.path("group"), "a group name")?;
    let mode = match fields.get("mode") {
        Some(n) => Some(mode(reader, n, &fields.path("mode"))?),
        None => None,
    };
    let acls = match fields.get("acls") {
        Some(n) => {
            let key = fields.path("acls");
            let entries = list(n, KIND, &key, "`[u:deploy:rwx]`")?;
            let mut acls = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let key = format!("{key}[{i}]");
                let written = text(entry, KIND, &key, "an ACL entry such as `u:deploy:rwx`")?;
                acls.push(
                    acl_entry(&written).map_err(|e| error(KIND, entry, &key, e.to_string()))?,
                );
            }
            acls
        }
        None => Vec::new(),
    };
    let context = match fields.get("context") {
        Some(n) => Some(context(reader, n, &fields.path("context"))?),
        None => None,
    };
    fields.warn_unknown(reader, PERMISSION_KEYS, "ignored");
    if owner.is_none() && group.is_none() && mode.is_none() && acls.is_empty() && context.is_none()
    {
        reader.warn(
            node.line,
            path,
            "sets nothing (no owner, group, mode, acls or context)",
        );
    }
    Ok(Permission {
        object,
        pattern,
        except,
        owner,
        group,
        mode,
        acls,
        context,
        types,
    })
}

fn optional_text(
    node: Option<&Node>,
    key: &str,
    what: &str,
) -> Result<Option<String>, AppSpecError> {
    node.map(|n| text(n, KIND, key, what).map(|t| t.trim().to_owned()))
        .transpose()
}

fn strings(node: &Node, key: &str, example: &str) -> Result<Vec<String>, AppSpecError> {
    list(node, KIND, key, example)?
        .iter()
        .enumerate()
        .map(|(i, item)| text(item, KIND, &format!("{key}[{i}]"), "a name or glob"))
        .collect()
}

fn object_types(node: &Node, key: &str) -> Result<ObjectTypes, AppSpecError> {
    let mut types = ObjectTypes {
        file: false,
        directory: false,
    };
    for (i, item) in list(node, KIND, key, "`[file, directory]`")?
        .iter()
        .enumerate()
    {
        match item.scalar_text().as_deref() {
            Some("file") => types.file = true,
            Some("directory") => types.directory = true,
            _ => {
                return Err(error(
                    KIND,
                    item,
                    &format!("{key}[{i}]"),
                    format!(
                        "`{}` is not a type; use `file` or `directory`",
                        item.raw.trim()
                    ),
                ));
            }
        }
    }
    Ok(types)
}

/// Reads a mode as the digits written. Where the CodeDeploy agent's YAML 1.1 reading of an
/// unquoted leading-zero number (octal) would give another result, a warning says so.
fn mode(reader: &mut Reader, node: &Node, key: &str) -> Result<Mode, AppSpecError> {
    let written = match &node.value {
        Value::Int(i) if *i >= 0 => i.to_string(),
        Value::Str(s) => s.trim().to_owned(),
        _ => node.raw.trim().to_owned(),
    };
    let bits = parse_mode(&written).map_err(|e| error(KIND, node, key, e.to_string()))?;
    let plain_leading_zero = matches!(node.value, Value::Str(_)) && !node.is_quoted();
    if plain_leading_zero && written.len() > 1 && written.starts_with('0') {
        let as_yaml_1_1 = u32::from_str_radix(&written, 8).map(|n| n.to_string());
        match as_yaml_1_1.as_deref().map(|t| (t, parse_mode(t))) {
            Ok((reference, Ok(reference_bits))) if reference_bits != bits => reader.warn(
                node.line,
                key,
                format!(
                    "unquoted `{written}` is the YAML 1.1 octal number {reference}, so the \
                     CodeDeploy agent would apply mode {reference}; shoal applies {written} as \
                     written (quote it to make both agree)"
                ),
            ),
            Ok((reference, Err(_))) => reader.warn(
                node.line,
                key,
                format!(
                    "unquoted `{written}` is the YAML 1.1 octal number {reference}, which the \
                     CodeDeploy agent rejects as a mode; shoal applies {written} as written \
                     (quote it to make both agree)"
                ),
            ),
            _ => {}
        }
    }
    Ok(Mode(bits))
}

/// A mode as written that is not 1 to 4 octal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ModeError {
    /// No digits, or more than 4.
    #[error("`{digits}` has {} digits; a mode has 1 to 4 octal digits such as 644 or 2755", digits.chars().count())]
    Length { digits: String },
    /// A character that is not an octal digit.
    #[error(
        "`{digits}` contains `{bad}`; a mode has 1 to 4 octal digits (0-7) such as 644 or 2755"
    )]
    NotOctal { digits: String, bad: char },
}

fn parse_mode(digits: &str) -> Result<u32, ModeError> {
    if digits.is_empty() || digits.len() > 4 {
        return Err(ModeError::Length {
            digits: digits.to_owned(),
        });
    }
    if let Some(bad) = digits.chars().find(|c| !('0'..='7').contains(c)) {
        return Err(ModeError::NotOctal {
            digits: digits.to_owned(),
            bad,
        });
    }
    Ok(digits
        .bytes()
        .fold(0, |bits, digit| bits * 8 + u32::from(digit - b'0')))
}

/// How an ACL entry is written, for the sentence that refuses one.
const ACL_GRAMMAR: &str = "write `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:perms`, e.g. `u:deploy:rwx` or `d:g:staff:r-x`";

/// Why an ACL entry is refused; each sentence quotes the entry as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclEntryError {
    /// Not of the grammar's shape, or an unknown tag.
    #[error("`{0}` is not an ACL entry; {ACL_GRAMMAR}")]
    NotAnEntry(String),
    /// A mask or other entry with a name.
    #[error("`{0}`: mask and other entries take no name; write e.g. `m::rx`")]
    NamedMaskOrOther(String),
    /// An owner, group or other entry, which `mode` sets.
    #[error("`{0}` sets a base entry; use `mode` for the owner, group and other permissions")]
    BaseEntry(String),
    /// Permissions that are not `rwx` letters or one octal digit.
    #[error(
        "`{written}`: permissions `{perms}` must be up to three of r, w, x, - (e.g. `rw-`) or one digit 0-7"
    )]
    BadPerms {
        /// The entry as written.
        written: String,
        /// Its permissions part.
        perms: String,
    },
    /// No permissions after the last `:`.
    #[error("`{0}` has no permissions; end it with e.g. `:rwx`")]
    NoPerms(String),
}

/// Parses `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:perms`.
pub fn acl_entry(written: &str) -> Result<AclEntry, AclEntryError> {
    let parts: Vec<&str> = written.trim().split(':').collect();
    if !(2..=4).contains(&parts.len()) {
        return Err(AclEntryError::NotAnEntry(written.to_owned()));
    }
    let (head, tail) = parts.split_at(parts.len() - 2);
    let (name, perms) = (tail[0], tail[1]);
    let is_default = |p: &str| p == "d" || p == "default";
    let tag_of = |p: &str| match p {
        "u" | "user" => Some(AclTag::User),
        "g" | "group" => Some(AclTag::Group),
        "m" | "mask" => Some(AclTag::Mask),
        "o" | "other" => Some(AclTag::Other),
        _ => None,
    };
    let bad = || AclEntryError::NotAnEntry(written.to_owned());
    let (default, tag) = match head {
        [] => (false, AclTag::User),
        [only] if is_default(only) => (true, AclTag::User),
        [only] => (false, tag_of(only).ok_or_else(bad)?),
        [first, second] if is_default(first) => (true, tag_of(second).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if matches!(tag, AclTag::Mask | AclTag::Other) && !name.is_empty() {
        return Err(AclEntryError::NamedMaskOrOther(written.to_owned()));
    }
    if !default && name.is_empty() && tag != AclTag::Mask {
        return Err(AclEntryError::BaseEntry(written.to_owned()));
    }
    Ok(AclEntry {
        default,
        tag,
        name: name.to_owned(),
        perms: acl_perms(written, perms)?,
    })
}

fn acl_perms(written: &str, perms: &str) -> Result<u8, AclEntryError> {
    if let [digit @ b'0'..=b'7'] = perms.as_bytes() {
        return Ok(digit - b'0');
    }
    let mut bits = 0u8;
    for c in perms.chars() {
        let bit = match c {
            'r' => 4,
            'w' => 2,
            'x' => 1,
            '-' => 0,
            _ => 8,
        };
        if bit == 8 || (bit != 0 && bits & bit != 0) || perms.len() > 3 {
            return Err(AclEntryError::BadPerms {
                written: written.to_owned(),
                perms: perms.to_owned(),
            });
        }
        bits |= bit;
    }
    if perms.is_empty() {
        return Err(AclEntryError::NoPerms(written.to_owned()));
    }
    Ok(bits)
}

const CONTEXT_KEYS: &str = "name, type, range (and `user`, read as `name`)";

fn context(reader: &mut Reader, node: &Node, key: &str) -> Result<SelinuxContext, AppSpecError> {
    let mut fields = reader.fields(
        node,
        key,
        KIND,
        "a mapping with `type` and optional `name` and `range`",
    )?;
    if let Some(role) = fields.get("role") {
        return Err(error(
            KIND,
            role,
            &fields.path("role"),
            "SELinux roles are not supported in file contexts; set `name`, `type` and `range`",
        ));
    }
    let user_key = fields.get("user");
    if let Some(n) = user_key {
        reader.warn(
            n.line,
            &fields.path("user"),
            "the CodeDeploy agent ignores `user` and reads the SELinux user from `name`; shoal accepts both",
        );
    }
    let name = fields.get("name").or(user_key);
    let user = optional_text(
        name,
        &fields.path("name"),
        "an SELinux user such as `system_u`",
    )?;
    let type_ = optional_text(fields.get("type"), &fields.path("type"), "an SELinux type")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            error(
                KIND,
                node,
                key,
                "has no `type`; an SELinux context needs a type such as `httpd_sys_content_t`",
            )
        })?;
    let range = match fields.get("range") {
        Some(n) => {
            let written = text(
                n,
                KIND,
                &fields.path("range"),
                "a string such as `s0` or `s0-s2:c0.c7`",
            )?;
            selinux_range(&written)
                .map_err(|e| error(KIND, n, &fields.path("range"), e.to_string()))?;
            Some(written)
        }
        None => None,
    };
    fields.warn_unknown(reader, CONTEXT_KEYS, "ignored");
    Ok(SelinuxContext { user, type_, range })
}

/// An SELinux range that cannot be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{written}` is not an SELinux range ({reason}); write e.g. `s0` or `s0-s2:c0.c7,c12`")]
pub struct SelinuxRangeError {
    /// The range as written.
    pub written: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

/// Validates an MLS range such as `s0`, `s3-s5:c0.c7,c13` (categories 0-1023, each at most once).
pub fn selinux_range(written: &str) -> Result<(), SelinuxRangeError> {
    let bad = |reason: &'static str| SelinuxRangeError {
        written: written.to_owned(),
        reason,
    };
    let (levels, categories) = match written.split_once(':') {
        Some((l, c)) => (l, Some(c)),
        None => (written, None),
    };
    let level = |s: &str| s.strip_prefix('s').and_then(|n| n.parse::<u32>().ok());
    let (low, high) = match levels.split_once('-') {
        Some((l, h)) => (level(l), level(h)),
        None => (level(levels), level(levels)),
    };
    match (low, high) {
        (Some(l), Some(h)) if l <= h => {}
        (Some(_), Some(_)) => return Err(bad("the low sensitivity is above the high one")),
        _ => return Err(bad("sensitivities are s followed by a number")),
    }
    let Some(categories) = categories else {
        return Ok(());
    };
    let mut seen = [false; 1024];
    for item in categories.split(',') {
        let category = |s: &str| {
            s.strip_prefix('c')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < 1024)
        };
        let (first, last) = match item.split_once('.') {
            Some((a, b)) => (category(a), category(b)),
            None => (category(item), category(item)),
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Err(bad(
                "categories are c0 to c1023, single or as a range c0.c7",
            ));
        };
        if first > last {
            return Err(bad("a category range goes from low to high"));
        }
        let span = &mut seen[first..=last];
        if span.iter().any(|s| *s) {
            return Err(bad("a category is listed twice"));
        }
        span.fill(true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_entries_follow_the_agent_grammar() {
        let e = acl_entry("d:g:manager:rw").expect("valid");
        assert_eq!(
            (e.default, e.tag, e.name.as_str(), e.perms),
            (true, AclTag::Group, "manager", 6)
        );
        assert_eq!(
            acl_entry("u:henry:7").expect("valid").to_string(),
            "user:henry:rwx"
        );
        assert_eq!(
            acl_entry("bob:r-x").expect("valid").to_string(),
            "user:bob:r-x"
        );
        assert_eq!(
            acl_entry("default:bob:r").expect("valid").to_string(),
            "default:user:bob:r--"
        );
        assert!(acl_entry("d:u:bob:7:rwx").is_err(), "five parts");
        assert!(acl_entry("u::7").is_err(), "base entry");
        assert!(acl_entry("m:bob:rwx").is_err(), "named mask");
        assert!(acl_entry("u:bob:rwxx").is_err(), "four perms");
        assert!(acl_entry("u:bob:8").is_err(), "digit above 7");
        assert!(acl_entry("x:bob:r").is_err(), "unknown tag");
        assert!(acl_entry("u:bob:rr").is_err(), "repeated perm");
        assert!(acl_entry("m::rx").is_ok(), "unnamed mask");
    }

    #[test]
    fn selinux_ranges() {
        for ok in ["s0", "s3-s5:c0.c7,c13", "s0:c1023", "s0-s0"] {
            assert!(selinux_range(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "s",
            "0",
            "s5-s3",
            "s0:c1024",
            "s0:c1,c1",
            "s0:c0.c3,c2",
            "s0:c5.c2",
            "s0:",
        ] {
            assert!(selinux_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_are_one_to_four_octal_digits() {
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("6763"), Ok(0o6763));
        assert_eq!(parse_mode("0"), Ok(0));
        assert!(parse_mode("12345").is_err());
        assert!(parse_mode("12a").is_err());
        assert!(parse_mode("8").is_err());
    }
}
