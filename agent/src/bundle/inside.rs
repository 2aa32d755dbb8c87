//! Paths into an unpacked bundle that never lead out of it.
//!
//! A bundle may hold links that point outside it (`current -> /opt/app/releases/3`,
//! `hostname -> /etc/hostname`): they are unpacked and installed as links, as the CodeDeploy
//! agent does. But reading the AppSpec, a hook script or an install source *through* such a link
//! would read the host instead of the release, so a path into the bundle follows only the links
//! that stay inside it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// How many links one resolution follows before it calls the path a loop (the kernel's limit).
const MAX_HOPS: usize = 40;

/// Why a path does not stay inside the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// Its own `..` components climb above the bundle root.
    Climbs,
    /// It goes through a link of the bundle that leads out of it.
    Link {
        /// The link, relative to the bundle root.
        link: PathBuf,
        /// What the link points to.
        target: PathBuf,
    },
    /// More links than the kernel would follow.
    Loop,
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Climbs => f.write_str("its `..` parts climb above the bundle root"),
            Self::Link { link, target } => write!(
                f,
                "it goes through the link {} -> {}, which leads outside the bundle",
                link.display(),
                target.display()
            ),
            Self::Loop => write!(f, "it goes through more than {MAX_HOPS} links (a loop?)"),
        }
    }
}

/// Resolves `rel` (a leading `/` means the bundle root) inside the bundle at `root`, following
/// the bundle's links the way the kernel would, and returns the path under `root` with no link
/// left on its way. The last component is followed only when `follow_last` is set, so a link
/// named directly can be read as a link. Missing components and `..` after them are taken as
/// written: such a path does not exist, and cannot leave the bundle either.
pub fn inside(root: &Path, rel: &Path, follow_last: bool) -> Result<PathBuf, Outside> {
    let mut at = PathBuf::new();
    let mut rest: VecDeque<OsString> = VecDeque::new();
    push_front(&mut rest, rel);
    // The link being expanded, named if its target climbs out.
    let mut via: Option<(PathBuf, PathBuf)> = None;
    let mut hops = 0;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            if !at.pop() {
                return Err(match via {
                    Some((link, target)) => Outside::Link { link, target },
                    None => Outside::Climbs,
                });
            }
            continue;
        }
        let next = at.join(&part);
        let is_last = rest.is_empty();
        let target = match fs::symlink_metadata(root.join(&next)) {
            Ok(meta) if meta.file_type().is_symlink() && (follow_last || !is_last) => {
                fs::read_link(root.join(&next)).ok()
            }
            _ => None,
        };
        let Some(target) = target else {
            at = next;
            continue;
        };
        hops += 1;
        if hops > MAX_HOPS {
            return Err(Outside::Loop);
        }
        if target.has_root() {
            return Err(Outside::Link { link: next, target });
        }
        push_front(&mut rest, &target);
        via = Some((next, target));
    }
    Ok(root.join(at))
}

/// Puts the components of `path` before `rest`, `.` and `/` dropped.
fn push_front(rest: &mut VecDeque<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => rest.push_front(name.to_owned()),
            Component::ParentDir => rest.push_front("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("releases/3/bin")).expect("mkdir");
        fs::write(root.join("releases/3/bin/start.sh"), "#!/bin/sh\n").expect("write");
        symlink("releases/3", root.join("current")).expect("link");
        symlink("../current/bin", root.join("releases/bin")).expect("link");
        symlink("/etc", root.join("etc")).expect("link");
        symlink("../../..", root.join("releases/up")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        dir
    }

    #[test]
    fn links_inside_the_bundle_are_followed() {
        let dir = bundle();
        let root = dir.path();
        let start = root.join("releases/3/bin/start.sh");
        assert_eq!(
            inside(root, Path::new("current/bin/start.sh"), true),
            Ok(start.clone())
        );
        assert_eq!(
            inside(root, Path::new("/releases/bin/start.sh"), true),
            Ok(start)
        );
        assert_eq!(
            inside(root, Path::new("current/bin/../../3"), true),
            Ok(root.join("releases/3")),
            "`..` goes back along the link's target, as the kernel does"
        );
    }

    #[test]
    fn the_last_link_is_kept_unless_followed() {
        let dir = bundle();
        let root = dir.path();
        assert_eq!(
            inside(root, Path::new("current"), false),
            Ok(root.join("current"))
        );
        assert_eq!(inside(root, Path::new("etc"), false), Ok(root.join("etc")));
        assert_eq!(
            inside(root, Path::new("current"), true),
            Ok(root.join("releases/3"))
        );
    }

    #[test]
    fn links_leading_out_are_refused_by_name() {
        let dir = bundle();
        let root = dir.path();
        assert_eq!(
            inside(root, Path::new("etc/passwd"), false),
            Err(Outside::Link {
                link: "etc".into(),
                target: "/etc".into()
            })
        );
        assert_eq!(
            inside(root, Path::new("releases/up/x"), true),
            Err(Outside::Link {
                link: "releases/up".into(),
                target: "../../..".into()
            })
        );
        assert_eq!(
            inside(root, Path::new("a/../../x"), true),
            Err(Outside::Climbs)
        );
        assert_eq!(inside(root, Path::new("loop"), true), Err(Outside::Loop));
    }

    #[test]
    fn missing_paths_resolve_as_written() {
        let root = Path::new("/nonexistent/deployment-archive");
        assert_eq!(
            inside(root, Path::new("./scripts/../b.sh"), true),
            Ok(root.join("b.sh"))
        );
        assert_eq!(inside(root, Path::new(".."), true), Err(Outside::Climbs));
    }
}
