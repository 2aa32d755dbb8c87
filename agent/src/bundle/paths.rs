//! Entry names and link targets: turn raw archive names into safe relative paths, and decide
//! whether a symlink's target stays inside the bundle root.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::error::BundleError;

/// What the unpacker has put at a relative path so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    Dir,
    File,
    Symlink(PathBuf),
}

/// The tree the unpacker has built, keyed by path relative to the unpack root.
pub(super) type Tree = HashMap<PathBuf, Node>;

/// How many symlinks one resolution may follow before giving up (the kernel's ELOOP limit).
const MAX_HOPS: usize = 40;

/// An archive entry's name as people should read it in an error.
pub(super) fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Turns a raw entry name into a path relative to the bundle root, refusing absolute names and
/// `..` components. `.` components and repeated slashes are dropped; the root itself (`./`) is
/// `None`.
pub(super) fn normalize(raw: &[u8]) -> Result<Option<PathBuf>, BundleError> {
    if raw.first() == Some(&b'/') {
        return Err(BundleError::AbsolutePath {
            entry: display(raw),
        });
    }
    let mut path = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(BundleError::ParentDir {
                    entry: display(raw),
                });
            }
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Ok((!path.as_os_str().is_empty()).then_some(path))
}

/// Refuses a symlink target that is absolute or climbs above the root when read as text from
/// the link's directory. This catches the plain cases at the entry itself; chains of links are
/// checked on the finished tree by [`escapes`].
pub(super) fn check_symlink_target(
    link: &Path,
    entry: &str,
    target: &[u8],
) -> Result<(), BundleError> {
    let refuse = || BundleError::LinkEscape {
        entry: entry.to_owned(),
        target: display(target),
    };
    if target.first() == Some(&b'/') {
        return Err(refuse());
    }
    let mut depth = link.components().count().saturating_sub(1);
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1).ok_or_else(refuse)?,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Whether following the symlink at `link` inside `tree` would leave `root` (a directory in the
/// tree, or the empty path for the whole tree). Resolution follows the links the tree holds, the
/// way the kernel would, so `a -> ..` combined with `b/c -> ../a/..` is caught. A dangling path,
/// a path through a file, or a loop cannot reach outside, so they count as not escaping.
pub(super) fn escapes(tree: &Tree, root: &Path, link: &Path) -> bool {
    let Some(Node::Symlink(target)) = tree.get(link) else {
        return false;
    };
    let mut dir: PathBuf = link.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut rest: VecDeque<Component<'_>> = target.components().collect();
    let floor = root.components().count();
    let mut hops = 0;
    while let Some(part) = rest.pop_front() {
        match part {
            Component::RootDir | Component::Prefix(_) => return true,
            Component::CurDir => {}
            Component::ParentDir => {
                if dir.components().count() <= floor {
                    return true;
                }
                dir.pop();
            }
            Component::Normal(name) => {
                let next = dir.join(name);
                match tree.get(&next) {
                    Some(Node::Dir) => dir = next,
                    Some(Node::Symlink(t)) => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return false;
                        }
                        for c in t.components().rev() {
                            rest.push_front(c);
                        }
                    }
                    Some(Node::File) | None => return false,
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<Option<PathBuf>, &'static str> {
        normalize(s.as_bytes()).map_err(|e| e.kind())
    }

    #[test]
    fn normalize_drops_dots_and_slashes() {
        assert_eq!(norm("./a//b/./c/"), Ok(Some(PathBuf::from("a/b/c"))));
        assert_eq!(norm("./"), Ok(None));
        assert_eq!(norm("."), Ok(None));
    }

    #[test]
    fn normalize_refuses_absolute_and_parent() {
        assert_eq!(norm("/etc/passwd"), Err("absolute-path"));
        assert_eq!(norm("a/../b"), Err("parent-dir"));
        assert_eq!(norm("../x"), Err("parent-dir"));
    }

    fn lexical(link: &str, target: &str) -> bool {
        check_symlink_target(Path::new(link), link, target.as_bytes()).is_ok()
    }

    #[test]
    fn lexical_check_allows_targets_inside() {
        assert!(lexical("a/b/l", "../c"));
        assert!(lexical("a/l", "../c"));
        assert!(lexical("l", "c/./d"));
        assert!(lexical("a/l", "x/../../b"));
    }

    #[test]
    fn lexical_check_refuses_targets_outside() {
        assert!(!lexical("l", "../x"));
        assert!(!lexical("a/l", "../../x"));
        assert!(!lexical("l", "/etc"));
        assert!(!lexical("a/l", "x/../../../b"));
    }

    fn tree(entries: &[(&str, Option<&str>)]) -> Tree {
        entries
            .iter()
            .map(|(p, t)| {
                let node = match t {
                    None if p.ends_with('/') => Node::Dir,
                    None => Node::File,
                    Some(t) => Node::Symlink(PathBuf::from(t)),
                };
                (PathBuf::from(p.trim_end_matches('/')), node)
            })
            .collect()
    }

    #[test]
    fn chained_links_that_climb_out_are_caught() {
        // Each link passes the lexical check, but d/up is the root, so up/../.. leaves it.
        let t = tree(&[
            ("d/", None),
            ("d/up", Some("..")),
            ("d/x", Some("up/../..")),
        ]);
        assert!(!escapes(&t, Path::new(""), Path::new("d/up")));
        assert!(escapes(&t, Path::new(""), Path::new("d/x")));
    }

    #[test]
    fn links_are_judged_against_the_final_root() {
        let t = tree(&[("top/", None), ("top/a", None), ("top/l", Some("../top/a"))]);
        assert!(!escapes(&t, Path::new(""), Path::new("top/l")));
        assert!(escapes(&t, Path::new("top"), Path::new("top/l")));
    }

    #[test]
    fn dangling_and_looping_links_do_not_escape() {
        let t = tree(&[
            ("a", Some("b")),
            ("b", Some("a")),
            ("c", Some("missing/../..")),
        ]);
        assert!(!escapes(&t, Path::new(""), Path::new("a")));
        assert!(!escapes(&t, Path::new(""), Path::new("c")));
    }
}
