//! Entry names: turn raw archive names into safe relative paths, and remember what the
//! unpacker put where.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::error::BundleError;

/// What the unpacker has put at a relative path so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    Dir,
    File,
    Symlink,
}

/// The tree the unpacker has built, keyed by path relative to the unpack root.
pub(super) type Tree = HashMap<PathBuf, Node>;

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
}
