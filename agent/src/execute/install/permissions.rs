//! Applying an AppSpec's `permissions` to what the install created, with the CodeDeploy agent's
//! matching rules: only installed paths, never `object` itself unless it is a copied file; `**`
//! matches every depth, any other pattern immediate children; per target chmod → ACL →
//! SELinux context → chown; one target set twice by the same kind of setting is an error.
//!
//! Every change is made on the file itself, opened without following links from a safely
//! walked parent (`walk`), and only when it is still the file the install created; deepest
//! paths first, so a directory is handed to its new owner only after root is done inside it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Group, Uid, User, fchownat};
use shoal_shared::appspec::{AclEntry, Permission, SelinuxContext};
use xattr::FileExt;

use super::acl;
use super::error::InstallError;
use crate::execute::walk::{self, FileId, LastDir, WalkError};

/// What one target gets, and from which entry each setting came.
#[derive(Default)]
struct Settings<'a> {
    mode: Option<(usize, u32)>,
    acls: Option<(usize, &'a [AclEntry])>,
    context: Option<(usize, &'a SelinuxContext)>,
    owner: Option<(usize, &'a str)>,
    group: Option<(usize, &'a str)>,
}

/// Applies `permissions` to the `installed` paths (`copied` are the files among them), each
/// of which must still be the file `ids` says the install created. Returns the paths that got
/// a persistent SELinux rule, for the cleanup file.
pub fn apply(
    permissions: &[Permission],
    installed: &[&Path],
    copied: &[&Path],
    ids: &HashMap<PathBuf, FileId>,
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
    // Deepest first: everything inside a directory before the directory itself.
    let mut order: Vec<(&Path, Settings<'_>)> = targets.into_iter().collect();
    order.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
    let mut dirs = LastDir::default();
    let mut labelled = Vec::new();
    for (path, settings) in &order {
        if apply_one(&mut dirs, ids, path, settings)? {
            labelled.push(path.to_path_buf());
        }
    }
    Ok(labelled)
}

/// The `install.json` entries for `permissions`, in the CodeDeploy agent's order and shape:
/// entry by entry, its object when that is a copied file, else the copied files and then the
/// directories it matches (in install order); for each, `chmod`, `setfacl`, `semanage` and
/// `chown` as the entry sets them. What [`apply`] refuses is refused there, not here.
pub fn instructions(
    permissions: &[Permission],
    installed: &[&Path],
    copied: &[&Path],
) -> Vec<serde_json::Value> {
    let copied_set: HashSet<&Path> = copied.iter().copied().collect();
    let mut out = Vec::new();
    for permission in permissions {
        let object = Path::new(&permission.object);
        let targets: Vec<&Path> = if copied_set.contains(object) {
            vec![object]
        } else {
            let files = installed.iter().filter(|p| copied_set.contains(**p));
            let dirs = installed.iter().filter(|p| !copied_set.contains(**p));
            files
                .chain(dirs)
                .copied()
                .filter(|&path| matches(permission, object, path, copied_set.contains(path)))
                .collect()
        };
        for path in targets {
            let file = path.display().to_string();
            if let Some(mode) = permission.mode {
                out.push(
                    serde_json::json!({"type": "chmod", "mode": mode.to_string(), "file": file}),
                );
            }
            if !permission.acls.is_empty() {
                let acl: Vec<String> = permission.acls.iter().map(ToString::to_string).collect();
                out.push(serde_json::json!({"type": "setfacl", "acl": acl, "file": file}));
            }
            if let Some(context) = &permission.context {
                out.push(serde_json::json!({
                    "type": "semanage",
                    "context": {
                        "user": context.user,
                        "role": null,
                        "type": context.type_,
                        "range": context.range,
                    },
                    "file": file,
                }));
            }
            if permission.owner.is_some() || permission.group.is_some() {
                out.push(serde_json::json!({
                    "type": "chown",
                    "owner": permission.owner,
                    "group": permission.group,
                    "file": file,
                }));
            }
        }
    }
    out
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

/// Applies one target's settings on the file itself, opened without following links from a
/// safely walked parent, after checking it is still the file this install created. Returns
/// whether an SELinux rule was recorded for it.
fn apply_one(
    dirs: &mut LastDir,
    ids: &HashMap<PathBuf, FileId>,
    path: &Path,
    settings: &Settings<'_>,
) -> Result<bool, InstallError> {
    let replaced = || WalkError::Replaced {
        path: path.to_owned(),
    };
    let (parent, name) = walk::split(path).ok_or_else(replaced)?;
    let dir = dirs.open(parent, ids.get(parent).copied())?;
    let (file, stat) = dir
        .open_entry(name)
        .map_err(|e| InstallError::io("open", path, e.into()))?;
    if ids.get(path) != Some(&FileId::of(&stat)) {
        return Err(replaced().into());
    }
    let kind = walk::kind(&stat);
    let is_link = kind == SFlag::S_IFLNK;
    if let (Some((_, mode)), false) = (settings.mode, is_link) {
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(|e| InstallError::io("set the mode of", path, e.into()))?;
    }
    if let (Some((index, acls)), false) = (settings.acls, is_link) {
        set_acl(index, path, &file, acls, kind == SFlag::S_IFDIR)?;
    }
    let recorded = match settings.context {
        Some((_, context)) if !is_link => set_context(path, &file, context)?,
        _ => false,
    };
    let uid = match settings.owner {
        Some((index, name)) => Some(user_id(index, name)?),
        None => None,
    };
    let gid = match settings.group {
        Some((index, name)) => Some(group_id(index, name)?),
        None => None,
    };
    if uid.is_some() || gid.is_some() {
        fchownat(
            &file,
            "",
            uid.map(Uid::from_raw),
            gid.map(Gid::from_raw),
            AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| InstallError::io("change the owner of", path, e.into()))?;
    }
    Ok(recorded)
}

fn user_id(index: usize, name: &str) -> Result<u32, InstallError> {
    lookup(index, "owner", name, |n| {
        User::from_name(n).map(|u| u.map(|u| u.uid.as_raw()))
    })
}

fn group_id(index: usize, name: &str) -> Result<u32, InstallError> {
    lookup(index, "group", name, |n| {
        Group::from_name(n).map(|g| g.map(|g| g.gid.as_raw()))
    })
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

/// Sets the ACL `setfacl --set` would set, through the open file.
fn set_acl(
    index: usize,
    path: &Path,
    file: &File,
    acls: &[AclEntry],
    is_dir: bool,
) -> Result<(), InstallError> {
    if !is_dir && acls.iter().any(|a| a.default) {
        return Err(InstallError::Permission {
            index,
            why: format!(
                "default ACL entries apply to directories only, and {} is a file",
                path.display()
            ),
        });
    }
    let mode = nix::sys::stat::fstat(file)
        .map_err(|e| InstallError::io("inspect", path, e.into()))?
        .st_mode;
    let encoded = acl::encode(acls, mode, |is_user, name| {
        if is_user {
            user_id(index, name)
        } else {
            group_id(index, name)
        }
    })
    .map_err(|e| match e {
        // Already about this permissions entry.
        acl::AclError::Id(error @ InstallError::Permission { .. }) => error,
        other => InstallError::Permission {
            index,
            why: other.to_string(),
        },
    })?;
    let set = |attribute: &str, value: &[u8]| {
        file.set_xattr(attribute, value).map_err(|e| {
            if e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) {
                InstallError::Permission {
                    index,
                    why: format!(
                        "the file system of {} does not support ACLs (mount it with `acl`)",
                        path.display()
                    ),
                }
            } else {
                InstallError::io("set the ACL of", path, e)
            }
        })
    };
    set(acl::ACCESS, &encoded.access)?;
    if let Some(default) = &encoded.default {
        set(acl::DEFAULT, default)?;
    }
    Ok(())
}

/// Sets an SELinux context on the open file (its `security.selinux` attribute, as `chcon`
/// does, with the fields the AppSpec leaves out kept), and, where policycoreutils is installed,
/// records the rule with `semanage fcontext` so a relabel keeps it (recorded for cleanup).
/// Returns whether `semanage` recorded a rule.
fn set_context(path: &Path, file: &File, context: &SelinuxContext) -> Result<bool, InstallError> {
    const ATTRIBUTE: &str = "security.selinux";
    let unlabelled = || InstallError::NoSelinux {
        path: path.to_owned(),
    };
    let current = match file.get_xattr(ATTRIBUTE) {
        Ok(Some(value)) => value,
        Ok(None) => return Err(unlabelled()),
        Err(e) if e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => return Err(unlabelled()),
        Err(e) => return Err(InstallError::io("read the SELinux context of", path, e)),
    };
    let current = String::from_utf8_lossy(&current);
    let mut fields: Vec<&str> = current.trim_end_matches('\0').splitn(4, ':').collect();
    if fields.len() < 3 {
        return Err(unlabelled());
    }
    fields[2] = &context.type_;
    if let Some(user) = &context.user {
        fields[0] = user;
    }
    if let Some(range) = &context.range {
        fields.truncate(3);
        fields.push(range);
    }
    let mut label = fields.join(":").into_bytes();
    label.push(0);
    file.set_xattr(ATTRIBUTE, &label)
        .map_err(|e| InstallError::io("set the SELinux context of", path, e))?;
    let mut args = vec!["fcontext", "-a", "-t", context.type_.as_str()];
    if let Some(user) = &context.user {
        args.extend(["-s", user]);
    }
    if let Some(range) = &context.range {
        args.extend(["-r", range]);
    }
    match run_tool("semanage", "recording an SELinux context", path, &args) {
        Ok(()) => Ok(true),
        Err(InstallError::MissingTool { .. }) => Ok(false),
        Err(other) => Err(other),
    }
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
