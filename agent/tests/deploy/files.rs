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
