//! An application user against root's install. `permissions: {owner: app}` hands the installed
//! tree to `app`; at the next deployment root works inside directories `app` owns. A real
//! unprivileged user (a throwaway account) swaps what root is about to touch for symlinks to
//! places outside the install, and nothing outside the install may change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use sha2::Digest;
use shoal_tests::poll_until;
use shoal_tests::users::ThrowawayUser;

use crate::common::*;

/// The racer's settings, passed to the re-executed test binary: `sub`, `outside`, `secret`, `stop`.
const RACER_ENV: &str = "SHOAL_TEST_RACER";

/// A world root and an application user share: the install's destination, and beside it what
/// `app` must never reach through root: an empty directory, a victim directory whose files
/// share names with the bundle's, and a root-only secret.
struct Scene {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    root: PathBuf,
    bundle: PathBuf,
}

impl Scene {
    fn new(user: &ThrowawayUser) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let dest = tmp.path().join("app");
        fs::create_dir(tmp.path().join("outside")).expect("mkdir");
        fs::create_dir(tmp.path().join("victim")).expect("mkdir");
        for name in ["f0.txt", "f1.txt", "f2.txt"] {
            fs::write(tmp.path().join("victim").join(name), "the victim's").expect("write");
        }
        let secret = tmp.path().join("secret");
        fs::write(&secret, "root only").expect("write");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");

        let bundle = Bundle::new(tmp.path().join("bundle"));
        for n in 0..3 {
            for f in 0..3 {
                bundle.file(&format!("www/sub/n{n}/f{f}.txt"), "from the bundle");
            }
            bundle.file(&format!("www/sub/f{n}.txt"), "from the bundle");
        }
        bundle.appspec(&format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: www\n    destination: {dest}\n\
             permissions:\n\
             \x20 - object: {dest}\n    type: [directory]\n    owner: {user}\n    mode: 755\n\
             \x20 - object: {dest}\n    type: [file]\n    owner: {user}\n    mode: 644\n    acls: [\"u:{user}:rw\"]\n",
            dest = dest.display(),
            user = user.name,
        ));
        Self {
            root: tmp.path().join("root"),
            bundle: bundle.dir,
            dest,
            tmp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn deploy(&self, revision: &str) -> std::process::Output {
        deploy(&self.bundle, &self.root, "race", revision, &[])
    }

    /// Everything under the scene but the install and shoal's own root: type, mode, owner,
    /// content, link target and ACL of each path, without following links.
    fn outside(&self) -> BTreeMap<PathBuf, String> {
        let mut seen = BTreeMap::new();
        let mut todo = vec![self.tmp.path().to_path_buf()];
        while let Some(path) = todo.pop() {
            if [
                &self.dest,
                &self.root,
                &self.path("stop"),
                &self.path("racer"),
            ]
            .contains(&&path)
            {
                continue;
            }
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let acl = xattr::get(&path, "system.posix_acl_access").ok().flatten();
            let what = if meta.is_dir() {
                for entry in fs::read_dir(&path).expect("read_dir") {
                    todo.push(entry.expect("entry").path());
                }
                "dir".to_owned()
            } else if meta.file_type().is_symlink() {
                format!(
                    "link to {}",
                    fs::read_link(&path).expect("readlink").display()
                )
            } else {
                let content = fs::read(&path).expect("read");
                format!("file sha256 {:x}", sha2::Sha256::digest(&content))
            };
            seen.insert(
                path,
                format!(
                    "{what} mode {:o} owner {}:{} acl {acl:?}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
        seen
    }
}

/// `program` run as `user` alone: its uid, its group, no supplementary groups (util-linux's
/// `setpriv`, since std cannot drop root's groups without `unsafe`).
fn as_user(user: &ThrowawayUser, program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .args(["--clear-groups", "--"])
        .arg(program);
    command
}

/// The racing process, killed if the test ends early.
struct Racer(Option<Child>);

impl Racer {
    /// Waits for the racer to see `stop`, and returns how many swaps it made.
    fn stop(mut self, stop: &Path) -> u64 {
        fs::write(stop, "").expect("stop the racer");
        let mut child = self.0.take().expect("running");
        if poll_until(Duration::from_secs(30), || child.try_wait().ok().flatten()).is_none() {
            let _ = child.kill();
        }
        let report = child.wait_with_output().expect("racer output");
        String::from_utf8_lossy(&report.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("swaps="))
            .and_then(|n| n.parse().ok())
            .expect("the racer reports its swaps")
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts this test binary again as `user`, running only [`racer`].
fn start_racer(scene: &Scene, user: &ThrowawayUser) -> Racer {
    // The user must be able to run the binary, wherever the checkout is.
    let bin = scene.path("racer");
    fs::copy(std::env::current_exe().expect("test binary"), &bin).expect("copy");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod");
    let settings = [
        scene.dest.join("sub"),
        scene.path("outside"),
        scene.path("secret"),
        scene.path("stop"),
    ]
    .map(|p| p.display().to_string())
    .join("\n");
    as_user(user, &bin)
        .args(["--ignored", "--exact", "race::racer", "--nocapture"])
        .env(RACER_ENV, settings)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(|child| Racer(Some(child)))
        .expect("start the racer")
}

/// The application user's side: in a tight loop, every directory root just made in `sub`
/// (still root's) is moved aside and replaced by a symlink to `outside`, and every file root
/// just made is exchanged with a symlink to `secret` (`renameat2(RENAME_EXCHANGE)`). Stops when
/// `stop` exists, or after two minutes; prints how many swaps it made.
#[test]
#[ignore = "run by the race tests as an unprivileged user"]
fn racer() {
    let settings = std::env::var(RACER_ENV).expect("run by the race tests");
    let [sub, outside, secret, stop]: [PathBuf; 4] = settings
        .lines()
        .map(PathBuf::from)
        .collect::<Vec<_>>()
        .try_into()
        .expect("four paths");
    fs::write(sub.join("keep"), "the application's own file").expect("write as the user");
    let deadline = SystemTime::now() + Duration::from_secs(120);
    let mut swaps = 0u64;
    while !stop.exists() && SystemTime::now() < deadline {
        let Ok(entries) = fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(['.', 'k']) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.uid() != 0 {
                continue; // already handed over, or one of ours
            }
            let aside = sub.join(format!(".{swaps}"));
            if meta.is_dir() {
                if fs::rename(&path, &aside).is_ok() && symlink(&outside, &path).is_ok() {
                    swaps += 1;
                }
            } else if meta.is_file()
                && symlink(&secret, &aside).is_ok()
                && renameat2(
                    AT_FDCWD,
                    &aside,
                    AT_FDCWD,
                    &path,
                    RenameFlags::RENAME_EXCHANGE,
                )
                .is_ok()
            {
                swaps += 1;
            }
        }
    }
    println!("swaps={swaps}");
}

/// Removes the racer's symlinks from `sub` (as root, the links themselves), so the next
/// deployment gets as far as the install again.
fn clear_links(sub: &Path) {
    for entry in fs::read_dir(sub).expect("read sub").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            fs::remove_file(entry.path()).expect("remove the racer's link");
        }
    }
}

/// A throwaway user and a scene installed once (so the user owns its part); `None` unless
/// root.
fn installed_once() -> Option<(ThrowawayUser, Scene)> {
    if !is_root() {
        return None;
    }
    let user = ThrowawayUser::create();
    let scene = Scene::new(&user);
    assert_exit(&scene.deploy("r0"), 0);
    Some((user, scene))
}

#[test]
fn a_racing_application_user_changes_nothing_outside_the_install() {
    let Some((user, scene)) = installed_once() else {
        eprintln!("skipped: needs root to create a user and install as root");
        return;
    };
    let sub = scene.dest.join("sub");
    assert_eq!(fs::metadata(&sub).expect("sub").uid(), user.uid);
    let before = scene.outside();

    let racer = start_racer(&scene, &user);
    poll_until(Duration::from_secs(10), || {
        sub.join("keep").exists().then_some(())
    })
    .expect("the racer starts");
    let mut succeeded = 0;
    for i in 1..=50 {
        clear_links(&sub);
        let out = scene.deploy(&format!("r{i}"));
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "deployment {i} ended with {:?}: {}",
            out.status,
            stderr(&out)
        );
        succeeded += usize::from(out.status.success());
        let after = scene.outside();
        let changed: Vec<String> = after
            .iter()
            .filter(|(path, state)| before.get(*path) != Some(*state))
            .map(|(path, state)| format!("{}: {state}", path.display()))
            .chain(
                before
                    .keys()
                    .filter(|path| !after.contains_key(*path))
                    .map(|path| format!("{}: removed", path.display())),
            )
            .collect();
        assert!(
            changed.is_empty(),
            "deployment {i} changed what lies outside the install:\n{}\n--- stderr\n{}",
            changed.join("\n"),
            stderr(&out)
        );
    }
    let swaps = racer.stop(&scene.path("stop"));
    eprintln!("50 deployments against a racing user: {succeeded} succeeded, {swaps} swaps");
    assert!(
        swaps > 0,
        "the racer never swapped anything: the test proved nothing"
    );
}

#[test]
fn the_cleanup_removes_nothing_through_a_directory_swapped_for_a_link() {
    let Some((user, scene)) = installed_once() else {
        eprintln!("skipped: needs root to create a user and install as root");
        return;
    };
    // As the user: the installed `sub/n0` (whose files the cleanup will remove) becomes a
    // link to the victim directory, whose files have the same names.
    let sub = scene.dest.join("sub");
    let status = as_user(&user, Path::new("sh"))
        .args(["-c", r#"mv "$1/n0" "$1/.n0" && ln -s "$2" "$1/n0""#, "sh"])
        .arg(&sub)
        .arg(scene.path("victim"))
        .status()
        .expect("sh as the user");
    assert!(
        status.success(),
        "the user could not swap its own directory"
    );
    let before = scene.outside();

    let out = scene.deploy("r1");

    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    for name in ["f0.txt", "f1.txt", "f2.txt"] {
        assert!(
            scene.path("victim").join(name).exists(),
            "the cleanup removed victim/{name} through the link\n{}",
            stderr(&out)
        );
    }
    assert_eq!(scene.outside(), before);
}
