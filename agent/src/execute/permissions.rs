//! Applying an AppSpec's `permissions` to what the install created, with the CodeDeploy agent's
//! matching rules: only installed paths, never `object` itself unless it is a copied file; `**`
//! matches every depth, any other pattern immediate children; per target chmod → setfacl →
//! semanage → chown; one target set twice by the same kind of setting is an error.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Group, User};
use shoal_shared::appspec::{AclEntry, Permission, SelinuxContext};

use super::install::InstallError;

/// What one target gets, and from which entry each setting came.
#[derive(Default)]
struct Settings<'a> {
    mode: Option<(usize, u32)>,
    acls: Option<(usize, &'a [AclEntry])>,
    context: Option<(usize, &'a SelinuxContext)>,
    owner: Option<(usize, &'a str)>,
    group: Option<(usize, &'a str)>,
}

/// Applies `permissions` to the `installed` paths (`copied` are the files among them).
/// Returns the paths that got a persistent SELinux rule, for the cleanup file.
pub fn apply(
    permissions: &[Permission],
    installed: &[&Path],
    copied: &[&Path],
) -> Result<Vec<PathBuf>, InstallError> {
    let copied: HashSet<&Path> = copied.iter().copied().collect();
    let mut targets: BTreeMap<&Path, Settings<'_>> = BTreeMap::new();
    for (index, permission) in permissions.iter().enumerate() {
        let object = Path::new(&permission.object);
        if copied.contains(object) {
            check_file_object(index, permission)?;
        }
        for &path in installed {
            if !matches(permission, object, path, copied.contains(path)) {
                continue;
            }
            let settings = targets.entry(path).or_default();
            let claim = Claim { index, path };
            claim.set(&mut settings.mode, permission.mode.map(|m| m.0), "mode")?;
            let acls = Some(permission.acls.as_slice()).filter(|a| !a.is_empty());
            claim.set(&mut settings.acls, acls, "ACL")?;
            claim.set(
                &mut settings.context,
                permission.context.as_ref(),
                "SELinux context",
            )?;
            claim.set(&mut settings.owner, permission.owner.as_deref(), "owner")?;
            claim.set(&mut settings.group, permission.group.as_deref(), "group")?;
        }
    }
    let mut labelled = Vec::new();
    for (path, settings) in &targets {
        if apply_one(path, settings)? {
            labelled.push(path.to_path_buf());
        }
    }
    Ok(labelled)
}

/// Entry `index` setting something on `path`.
struct Claim<'p> {
    index: usize,
    path: &'p Path,
}

impl Claim<'_> {
    /// Records `value` in `slot`, unless an earlier entry already set it there.
    fn set<T>(
        &self,
        slot: &mut Option<(usize, T)>,
        value: Option<T>,
        what: &str,
    ) -> Result<(), InstallError> {
        let Some(value) = value else { return Ok(()) };
        if let Some((first, _)) = slot {
            return Err(InstallError::Permission {
                index: self.index,
                why: format!(
                    "sets the {what} of {} that permissions[{first}] already sets",
                    self.path.display()
                ),
            });
        }
        *slot = Some((self.index, value));
        Ok(())
    }
}

/// A permission whose object is a single copied file must be about that file alone.
fn check_file_object(index: usize, permission: &Permission) -> Result<(), InstallError> {
    if !permission.types.file || permission.pattern != "**" || !permission.except.is_empty() {
        return Err(InstallError::Permission {
            index,
            why: format!(
                "`{}` is a file, so `type` must include file and `pattern`/`except` must be left out",
                permission.object
            ),
        });
    }
    Ok(())
}

fn matches(permission: &Permission, object: &Path, path: &Path, is_file: bool) -> bool {
    let is_dir = !is_file;
    if (is_dir && !permission.types.directory) || (is_file && !permission.types.file) {
        return false;
    }
    if path == object {
        return is_file;
    }
    let Ok(relative) = path.strip_prefix(object) else {
        return false;
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if permission.except.iter().any(|except| glob(except, name)) {
        return false;
    }
    permission.pattern == "**"
        || (relative.components().count() == 1 && glob(&permission.pattern, name))
}

/// Matches `name` against a glob where only `*` is special.
pub fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Applies one target's settings; returns whether an SELinux rule was recorded for it.
fn apply_one(path: &Path, settings: &Settings<'_>) -> Result<bool, InstallError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| InstallError::io("inspect", path, e))?;
    let is_link = meta.file_type().is_symlink();
    if let (Some((_, mode)), false) = (settings.mode, is_link) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| InstallError::io("set the mode of", path, e))?;
    }
    if let (Some((index, acls)), false) = (settings.acls, is_link) {
        set_acl(index, path, acls, meta.is_dir())?;
    }
    let recorded = match settings.context {
        Some((_, context)) => set_context(path, context)?,
        None => false,
    };
    let uid = match settings.owner {
        Some((index, name)) => Some(lookup(index, "owner", name, |n| {
            User::from_name(n).map(|u| u.map(|u| u.uid.as_raw()))
        })?),
        None => None,
    };
    let gid = match settings.group {
        Some((index, name)) => Some(lookup(index, "group", name, |n| {
            Group::from_name(n).map(|g| g.map(|g| g.gid.as_raw()))
        })?),
        None => None,
    };
    if uid.is_some() || gid.is_some() {
        lchown(path, uid, gid).map_err(|e| InstallError::io("change the owner of", path, e))?;
    }
    Ok(recorded)
}

fn lookup(
    index: usize,
    what: &str,
    name: &str,
    find: impl Fn(&str) -> nix::Result<Option<u32>>,
) -> Result<u32, InstallError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    find(name)
        .ok()
        .flatten()
        .ok_or_else(|| InstallError::Permission {
            index,
            why: format!("{what} `{name}` does not exist on this host"),
        })
}

fn set_acl(index: usize, path: &Path, acls: &[AclEntry], is_dir: bool) -> Result<(), InstallError> {
    if !is_dir && acls.iter().any(|a| a.default) {
        return Err(InstallError::Permission {
            index,
            why: format!(
                "default ACL entries apply to directories only, and {} is a file",
                path.display()
            ),
        });
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| InstallError::io("inspect", path, e))?
        .permissions()
        .mode();
    let bits = |shift: u32| {
        let b = (mode >> shift) & 7;
        format!(
            "{}{}{}",
            if b & 4 != 0 { 'r' } else { '-' },
            if b & 2 != 0 { 'w' } else { '-' },
            if b & 1 != 0 { 'x' } else { '-' }
        )
    };
    let mut spec = vec![
        format!("user::{}", bits(6)),
        format!("group::{}", bits(3)),
        format!("other::{}", bits(0)),
    ];
    spec.extend(acls.iter().map(ToString::to_string));
    run_tool("setfacl", "setting ACLs", path, &["--set", &spec.join(",")])
}

/// Sets an SELinux context: persistently with `semanage fcontext` + `restorecon` where
/// policycoreutils is installed (recorded for cleanup), else on the file alone with `chcon`.
/// Returns whether `semanage` recorded a rule.
fn set_context(path: &Path, context: &SelinuxContext) -> Result<bool, InstallError> {
    let purpose = "setting an SELinux context";
    let mut args = vec!["fcontext", "-a", "-t", context.type_.as_str()];
    if let Some(user) = &context.user {
        args.extend(["-s", user]);
    }
    if let Some(range) = &context.range {
        args.extend(["-r", range]);
    }
    match run_tool("semanage", purpose, path, &args) {
        Ok(()) => return run_tool("restorecon", purpose, path, &[]).map(|()| true),
        Err(InstallError::MissingTool { .. }) => {}
        Err(other) => return Err(other),
    }
    let mut args = vec!["-t", context.type_.as_str()];
    if let Some(user) = &context.user {
        args.extend(["-u", user]);
    }
    if let Some(range) = &context.range {
        args.extend(["-l", range]);
    }
    run_tool("chcon", purpose, path, &args)
        .map_err(|e| match e {
            InstallError::MissingTool { purpose, .. } => InstallError::MissingTool {
                tool: "semanage or chcon",
                purpose,
            },
            other => other,
        })
        .map(|()| false)
}

fn run_tool(
    tool: &'static str,
    purpose: &str,
    path: &Path,
    args: &[&str],
) -> Result<(), InstallError> {
    let output = Command::new(tool)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InstallError::MissingTool {
                tool,
                purpose: purpose.to_owned(),
            },
            _ => InstallError::io("run a tool on", path, e),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(InstallError::Command {
        command: format!("{tool} {}", args.join(" ")),
        path: path.to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_only_know_star() {
        assert!(glob("*.sh", "run.sh"));
        assert!(glob("*", "anything"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(glob("exact", "exact"));
        assert!(!glob("*.sh", "run.py"));
        assert!(!glob("a*a", "a"));
        assert!(!glob("?.sh", "a.sh"), "? is not special");
    }
}
