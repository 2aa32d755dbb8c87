//! Installing files: file_exists_behavior, permissions, owners, ACLs and SELinux contexts.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::{Bundle, assert_exit, deploy, have, is_root, stderr};

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

/// `<group>-install.json` lists what Install did as the CodeDeploy agent lists it: the
/// directories and copies, then, entry by entry, each matched file's and directory's chmod,
/// setfacl, semanage and chown.
#[test]
fn install_json_lists_the_permission_steps_after_the_copies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let bundle = Bundle::new(tmp.path().join("b"));
    bundle
        .file("conf/a.conf", "a")
        .file("conf/b.conf", "b")
        .file("conf/nested/c.txt", "c");
    // Owner and group only take effect as root; the instructions list them either way,
    // but the deployment must succeed, so name the user running the test.
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .expect("passwd")
        .expect("a user")
        .name;
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: /conf\n    destination: {dest}\n\
         permissions:\n  - object: {dest}\n    pattern: \"*.conf\"\n    mode: 640\n    type: [file]\n\
         \x20 - object: {dest}\n    type: [directory]\n    mode: 750\n    owner: {me}\n",
        dest = dest.display()
    ));
    let root = tmp.path().join("root");
    let out = deploy(&bundle.dir, &root, "g", "r1", &[]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root.join("deployment-instructions/g-install.json"))
            .expect("install.json"),
    )
    .expect("JSON");
    let steps = json["instructions"].as_array().expect("instructions");
    let kinds: Vec<&str> = steps.iter().filter_map(|s| s["type"].as_str()).collect();
    let first_permission = kinds
        .iter()
        .position(|k| !matches!(*k, "mkdir" | "copy"))
        .expect("permission steps");
    assert!(
        kinds[first_permission..]
            .iter()
            .all(|k| !matches!(*k, "mkdir" | "copy")),
        "copies first: {kinds:?}"
    );
    let copied: Vec<String> = steps
        .iter()
        .filter(|s| s["type"] == "copy")
        .filter_map(|s| s["destination"].as_str())
        .filter(|d| d.ends_with(".conf"))
        .map(str::to_owned)
        .collect();
    let path = |p: &str| dest.join(p).display().to_string();
    let mut expected: Vec<serde_json::Value> = copied
        .iter()
        .map(|file| serde_json::json!({"type": "chmod", "mode": "640", "file": file}))
        .collect();
    expected.push(serde_json::json!({"type": "chmod", "mode": "750", "file": path("nested")}));
    expected.push(
        serde_json::json!({"type": "chown", "owner": me, "group": null, "file": path("nested")}),
    );
    assert_eq!(copied.len(), 2, "{steps:?}");
    assert_eq!(steps[first_permission..], expected[..]);
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
    assert!(
        err.contains("Install: cannot set the SELinux context of")
            && err.contains("this host does not label files with SELinux"),
        "{err}"
    );
}

/// The ACLs shoal sets on the open file are the ones `setfacl --set` sets by path: the same
/// `getfacl` output and mode for named entries, an explicit mask, and default entries.
#[test]
fn acls_match_what_setfacl_sets() {
    if !(have("setfacl") && have("getfacl")) {
        eprintln!("setfacl/getfacl not installed: skipping");
        return;
    }
    let cases: [(&[&str], bool); 4] = [
        (&["u:nobody:rw"], false),
        (&["u:nobody:rwx", "g:daemon:r", "m::r"], false),
        (&["u:nobody:rw", "d:u:nobody:rx"], true),
        (&["d:u::rwx", "d:g:daemon:rw", "d:o::-"], true),
    ];
    for (i, (entries, is_dir)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("srv");
        let bundle = Bundle::new(tmp.path().join("b"));
        if is_dir {
            bundle.file("site/d/x", "x");
        } else {
            bundle.file("site/d", "x");
        }
        let acls: Vec<String> = entries.iter().map(|e| format!("\"{e}\"")).collect();
        let kind = if is_dir { "directory" } else { "file" };
        bundle.appspec(&format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {d}\n\
             permissions:\n  - object: {d}\n    pattern: d\n    type: [{kind}]\n    mode: 640\n    acls: [{acls}]\n",
            d = dest.display(),
            acls = acls.join(", ")
        ));
        assert_exit(
            &deploy(&bundle.dir, &tmp.path().join("root"), "g", "r1", &[]),
            0,
        );

        let reference = tmp.path().join("reference");
        if is_dir {
            fs::create_dir(&reference).expect("mkdir");
        } else {
            fs::write(&reference, "x").expect("write");
        }
        fs::set_permissions(&reference, fs::Permissions::from_mode(0o640)).expect("chmod");
        let spec: Vec<String> = ["user::rw-", "group::r--", "other::---"]
            .into_iter()
            .map(str::to_owned)
            .chain(entries.iter().map(|e| {
                shoal_shared::appspec::acl_entry(e)
                    .expect("valid")
                    .to_string()
            }))
            .collect();
        let set = std::process::Command::new("setfacl")
            .args(["--set", &spec.join(",")])
            .arg(&reference)
            .output()
            .expect("setfacl");
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        let getfacl = |path: &Path| {
            let out = std::process::Command::new("getfacl")
                .args(["-c", "-n"])
                .arg(path)
                .output()
                .expect("getfacl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let installed = dest.join("d");
        assert_eq!(
            getfacl(&installed),
            getfacl(&reference),
            "case {i}: {entries:?}"
        );
        assert_eq!(
            fs::metadata(&installed)
                .expect("installed")
                .permissions()
                .mode()
                & 0o7777,
            fs::metadata(&reference)
                .expect("reference")
                .permissions()
                .mode()
                & 0o7777,
            "case {i}: the mode's group bits show the mask"
        );
    }
}

/// A tar entry with the owner and group it records, by name and number.
struct Owned<'a> {
    path: &'a str,
    kind: tar::EntryType,
    mode: u32,
    user: (&'a str, u64),
    group: (&'a str, u64),
    data: &'a [u8],
}

fn owned_tar(path: &Path, entries: &[Owned<'_>]) {
    let mut builder = tar::Builder::new(fs::File::create(path).expect("create"));
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.data.len() as u64);
        header.set_uid(entry.user.1);
        header.set_gid(entry.group.1);
        header.set_username(entry.user.0).expect("user name");
        header.set_groupname(entry.group.0).expect("group name");
        header.set_mtime(1_700_000_000);
        if entry.kind == tar::EntryType::Symlink {
            header.set_link_name("owned.txt").expect("link");
        }
        builder
            .append_data(&mut header, entry.path, entry.data)
            .expect("append");
    }
    builder.finish().expect("finish");
}

#[test]
fn owners_a_tar_records_are_given_to_installed_files_as_tar_xp_does() {
    if !is_root() {
        eprintln!("skipped: giving files away needs the tests to run as root");
        return;
    }
    let user = shoal_tests::users::ThrowawayUser::create();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let appspec = format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\n",
        dest.display()
    );
    let name = user.name.as_str();
    let file = |path, mode, user, group, data| Owned {
        path,
        kind: tar::EntryType::Regular,
        mode,
        user,
        group,
        data,
    };
    let entries = [
        file(
            "appspec.yml",
            0o644,
            ("root", 0),
            ("root", 0),
            appspec.as_bytes(),
        ),
        Owned {
            kind: tar::EntryType::Directory,
            ..file("app/sub/", 0o755, (name, 7), (name, 7), b"")
        },
        // A name this host knows wins over the recorded number, as with GNU tar.
        file(
            "app/owned.txt",
            0o640,
            (name, 99_999),
            (name, 99_999),
            b"mine",
        ),
        // A name it does not know: the number.
        file(
            "app/sub/numeric.txt",
            0o644,
            ("shoal-nobody-here", 4242),
            ("shoal-nogroup-here", 4343),
            b"by number",
        ),
        file("app/setuid", 0o4755, (name, 7), (name, 7), b"#!/bin/sh\n"),
        file("app/root.txt", 0o644, ("root", 0), ("root", 0), b"root's"),
        Owned {
            kind: tar::EntryType::Symlink,
            ..file("app/link", 0o777, (name, 7), (name, 7), b"")
        },
    ];
    let tar = tmp.path().join("owned.tar");
    owned_tar(&tar, &entries);

    let root = tmp.path().join("root");
    let out = deploy(&tar, &root, "g", "r1", &[]);
    assert_exit(&out, 0);
    let owner = |path: &Path| {
        let meta = fs::symlink_metadata(path).expect("installed");
        (meta.uid(), meta.gid(), meta.mode() & 0o7777)
    };
    assert_eq!(owner(&dest.join("owned.txt")), (user.uid, user.gid, 0o640));
    assert_eq!(owner(&dest.join("sub/numeric.txt")), (4242, 4343, 0o644));
    assert_eq!(
        owner(&dest.join("setuid")),
        (user.uid, user.gid, 0o4755),
        "setuid survives the change of owner"
    );
    assert_eq!(owner(&dest.join("root.txt")), (0, 0, 0o644));
    // As the CodeDeploy agent's install: directories it makes and links are root's.
    assert_eq!(owner(&dest.join("sub")).0, 0);
    assert_eq!(owner(&dest.join("link")).0, 0);
    let archive = fs::read_dir(root.join("g"))
        .expect("group dir")
        .filter_map(Result::ok)
        .map(|e| e.path().join("deployment-archive"))
        .find(|p| p.exists())
        .expect("the deployment's archive");
    assert_eq!(owner(&archive.join("app/owned.txt")).0, user.uid);
}
