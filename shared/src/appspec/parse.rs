//! Turning AppSpec text into an [`AppSpec`]: the checks, their order and their messages follow
//! the CodeDeploy agent (version → os → hooks → files → permissions → file_exists_behavior; the
//! first problem wins), with warnings where shoal does better or differently.

use std::time::Duration;

use super::diagnostic::{AppSpecError, ErrorKind, Warning};
use super::fields::{Fields, Reader, climbs, error, list, text};
use super::lifecycle;
use super::model::{
    AppSpec, DEFAULT_SCRIPT_TIMEOUT, FileExistsBehavior, FileMapping, Hook, Script,
};
use super::permissions::permissions;
use super::yaml::{self, Node, Value};

/// CodeDeploy's limit on the scripts of one lifecycle event, all timeouts added up.
pub const EVENT_TIMEOUT_LIMIT: Duration = Duration::from_secs(3600);

/// A valid AppSpec and what the user should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The model.
    pub spec: AppSpec,
    /// Things accepted with a caveat, in file order.
    pub warnings: Vec<Warning>,
}

const TOP_KEYS: &str = "version, os, files, permissions, hooks, file_exists_behavior";

/// Parses and validates AppSpec text.
pub fn parse(source: &str) -> Result<Parsed, AppSpecError> {
    let root = yaml::parse(source).map_err(|syntax| AppSpecError {
        kind: if syntax.too_large {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Syntax
        },
        line: syntax.line,
        key: String::new(),
        message: if syntax.too_large {
            syntax.message
        } else {
            format!("not valid YAML: {syntax}")
        },
    })?;
    let root = root
        .filter(|node| node.value != Value::Null)
        .ok_or_else(|| AppSpecError {
            kind: ErrorKind::Empty,
            line: None,
            key: String::new(),
            message: "the AppSpec is empty; it must define at least `version: 0.0` and `os: linux`"
                .to_owned(),
        })?;
    let mut reader = Reader::default();
    let mut top = reader.fields(
        &root,
        "",
        ErrorKind::Empty,
        "a mapping with at least `version: 0.0` and `os: linux`",
    )?;
    version(&mut reader, &mut top)?;
    os(&mut top)?;
    let hooks = match top.get("hooks") {
        Some(node) => hooks(&mut reader, node)?,
        None => Vec::new(),
    };
    let files = match top.get("files") {
        Some(node) => files(&mut reader, node)?,
        None => Vec::new(),
    };
    let permissions = match top.get("permissions") {
        Some(node) => permissions(&mut reader, node)?,
        None => Vec::new(),
    };
    let file_exists_behavior = match top.get("file_exists_behavior") {
        Some(node) => Some(file_exists_behavior(node)?),
        None => None,
    };
    top.warn_unknown(&mut reader, TOP_KEYS, "ignored as by the CodeDeploy agent");
    Ok(Parsed {
        spec: AppSpec {
            files,
            permissions,
            hooks,
            file_exists_behavior,
        },
        warnings: reader.warnings,
    })
}

fn version(reader: &mut Reader, top: &mut Fields<'_>) -> Result<(), AppSpecError> {
    let Some(node) = top.get("version") else {
        return Err(AppSpecError {
            kind: ErrorKind::Version,
            line: None,
            key: "version".to_owned(),
            message: "missing; add `version: 0.0`".to_owned(),
        });
    };
    match &node.value {
        Value::Float(v) if *v == 0.0 => Ok(()),
        Value::Int(0) => Ok(()),
        Value::Str(v) if v.trim() == "0.0" => {
            reader.warn(
                node.line,
                "version",
                "a quoted version is accepted, but the CodeDeploy agent rejects it; \
                 write `version: 0.0` unquoted to keep both working",
            );
            Ok(())
        }
        _ => Err(error(
            ErrorKind::Version,
            node,
            "version",
            format!(
                "`{}` is not supported; the only AppSpec version for EC2 and on-premises hosts is 0.0",
                node.raw.trim()
            ),
        )),
    }
}

fn os(top: &mut Fields<'_>) -> Result<(), AppSpecError> {
    let Some(node) = top.get("os") else {
        let hint = if top.has("Resources") || top.has("Hooks") {
            "; this looks like an ECS or Lambda AppSpec, which shoal does not run"
        } else {
            ""
        };
        return Err(AppSpecError {
            kind: ErrorKind::Os,
            line: None,
            key: "os".to_owned(),
            message: format!("missing; add `os: linux`{hint}"),
        });
    };
    match node.scalar_text().as_deref() {
        Some("linux") => Ok(()),
        Some("windows") => Err(error(
            ErrorKind::Os,
            node,
            "os",
            "`windows` AppSpecs need a Windows host; shoal runs on Linux and accepts only `os: linux`",
        )),
        _ => Err(error(
            ErrorKind::Os,
            node,
            "os",
            format!("`{}` is not supported; use `os: linux`", node.raw.trim()),
        )),
    }
}

const SCRIPT_KEYS: &str = "location, timeout, runas, sudo";

fn hooks(reader: &mut Reader, node: &Node) -> Result<Vec<Hook>, AppSpecError> {
    let mut fields = reader.fields(
        node,
        "hooks",
        ErrorKind::Hooks,
        "a mapping of lifecycle event names to lists of scripts",
    )?;
    let mut hooks = Vec::new();
    for (event, line, scripts_node) in fields.all() {
        let path = fields.path(&event);
        if scripts_node.value == Value::Null {
            reader.warn(line, &path, "has no scripts and is ignored");
            continue;
        }
        check_event_name(reader, line, &path, &event);
        let items = list(
            scripts_node,
            ErrorKind::Hooks,
            &path,
            "`[{location: scripts/run.sh}]`",
        )?;
        let mut scripts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            scripts.push(script(reader, item, &format!("{path}[{i}]"))?);
        }
        let total: Duration = scripts.iter().map(|s| s.timeout).sum();
        if total > EVENT_TIMEOUT_LIMIT {
            reader.warn(
                line,
                &path,
                format!(
                    "the timeouts of its {} scripts add up to {} s, more than the 3600 s CodeDeploy \
                     allows one event; shoal enforces each script's own timeout",
                    scripts.len(),
                    total.as_secs()
                ),
            );
        }
        hooks.push(Hook { event, scripts });
    }
    Ok(hooks)
}

fn check_event_name(reader: &mut Reader, line: u64, path: &str, event: &str) {
    if lifecycle::RESERVED.contains(&event) {
        reader.warn(
            line,
            path,
            format!("`{event}` is carried out by the agent itself; these scripts never run"),
        );
    } else if lifecycle::find(event).is_none() {
        let named = if event.is_empty() {
            "an event with no name".to_owned()
        } else {
            format!("`{event}`")
        };
        reader.warn(
            line,
            path,
            format!(
                "{named} is not a lifecycle event of an in-place deployment, so a deployment \
                 refuses it (as the CodeDeploy agent does); events are {}",
                scriptable_events()
            ),
        );
    }
}

fn scriptable_events() -> String {
    lifecycle::IN_PLACE
        .iter()
        .filter(|e| e.kind != lifecycle::EventKind::Agent)
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn script(reader: &mut Reader, node: &Node, path: &str) -> Result<Script, AppSpecError> {
    let mut fields = reader.fields(
        node,
        path,
        ErrorKind::Hooks,
        "a mapping such as `{location: scripts/run.sh, timeout: 300}`",
    )?;
    let location = match fields.get("location") {
        Some(n) => text(n, ErrorKind::Hooks, &fields.path("location"), "a path")?
            .trim()
            .to_owned(),
        None => String::new(),
    };
    if location.is_empty() {
        return Err(error(
            ErrorKind::Hooks,
            node,
            path,
            "the script has no `location`; give the script's path relative to the bundle root",
        ));
    }
    let timeout = match fields.get("timeout") {
        Some(n) => timeout(reader, n, &fields.path("timeout"))?,
        None => DEFAULT_SCRIPT_TIMEOUT,
    };
    let runas = match fields.get("runas") {
        Some(n) => Some(text(
            n,
            ErrorKind::Hooks,
            &fields.path("runas"),
            "a user name",
        )?)
        .filter(|user| !user.trim().is_empty()),
        None => None,
    };
    let sudo = match fields.get("sudo") {
        Some(Node {
            value: Value::Bool(b),
            ..
        }) => *b,
        Some(n) => {
            return Err(error(
                ErrorKind::Hooks,
                n,
                &fields.path("sudo"),
                format!("must be true or false, not `{}`", n.raw.trim()),
            ));
        }
        None => false,
    };
    fields.warn_unknown(reader, SCRIPT_KEYS, "ignored");
    Ok(Script {
        location,
        timeout,
        runas,
        sudo,
    })
}

/// Reads a timeout as the agent does (Ruby `to_i`: leading digits count, the rest is ignored).
fn timeout(reader: &mut Reader, node: &Node, path: &str) -> Result<Duration, AppSpecError> {
    let written = text(node, ErrorKind::Hooks, path, "a number of seconds")?;
    let written = written.trim();
    let digits: String = written
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    let seconds: u64 = digits.parse().unwrap_or(0);
    if seconds == 0 {
        return Err(error(
            ErrorKind::Hooks,
            node,
            path,
            format!("`{written}` is not a positive number of seconds; write e.g. `timeout: 300`"),
        ));
    }
    if digits.len() != written.len() && !matches!(node.value, Value::Float(_)) {
        reader.warn(
            node.line,
            path,
            format!("`{written}` is read as {seconds} seconds, as the CodeDeploy agent reads it"),
        );
    }
    Ok(Duration::from_secs(seconds))
}

const FILE_KEYS: &str = "source, destination";

fn files(reader: &mut Reader, node: &Node) -> Result<Vec<FileMapping>, AppSpecError> {
    let items = list(
        node,
        ErrorKind::Files,
        "files",
        "`[{source: /, destination: /srv/app}]`",
    )?;
    let mut files = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("files[{i}]");
        let mut fields = reader.fields(
            item,
            &path,
            ErrorKind::Files,
            "a mapping with `source` and `destination`",
        )?;
        let mut required = |key: &str, what: &str| -> Result<String, AppSpecError> {
            let value = match fields.get(key) {
                Some(n) => text(n, ErrorKind::Files, &fields.path(key), what)?,
                None => String::new(),
            };
            if value.trim().is_empty() {
                return Err(error(
                    ErrorKind::Files,
                    item,
                    &path,
                    format!("has no `{key}`; every files entry needs a source and a destination"),
                ));
            }
            Ok(value.trim().to_owned())
        };
        let source = required("source", "a path in the bundle")?;
        let destination = required("destination", "an absolute directory")?;
        if climbs(&destination) {
            return Err(error(
                ErrorKind::Files,
                item,
                &format!("{path}.destination"),
                format!(
                    "`{destination}` contains `..`, which could leave the directory it names \
                     (and `node.files_root`); write the path without `..`, e.g. /srv/app"
                ),
            ));
        }
        if !destination.starts_with('/') {
            reader.warn(
                item.line,
                &format!("{path}.destination"),
                format!(
                    "`{destination}` is not an absolute path, so the Install step will fail; \
                     destinations are directories such as /srv/app"
                ),
            );
        }
        fields.warn_unknown(reader, FILE_KEYS, "ignored as by the CodeDeploy agent");
        files.push(FileMapping {
            source,
            destination,
        });
    }
    Ok(files)
}

fn file_exists_behavior(node: &Node) -> Result<FileExistsBehavior, AppSpecError> {
    node.scalar_text()
        .as_deref()
        .and_then(FileExistsBehavior::parse)
        .ok_or_else(|| {
            error(
                ErrorKind::FileExistsBehavior,
                node,
                "file_exists_behavior",
                format!(
                    "`{}` is not one of DISALLOW, OVERWRITE, RETAIN (upper case)",
                    node.raw.trim()
                ),
            )
        })
}
