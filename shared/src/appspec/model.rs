//! The validated model of an AppSpec file (CodeDeploy EC2/on-premises, `version: 0.0`).

use std::fmt;
use std::time::Duration;

/// The default timeout of one hook script, as in the CodeDeploy agent.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(3600);

/// A parsed and validated AppSpec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Files to copy from the bundle onto the host, in file order.
    pub files: Vec<FileMapping>,
    /// Permissions applied to the installed files, in file order.
    pub permissions: Vec<Permission>,
    /// Hooks by lifecycle event, in file order; events with a null value are dropped.
    pub hooks: Vec<Hook>,
    /// What to do with files that exist at a destination; `None` leaves it to the deployment.
    pub file_exists_behavior: Option<FileExistsBehavior>,
}

impl AppSpec {
    /// The scripts of one lifecycle event, or an empty slice when the AppSpec has none.
    pub fn scripts(&self, event: &str) -> &[Script] {
        self.hooks
            .iter()
            .find(|hook| hook.event == event)
            .map_or(&[], |hook| hook.scripts.as_slice())
    }
}

/// The scripts of one lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The event name as written, e.g. `AfterInstall`.
    pub event: String,
    /// Scripts run one after another, in list order.
    pub scripts: Vec<Script>,
}

/// One hook script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Path of the script relative to the bundle root (a leading `/` still means the bundle root).
    pub location: String,
    /// How long the script may run, output included.
    pub timeout: Duration,
    /// Run as this user, with its groups and login environment.
    pub runas: Option<String>,
    /// The undocumented `sudo: true` of the CodeDeploy agent.
    pub sudo: bool,
}

/// One `files` entry: copy `source` (relative to the bundle) into the directory `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// Relative to the bundle root; `/` is the whole bundle.
    pub source: String,
    /// An absolute directory on the host.
    pub destination: String,
}

/// What to do with a file that already exists where a bundle file is to be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileExistsBehavior {
    /// Fail the deployment (the default).
    Disallow,
    /// Replace the file.
    Overwrite,
    /// Keep the file on the host and skip the bundle's copy.
    Retain,
}

impl FileExistsBehavior {
    /// Parses the exact spelling CodeDeploy accepts (`DISALLOW`, `OVERWRITE`, `RETAIN`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "DISALLOW" => Some(Self::Disallow),
            "OVERWRITE" => Some(Self::Overwrite),
            "RETAIN" => Some(Self::Retain),
            _ => None,
        }
    }
}

impl fmt::Display for FileExistsBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disallow => "DISALLOW",
            Self::Overwrite => "OVERWRITE",
            Self::Retain => "RETAIN",
        })
    }
}

/// One `permissions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The installed file or directory the entry is about.
    pub object: String,
    /// `**` (every depth, the default) or a simple glob matched against immediate children.
    pub pattern: String,
    /// Simple globs of immediate children to leave alone.
    pub except: Vec<String>,
    /// Owner to set.
    pub owner: Option<String>,
    /// Group to set.
    pub group: Option<String>,
    /// Mode to set.
    pub mode: Option<Mode>,
    /// ACL entries to set with `setfacl`.
    pub acls: Vec<AclEntry>,
    /// SELinux context to set.
    pub context: Option<SelinuxContext>,
    /// Which kinds of path the entry applies to.
    pub types: ObjectTypes,
}

/// The `type` list of a permission entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTypes {
    /// Applies to regular files (and symlinks to them).
    pub file: bool,
    /// Applies to directories.
    pub directory: bool,
}

impl Default for ObjectTypes {
    fn default() -> Self {
        Self {
            file: true,
            directory: true,
        }
    }
}

/// A file mode: permission bits plus setuid, setgid and sticky (at most `0o7777`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0o777 {
            write!(f, "{:04o}", self.0)
        } else {
            write!(f, "{:03o}", self.0)
        }
    }
}

/// Who an ACL entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTag {
    /// A named user.
    User,
    /// A named group.
    Group,
    /// The mask entry.
    Mask,
    /// Others.
    Other,
}

/// One ACL entry, e.g. `d:u:bob:rw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// A default ACL entry (directories only).
    pub default: bool,
    /// Who the entry is about.
    pub tag: AclTag,
    /// User or group name; empty for mask and other.
    pub name: String,
    /// Permission bits: 4 read, 2 write, 1 execute.
    pub perms: u8,
}

impl fmt::Display for AclEntry {
    /// Formats the entry as `setfacl` accepts it, e.g. `default:user:bob:rw-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.default {
            f.write_str("default:")?;
        }
        let tag = match self.tag {
            AclTag::User => "user",
            AclTag::Group => "group",
            AclTag::Mask => "mask",
            AclTag::Other => "other",
        };
        let bit = |b: u8, c: char| if self.perms & b != 0 { c } else { '-' };
        write!(
            f,
            "{tag}:{}:{}{}{}",
            self.name,
            bit(4, 'r'),
            bit(2, 'w'),
            bit(1, 'x')
        )
    }
}

/// An SELinux file context, applied with `semanage fcontext` and `restorecon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelinuxContext {
    /// SELinux user (the agent reads the key `name`; shoal also accepts the documented `user`).
    pub user: Option<String>,
    /// SELinux type, e.g. `httpd_sys_content_t` (required).
    pub type_: String,
    /// MLS/MCS range, e.g. `s0` or `s3-s5:c0.c7,c13`.
    pub range: Option<String>,
}
