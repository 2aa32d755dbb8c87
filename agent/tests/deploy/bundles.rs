//! Archive bundles, hostile archives, and keeping the deployment root tidy.

use std::fs;

use std::path::Path;

use crate::common::{Bundle, assert_exit, deploy, have, stderr};

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

/// Packs `src` as a tar with GNU tar, which records links as links.
fn tar_of(src: &Path, tar: &Path) {
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(tar)
        .arg("-C")
        .arg(src)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
}

#[test]
fn links_out_of_the_bundle_install_as_links_and_are_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("srv");
    let releases = tmp.path().join("opt/app/releases/3");
    let seen = tmp.path().join("hook-saw-links");
    let src = tmp.path().join("src");
    let bundle = Bundle::new(&src);
    bundle.file("app/conf/real.txt", "real");
    bundle.script(
        "scripts/start.sh",
        &format!(
            "test -L {0}/current && test -L {0}/conf/up && touch {1}",
            dest.display(),
            seen.display()
        ),
    );
    bundle.appspec(&format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n",
        dest.display()
    ));
    let links = [
        ("app/current", releases.display().to_string()),
        ("app/abs", "/etc/hostname".to_owned()),
        ("app/conf/up", "../../outside.txt".to_owned()),
    ];
    for (link, target) in &links {
        std::os::unix::fs::symlink(target, src.join(link)).expect("link");
    }
    let tar = tmp.path().join("app.tar");
    tar_of(&src, &tar);

    let root = tmp.path().join("root");
    let out = deploy(&tar, &root, "g", "r1", &[]);
    assert_exit(&out, 0);
    for (link, target) in &links {
        let installed = dest.join(link.trim_start_matches("app/"));
        assert_eq!(
            fs::read_link(&installed).expect("installed as a link"),
            Path::new(target),
            "{}",
            installed.display()
        );
    }
    assert_eq!(
        fs::read_to_string(dest.join("conf/real.txt")).expect("file"),
        "real"
    );
    assert!(!releases.exists(), "nothing was written through a link");
    assert!(!tmp.path().join("outside.txt").exists());
    assert!(seen.exists(), "the hook saw the installed links");
}

#[test]
fn nothing_is_read_through_a_link_out_of_the_bundle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    let marker = tmp.path().join("ran-from-outside");
    fs::write(
        elsewhere.join("start.sh"),
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .expect("write");
    fs::write(elsewhere.join("appspec.yml"), "version: 0.0\nos: linux\n").expect("write");
    let dest = tmp.path().join("srv");
    // (what the bundle holds, the sentence's subject, the link named in it)
    let cases = [
        (
            "hooks",
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: hooks/start.sh\n"
                .to_owned(),
            "script location \"hooks/start.sh\"",
        ),
        (
            "etc",
            format!(
                "version: 0.0\nos: linux\nfiles:\n  - source: etc/start.sh\n    destination: {}\n",
                dest.display()
            ),
            "files source `etc/start.sh`",
        ),
    ];
    for (n, (link, appspec, subject)) in cases.iter().enumerate() {
        let src = tmp.path().join(format!("src{n}"));
        Bundle::new(&src).appspec(appspec);
        std::os::unix::fs::symlink(&elsewhere, src.join(link)).expect("link");
        let tar = tmp.path().join(format!("case{n}.tar"));
        tar_of(&src, &tar);
        let out = deploy(&tar, &tmp.path().join("root"), "g", &format!("r{n}"), &[]);
        assert_exit(&out, 1);
        let err = stderr(&out);
        let named = format!("the link {link} -> {}", elsewhere.display());
        assert!(err.contains(subject) && err.contains(&named), "{err}");
        assert!(!marker.exists(), "{link}: a script outside the bundle ran");
        assert!(
            !dest.join("start.sh").exists(),
            "{link}: a file outside the bundle was installed"
        );
    }

    let src = tmp.path().join("src-appspec");
    fs::create_dir_all(&src).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.join("appspec.yml"), src.join("appspec.yml"))
        .expect("link");
    let tar = tmp.path().join("appspec.tar");
    tar_of(&src, &tar);
    let out = deploy(&tar, &tmp.path().join("root"), "g", "r-appspec", &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("outside the bundle") && err.contains("appspec.yml"),
        "{err}"
    );
}
