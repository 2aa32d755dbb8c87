//! `execute::install::install` as root, twice (the second run replays the first one's cleanup),
//! into a host tree the fuzz bytes build: a bundle of directories, files and links, and an
//! installed tree where another user (`nobody`) owns directories and has put symlinks (to an
//! empty sentinel directory, a root-only secret, `..`, `/`) and hard links (to the secret)
//! wherever it could, before the first run and between the two. Whatever the tree and the
//! AppSpec (sources, destinations, `file_exists_behavior`, modes, owners, ACLs):
//! - it answers without panicking;
//! - nothing outside `opt/` of the host tree changes: the sentinel stays empty, the secret keeps
//!   its bytes, mode 0600, owner root and no ACL, and every other path is as it was.
//!
//! Runs as root (it chowns to `nobody`); as another user it returns at once.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, lchown, symlink};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use shoal_agent::execute::install;
use shoal_agent::execute::layout::Layout;
use shoal_shared::appspec::FileExistsBehavior;

const NOBODY: u32 = 65534;
const NAMES: &[&str] = &["a", "b", "c", "sub", "x.conf"];

/// Reads the fuzz bytes as small choices.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn pick<'t, T>(&mut self, from: &'t [T]) -> Option<&'t T> {
        from.get(usize::from(self.next()?) % from.len())
    }

    /// A relative path of one to three names.
    fn path(&mut self) -> Option<PathBuf> {
        let depth = 1 + usize::from(self.next()? % 3);
        let mut path = PathBuf::new();
        for _ in 0..depth {
            path.push(self.pick(NAMES)?);
        }
        Some(path)
    }
}

fuzz_target!(|data: &[u8]| {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let tmp = scratch.path();
    let (bundle, host, root) = (tmp.join("bundle"), tmp.join("host"), tmp.join("root"));
    for dir in [&bundle, &host, &root, &host.join("outside"), &host.join("opt")] {
        fs::create_dir_all(dir).expect("mkdir");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    fs::write(host.join("secret"), "root only").expect("write");
    fs::set_permissions(host.join("secret"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut bytes = Bytes(data);
    let Some(spec) = appspec(&mut bytes) else {
        return;
    };
    let behavior = match bytes.next().unwrap_or(0) % 3 {
        0 => FileExistsBehavior::Disallow,
        1 => FileExistsBehavior::Overwrite,
        _ => FileExistsBehavior::Retain,
    };
    build(&mut bytes, &bundle, &host);
    let before = outside_opt(&host);
    let layout = Layout::new(root.join("deployment-root")).with_files_root(Some(host.clone()));
    for run in 0..2 {
        let _ = install::install(&layout, "g", &bundle, &spec, behavior);
        let after = outside_opt(&host);
        assert_eq!(after, before, "run {run} changed the host outside opt/");
        // Between the runs, the user plants more where it can.
        plant(&mut bytes, &host);
    }
});

/// An AppSpec installing parts of the bundle under /opt/app, with permissions that hand the
/// install to `nobody`.
fn appspec(bytes: &mut Bytes<'_>) -> Option<shoal_shared::appspec::AppSpec> {
    let source = bytes.pick(&["/", "a", "b", "sub"])?;
    let destination = bytes.pick(&["/opt/app", "/opt/app/a", "/opt/app/sub/b"])?;
    let mode = bytes.pick(&["644", "600", "4755", "2750", "777"])?;
    let acls = bytes.pick(&["", "    acls: [\"u:nobody:rw\"]\n", "    acls: [\"u:nobody:rwx\", \"m::r\"]\n"])?;
    let types = bytes.pick(&["[file]", "[directory]", "[file, directory]"])?;
    let text = format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: {source}\n    destination: {destination}\n\
         permissions:\n  - object: /opt/app\n    owner: nobody\n    mode: {mode}\n    type: {types}\n{acls}"
    );
    shoal_shared::appspec::parse(&text).ok().map(|parsed| parsed.spec)
}

/// The bundle, and the installed tree as `nobody` left it.
fn build(bytes: &mut Bytes<'_>, bundle: &Path, host: &Path) {
    for _ in 0..16 {
        let Some(op) = bytes.next() else { return };
        let Some(path) = bytes.path() else { return };
        match op % 4 {
            0 => {
                let _ = fs::create_dir_all(bundle.join(&path));
            }
            1 => {
                if let Some(parent) = bundle.join(&path).parent() {
                    let _ = fs::create_dir_all(parent);
                }
                let _ = fs::write(bundle.join(&path), [op]);
            }
            2 => {
                if let Some(parent) = bundle.join(&path).parent() {
                    let _ = fs::create_dir_all(parent);
                }
                let _ = symlink(bytes.pick(NAMES).copied().unwrap_or("a"), bundle.join(&path));
            }
            _ => plant_one(bytes, host, &path),
        }
    }
}

/// A few more of `nobody`'s plantings.
fn plant(bytes: &mut Bytes<'_>, host: &Path) {
    for _ in 0..4 {
        let Some(path) = bytes.path() else { return };
        plant_one(bytes, host, &path);
    }
}

/// At `opt/app/<path>`: a directory of `nobody`'s (its parents made and given to it too), or,
/// in a directory `nobody` owns, a symlink or a hard link to what it must not reach.
fn plant_one(bytes: &mut Bytes<'_>, host: &Path, path: &Path) {
    let app = host.join("opt/app");
    let at = app.join(path);
    let Some(kind) = bytes.next() else { return };
    if kind % 2 == 0 {
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
        return;
    }
    let _ = fs::remove_file(&at);
    let outside = host.join("outside");
    let secret = host.join("secret");
    let targets: [&Path; 6] = [
        &outside,
        &secret,
        Path::new("../../outside"),
        Path::new(".."),
        Path::new("/"),
        Path::new("../../../secret"),
    ];
    // A link is the user's own; a hard link is the secret itself, still root's.
    if kind % 8 == 7 {
        let _ = fs::hard_link(&secret, &at);
    } else if symlink(targets[usize::from(kind / 2) % targets.len()], &at).is_ok() {
        let _ = lchown(&at, Some(NOBODY), Some(NOBODY));
    }
}

/// Every path of the host tree but `opt/`'s, with its type, mode, owner, content or target and
/// ACL, without following links.
fn outside_opt(host: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut todo = vec![host.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.starts_with(host.join("opt")) && path != host.join("opt") {
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
        let state = format!(
            "{what} {:o} {}:{} {acl:?}",
            meta.mode(),
            meta.uid(),
            meta.gid()
        );
        seen.insert(path, state);
    }
    seen
}
