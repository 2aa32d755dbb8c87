//! The Install step as root into a tree another user (`nobody`) owns parts of and has filled
//! with symlinks (to an empty sentinel directory, a root-only secret, `..`, `/`) and hard links
//! (to the secret), before the first install and between it and the next (which replays the
//! first one's cleanup). Whatever the bundle and the AppSpec, nothing outside `opt/` of the
//! host tree changes. The `install` fuzz target checks the same with coverage guidance.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, lchown, symlink};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use shoal_agent::execute::install;
use shoal_agent::execute::layout::Layout;
use shoal_shared::appspec::FileExistsBehavior;

const NOBODY: u32 = 65534;

#[derive(Debug, Clone)]
enum Made {
    Dir,
    File,
    Link,
}

#[derive(Debug, Clone)]
enum Planted {
    /// A directory of `nobody`'s (and its parents up to `opt/app`).
    Dir,
    /// A symlink to the n-th of [`targets`].
    Link(usize),
    /// A hard link to the secret.
    Hard,
}

fn path() -> impl Strategy<Value = PathBuf> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "sub", "x.conf"]), 1..4)
        .prop_map(|parts| parts.iter().collect())
}

fn made() -> impl Strategy<Value = (PathBuf, Made)> {
    (
        path(),
        prop_oneof![Just(Made::Dir), Just(Made::File), Just(Made::Link)],
    )
}

fn planted() -> impl Strategy<Value = (PathBuf, Planted)> {
    (
        path(),
        prop_oneof![
            2 => Just(Planted::Dir),
            3 => (0..6usize).prop_map(Planted::Link),
            1 => Just(Planted::Hard),
        ],
    )
}

fn spec() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["/", "a", "sub"]),
        prop::sample::select(vec!["/opt/app", "/opt/app/a", "/opt/app/sub/b"]),
        prop::sample::select(vec!["644", "600", "4755", "777"]),
        prop::sample::select(vec![
            "",
            "    acls: [\"u:nobody:rw\"]\n",
            "    acls: [\"u:nobody:rwx\", \"m::r\"]\n",
        ]),
        prop::sample::select(vec!["[file]", "[directory]", "[file, directory]"]),
    )
        .prop_map(|(source, destination, mode, acls, types)| {
            format!(
                "version: 0.0\nos: linux\nfiles:\n  - source: {source}\n    destination: {destination}\n\
                 permissions:\n  - object: /opt/app\n    owner: nobody\n    mode: {mode}\n    type: {types}\n{acls}"
            )
        })
}

fn behavior() -> impl Strategy<Value = FileExistsBehavior> {
    prop_oneof![
        Just(FileExistsBehavior::Disallow),
        Just(FileExistsBehavior::Overwrite),
        Just(FileExistsBehavior::Retain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn an_install_into_another_users_tree_changes_nothing_outside_it(
        text in spec(),
        behavior in behavior(),
        bundle_tree in prop::collection::vec(made(), 0..10),
        before_first in prop::collection::vec(planted(), 0..8),
        between in prop::collection::vec(planted(), 0..4),
    ) {
        if !nix::unistd::geteuid().is_root() {
            return Ok(()); // it chowns to nobody
        }
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let tmp = scratch.path();
        let (bundle, host) = (tmp.join("bundle"), tmp.join("host"));
        for dir in [&bundle, &host, &host.join("outside"), &host.join("opt")] {
            fs::create_dir_all(dir).expect("mkdir");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::write(host.join("secret"), "root only").expect("write");
        fs::set_permissions(host.join("secret"), fs::Permissions::from_mode(0o600)).expect("chmod");
        for (path, made) in &bundle_tree {
            let at = bundle.join(path);
            if let Some(parent) = at.parent() {
                let _ = fs::create_dir_all(parent);
            }
            let _ = match made {
                Made::Dir => fs::create_dir_all(&at),
                Made::File => fs::write(&at, "from the bundle"),
                Made::Link => symlink("a", &at),
            };
        }
        for (path, what) in &before_first {
            plant(&host, path, what);
        }
        let spec = shoal_shared::appspec::parse(&text).expect("a valid AppSpec").spec;
        let outside = outside_opt(&host);
        let layout = Layout::new(tmp.join("root")).with_files_root(Some(host.clone()));

        let first = install::install(&layout, "g", &bundle, &spec, behavior);
        prop_assert_eq!(&outside_opt(&host), &outside, "the first install ({:?})", first.err());
        for (path, what) in &between {
            plant(&host, path, what);
        }
        let second = install::install(&layout, "g", &bundle, &spec, behavior);
        prop_assert_eq!(&outside_opt(&host), &outside, "the second install ({:?})", second.err());
    }
}

fn targets(host: &Path) -> [PathBuf; 6] {
    [
        host.join("outside"),
        host.join("secret"),
        PathBuf::from("../../outside"),
        PathBuf::from(".."),
        PathBuf::from("/"),
        PathBuf::from("../../../secret"),
    ]
}

/// What `nobody` can do at `opt/app/<path>`: make its own directories, and put links in them.
fn plant(host: &Path, path: &Path, what: &Planted) {
    let app = host.join("opt/app");
    let at = app.join(path);
    if let Planted::Dir = what {
        // Made one directory at a time, never through a link (`nobody` could not write
        // where its links point).
        let mut made = app.clone();
        for part in std::iter::once(Path::new("")).chain(path.iter().map(Path::new)) {
            made.push(part);
            match fs::symlink_metadata(&made) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return,
                Err(_) => {
                    if fs::create_dir(&made).is_err() {
                        return;
                    }
                }
            }
        }
        for dir in at.ancestors().take_while(|d| d.starts_with(&app)) {
            // Only its directories: what else is there (a hard link to the secret) is not its.
            if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                let _ = lchown(dir, Some(NOBODY), Some(NOBODY));
            }
        }
        return;
    }
    let Some(parent) = at.parent() else { return };
    if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir() && m.uid() == NOBODY) {
        return; // only in a directory of its own
    }
    let _ = fs::remove_file(&at);
    // A link is the user's own; a hard link is the secret itself, still root's.
    if let Planted::Link(n) = what
        && symlink(&targets(host)[*n], &at).is_ok()
    {
        let _ = lchown(&at, Some(NOBODY), Some(NOBODY));
    } else if let Planted::Hard = what {
        let _ = fs::hard_link(host.join("secret"), &at);
    }
}

/// Every path of the host tree but those under `opt/`, with its type, mode, owner, content or
/// target and ACL, without following links.
fn outside_opt(host: &Path) -> BTreeMap<PathBuf, String> {
    let opt = host.join("opt");
    let mut seen = BTreeMap::new();
    let mut todo = vec![host.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.starts_with(&opt) && path != opt {
            continue;
        }
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let what = if meta.is_dir() {
            for entry in fs::read_dir(&path).expect("read_dir") {
                todo.push(entry.expect("entry").path());
            }
            "dir".to_owned()
        } else if meta.file_type().is_symlink() {
            format!("link {:?}", fs::read_link(&path).ok())
        } else {
            format!("file {:?}", fs::read(&path).ok())
        };
        let acl = xattr::get(&path, "system.posix_acl_access").ok().flatten();
        seen.insert(
            path,
            format!(
                "{what} {:o} {}:{} {acl:?}",
                meta.mode(),
                meta.uid(),
                meta.gid()
            ),
        );
    }
    seen
}
