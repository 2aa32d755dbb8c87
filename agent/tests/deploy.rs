//! `shoal deploy` end to end: the real binary, real bundles, real shell scripts, real files.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Bundle, assert_exit, deploy, have, is_root, stderr, stdout};

const ALL_EVENTS: [&str; 9] = [
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// A bundle whose every hook appends `<revision> <event> <env…>` to `trace`, and which
/// installs `app/` into `dest`.
fn traced_bundle(dir: &Path, revision: &str, trace: &Path, dest: &Path) -> Bundle {
    let bundle = Bundle::new(dir);
    let mut hooks = String::new();
    for event in ALL_EVENTS {
        bundle.script(
            &format!("scripts/{event}.sh"),
            &format!(
                "echo \"{revision} $LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME \
                 $DEPLOYMENT_GROUP_ID $SHOAL_REVISION prev=$SHOAL_PREVIOUS_REVISION\" >> {}\necho {event} says hi",
                trace.display()
            ),
        );
        hooks.push_str(&format!(
            "  {event}:\n    - location: scripts/{event}.sh\n      timeout: 30\n"
        ));
    }
    bundle.file("app/common.txt", &format!("common {revision}\n"));
    bundle.file(&format!("app/only-{revision}.txt"), revision);
    bundle.file("app/sub/deep.txt", "deep");
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\nhooks:\n{hooks}",
        dest.display()
    ));
    bundle
}

fn trace_lines(trace: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn events_run_in_order_with_their_environment_and_the_previous_revision_stops_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, dest, trace) = (
        tmp.path().join("root"),
        tmp.path().join("srv/app"),
        tmp.path().join("trace"),
    );
    let v1 = traced_bundle(&tmp.path().join("v1"), "v1", &trace, &dest);
    let out = deploy(&v1.dir, &root, "web", "v1", &["--application", "shop"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));

    let first = trace_lines(&trace);
    let events: Vec<&str> = first.iter().map(|l| l[1].as_str()).collect();
    assert_eq!(
        events,
        [
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
            "BeforeAllowTraffic",
            "AfterAllowTraffic"
        ],
        "a first deployment has no previous revision to stop or block"
    );
    for line in &first {
        assert_eq!(line[0], "v1");
        assert!(line[2].starts_with("d-"), "DEPLOYMENT_ID {}", line[2]);
        assert_eq!(&line[3..8], ["shop", "web", "web", "v1", "prev="]);
    }
    assert_eq!(
        fs::read_to_string(dest.join("common.txt")).expect("installed"),
        "common v1\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("sub/deep.txt")).expect("installed"),
        "deep"
    );

    fs::remove_file(&trace).expect("reset trace");
    let v2 = traced_bundle(&tmp.path().join("v2"), "v2", &trace, &dest);
    let out = deploy(&v2.dir, &root, "web", "v2", &["--application", "shop"]);
    assert_exit(&out, 0);
    let second = trace_lines(&trace);
    let seen: Vec<(&str, &str)> = second
        .iter()
        .map(|l| (l[0].as_str(), l[1].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("v1", "BeforeBlockTraffic"),
            ("v1", "AfterBlockTraffic"),
            ("v1", "ApplicationStop"),
            ("v2", "BeforeInstall"),
            ("v2", "AfterInstall"),
            ("v2", "ApplicationStart"),
            ("v2", "ValidateService"),
            ("v2", "BeforeAllowTraffic"),
            ("v2", "AfterAllowTraffic"),
        ],
        "the previous revision's scripts stop and block; the new one's do the rest"
    );
    let ids: std::collections::HashSet<&str> = second.iter().map(|l| l[2].as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one DEPLOYMENT_ID for the whole second deployment, also in v1's scripts"
    );
    assert!(
        second.iter().all(|l| l[7] == "prev=v1"),
        "SHOAL_PREVIOUS_REVISION is v1: {second:?}"
    );
    assert!(
        !dest.join("only-v1.txt").exists(),
        "the previous revision's files are cleaned up"
    );
    assert_eq!(
        fs::read_to_string(dest.join("only-v2.txt")).expect("installed"),
        "v2"
    );
    assert_eq!(
        fs::read_to_string(dest.join("common.txt")).expect("installed"),
        "common v2\n"
    );

    let instructions = root.join("deployment-instructions");
    let last =
        fs::read_to_string(instructions.join("web_last_successful_install")).expect("pointer");
    assert!(
        Path::new(last.trim())
            .join("deployment-archive/appspec.yml")
            .is_file(),
        "{last}"
    );
    let cleanup = fs::read_to_string(instructions.join("web-cleanup")).expect("cleanup file");
    assert!(
        cleanup
            .lines()
            .any(|l| l == dest.join("only-v2.txt").to_str().expect("utf-8")),
        "{cleanup}"
    );
    let log =
        fs::read_to_string(Path::new(last.trim()).join("logs/scripts.log")).expect("scripts.log");
    assert!(
        log.contains("[ApplicationStop]") && log.contains("ApplicationStop says hi"),
        "{log}"
    );
    assert!(log.contains("[stdout]"), "{log}");
}

#[test]
fn a_failing_hook_fails_the_deployment_and_skips_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.script("fail.sh", "echo about to fail >&2\nexit 3");
    bundle.script(
        "start.sh",
        &format!("touch {}", tmp.path().join("started").display()),
    );
    bundle.appspec(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: fail.sh\n  ApplicationStart:\n    - location: start.sh\n",
    );
    let out = deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 1);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("AfterInstall") && l.ends_with("failed")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ApplicationStart") && l.ends_with("skipped")),
        "{table}"
    );
    assert!(
        stderr(&out).contains("script at fail.sh failed with exit code 3"),
        "{}",
        stderr(&out)
    );
    assert!(
        !tmp.path().join("started").exists(),
        "ApplicationStart must not run"
    );
}

#[test]
fn a_script_past_its_timeout_fails_the_deployment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.script("slow.sh", "sleep 60");
    bundle.appspec("version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: slow.sh\n      timeout: 1\n");
    let out = deploy(
        &bundle.dir,
        &tmp.path().join("root"),
        "g",
        "r1",
        &["--kill-grace", "1"],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("did not finish within its timeout of 1 s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_appspec_is_a_usage_error_and_the_running_revision_is_not_stopped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let stopped = tmp.path().join("stopped");
    let good = Bundle::new(tmp.path().join("good"));
    good.script("stop.sh", &format!("touch {}", stopped.display()));
    good.appspec("version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n");
    assert_exit(&deploy(&good.dir, &root, "g", "r1", &[]), 0);

    let bad = Bundle::new(tmp.path().join("bad"));
    bad.appspec("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 12a\n");
    let out = deploy(&bad.dir, &root, "g", "r2", &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("appspec.yml: line 5: permissions[0].mode: `12a` contains `a`"),
        "{err}"
    );
    assert!(
        !stopped.exists(),
        "ApplicationStop of the running revision must not run for a bad bundle"
    );

    let unknown = Bundle::new(tmp.path().join("unknown"));
    unknown.script("x.sh", "true");
    unknown.appspec("version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n");
    let out = deploy(&unknown.dir, &root, "g", "r3", &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("AfterInstal are not lifecycle events"),
        "{}",
        stderr(&out)
    );
}

fn one_file_bundle(dir: &Path, dest: &Path, content: &str, behavior: Option<&str>) -> Bundle {
    let bundle = Bundle::new(dir);
    bundle.file("payload/config.txt", content);
    let behavior = behavior
        .map(|b| format!("file_exists_behavior: {b}\n"))
        .unwrap_or_default();
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\n{behavior}files:\n  - source: payload/config.txt\n    destination: {}\n",
        dest.display()
    ));
    bundle
}

#[test]
fn file_exists_behavior_disallow_overwrite_retain() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("etc/app");
    fs::create_dir_all(&dest).expect("mkdir");
    let existing = dest.join("config.txt");
    fs::write(&existing, "hand-made").expect("write");

    let disallow = one_file_bundle(&tmp.path().join("d"), &dest, "from bundle", None);
    let out = deploy(&disallow.dir, &tmp.path().join("root-d"), "g", "r1", &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("already exists at this location"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(&existing).expect("read"),
        "hand-made",
        "DISALLOW leaves the file alone"
    );

    let retain = one_file_bundle(&tmp.path().join("r"), &dest, "from bundle", Some("RETAIN"));
    let root = tmp.path().join("root-r");
    assert_exit(&deploy(&retain.dir, &root, "g", "r1", &[]), 0);
    assert_eq!(
        fs::read_to_string(&existing).expect("read"),
        "hand-made",
        "RETAIN keeps the host's file"
    );
    let cleanup =
        fs::read_to_string(root.join("deployment-instructions/g-cleanup")).expect("cleanup");
    assert!(
        !cleanup.contains("config.txt"),
        "a retained file is not the deployment's to clean: {cleanup}"
    );

    let cli_overwrite = one_file_bundle(&tmp.path().join("o"), &dest, "from bundle", None);
    let root = tmp.path().join("root-o");
    assert_exit(
        &deploy(
            &cli_overwrite.dir,
            &root,
            "g",
            "r1",
            &["--file-exists-behavior", "OVERWRITE"],
        ),
        0,
    );
    assert_eq!(fs::read_to_string(&existing).expect("read"), "from bundle");
    let cleanup =
        fs::read_to_string(root.join("deployment-instructions/g-cleanup")).expect("cleanup");
    assert!(
        cleanup.lines().any(|l| l.ends_with("config.txt")),
        "an overwritten file is recorded: {cleanup}"
    );

    fs::write(&existing, "hand-made again").expect("write");
    let appspec_wins = one_file_bundle(&tmp.path().join("w"), &dest, "bundle 2", Some("RETAIN"));
    let out = deploy(
        &appspec_wins.dir,
        &tmp.path().join("root-w"),
        "g",
        "r1",
        &["--file-exists-behavior", "DISALLOW"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        fs::read_to_string(&existing).expect("read"),
        "hand-made again",
        "the AppSpec's value beats the flag"
    );
}

#[test]
fn permissions_symlinks_and_whole_bundle_sources() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle
        .file("conf/a.conf", "a")
        .file("conf/b.conf", "b")
        .file("conf/keep.conf", "k");
    bundle
        .file("conf/nested/c.conf", "c")
        .file("conf/readme.txt", "r");
    std::os::unix::fs::symlink("a.conf", bundle.dir.join("conf/current.conf")).expect("symlink");
    let acl = if have("setfacl") && have("getfacl") {
        "    acls: [u:root:r]\n"
    } else {
        eprintln!("setfacl/getfacl not installed: skipping the ACL part of this test");
        ""
    };
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: /conf\n    destination: {dest}\n\
         permissions:\n  - object: {dest}\n    pattern: \"*.conf\"\n    except: [keep.conf]\n    mode: 640\n    type: [file]\n{acl}\
         \x20 - object: {dest}\n    type: [directory]\n    mode: 2750\n",
        dest = dest.display()
    ));
    let out = deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 0);
    let mode = |p: &str| {
        fs::symlink_metadata(dest.join(p))
            .expect("installed")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("a.conf"), 0o640);
    assert_eq!(mode("b.conf"), 0o640);
    assert_eq!(mode("keep.conf"), 0o644, "except leaves keep.conf alone");
    assert_eq!(
        mode("nested/c.conf"),
        0o644,
        "a pattern other than ** matches immediate children only"
    );
    assert_eq!(
        mode("nested"),
        0o2750,
        "directories below the object get the directory mode"
    );
    assert_ne!(
        fs::metadata(&dest).expect("dest").permissions().mode() & 0o7777,
        0o2750,
        "never the object itself"
    );
    assert_eq!(
        fs::read_link(dest.join("current.conf")).expect("a symlink"),
        Path::new("a.conf")
    );
    if !acl.is_empty() {
        let out = std::process::Command::new("getfacl")
            .arg(dest.join("a.conf"))
            .output()
            .expect("getfacl");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("user:root:r--"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn owner_and_group_are_set_when_running_as_root() {
    if !is_root() {
        eprintln!("not root: skipping owner/group test");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.file("f.txt", "x");
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: f.txt\n    destination: {d}\npermissions:\n  - object: {d}/f.txt\n    owner: nobody\n    group: daemon\n",
        d = dest.display()
    ));
    assert_exit(
        &deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]),
        0,
    );
    let meta = fs::metadata(dest.join("f.txt")).expect("installed");
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("lookup")
        .expect("nobody exists");
    let daemon = nix::unistd::Group::from_name("daemon")
        .expect("lookup")
        .expect("daemon exists");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (nobody.uid.as_raw(), daemon.gid.as_raw())
    );

    let unknown = Bundle::new(tmp.path().join("u"));
    unknown.file("g.txt", "x");
    unknown.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: g.txt\n    destination: {d}\npermissions:\n  - object: {d}/g.txt\n    owner: no-such-user-here\n",
        d = tmp.path().join("other").display()
    ));
    let out = deploy(&unknown.dir, &tmp.path().join("root2"), "g", "r1", &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("owner `no-such-user-here` does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn archives_with_a_single_top_directory_deploy_like_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let src = tmp.path().join("src");
    let bundle = Bundle::new(src.join("myapp-1.0"));
    bundle.file("web/index.html", "<h1>hi</h1>");
    bundle.script(
        "hooks/check.sh",
        "test -f \"$(dirname \"$0\")/../web/index.html\"",
    );
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: web\n    destination: {}\nhooks:\n  ValidateService:\n    - location: hooks/check.sh\n",
        dest.display()
    ));
    let tgz = tmp.path().join("myapp.tgz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .arg("myapp-1.0")
        .status()
        .expect("tar");
    assert!(status.success());
    let out = deploy(&tgz, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 0);
    assert_eq!(
        fs::read_to_string(dest.join("index.html")).expect("installed"),
        "<h1>hi</h1>"
    );
    if have("zip") {
        let zip = tmp.path().join("myapp.zip");
        let status = std::process::Command::new("zip")
            .current_dir(&src)
            .arg("-qry")
            .arg(&zip)
            .arg("myapp-1.0")
            .status()
            .expect("zip");
        assert!(status.success());
        let out = deploy(&zip, &tmp.path().join("root"), "g", "r2", &[]);
        assert_exit(&out, 0);
    } else {
        eprintln!("zip not installed: skipping the zip half of this test");
    }
}

#[test]
fn hostile_archives_are_refused_with_the_entry_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tar_path = tmp.path().join("evil.tar");
    let mut builder = tar::Builder::new(fs::File::create(&tar_path).expect("create"));
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let name = b"../escape.txt";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    builder.append(&header, &b"evil"[..]).expect("append");
    builder.finish().expect("finish");
    drop(builder);
    let out = deploy(&tar_path, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("escape.txt"), "{}", stderr(&out));
    assert!(!tmp.path().join("escape.txt").exists());
}

#[test]
fn old_deployment_directories_are_pruned_but_the_last_good_one_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let good = Bundle::new(tmp.path().join("good"));
    good.appspec("version: 0.0\nos: linux\n");
    let bad = Bundle::new(tmp.path().join("bad"));
    bad.script("fail.sh", "exit 1");
    bad.appspec("version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: fail.sh\n");
    assert_exit(
        &deploy(&good.dir, &root, "g", "r1", &["--max-revisions", "2"]),
        0,
    );
    let last_good =
        fs::read_to_string(root.join("deployment-instructions/g_last_successful_install"))
            .expect("pointer");
    for revision in ["r2", "r3", "r4"] {
        assert_exit(
            &deploy(&bad.dir, &root, "g", revision, &["--max-revisions", "2"]),
            1,
        );
    }
    let mut left: Vec<_> = fs::read_dir(root.join("g"))
        .expect("group dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter().any(|d| d == Path::new(last_good.trim())),
        "the last good revision survives: {left:?}"
    );
}

#[test]
fn an_selinux_context_that_cannot_be_applied_fails_the_install_clearly() {
    if have("semanage") {
        eprintln!("semanage is installed: this host may really apply contexts; skipping");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle.file("site/index.html", "hi");
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {d}\npermissions:\n  - object: {d}\n    context:\n      type: httpd_sys_content_t\n",
        d = dest.display()
    ));
    let out = deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    let named = if have("chcon") {
        "`chcon -t httpd_sys_content_t` failed"
    } else {
        "needs `semanage or chcon`"
    };
    assert!(err.contains("Install: ") && err.contains(named), "{err}");
}
