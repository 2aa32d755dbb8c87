//! `shoal verify git` (the built binary) against `git verify-tag` on every kind of tag: they
//! agree but on key validity (judged now, not at the tagger date), and shoal says who signed or
//! why not, with the exit codes of the contract.

use std::path::Path;
use std::process::Output;

use crate::fixture::{PRINCIPAL, Scene};
use shoal_tests::signing::allowed_signers_line;

use shoal_tests::command::clean;

/// Runs `shoal verify git` with a clean environment.
pub(crate) fn verify(home: &Path, repo: &str, tag: &str, signers: &Path, extra: &[&str]) -> Output {
    clean(env!("CARGO_BIN_EXE_shoal"), home)
        .args([
            "verify",
            "git",
            "--repo",
            repo,
            "--tag",
            tag,
            "--allowed-signers",
        ])
        .arg(signers)
        .args(extra)
        .output()
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn shoal_verify_git_agrees_with_git_verify_tag_but_on_key_validity() {
    let scene = Scene::new();
    let repo = &scene.repo;
    let stranger = scene.other_key("stranger@example");
    let expiring = scene.other_key("old@example");
    let other_ns = scene.other_key("store@example");
    scene.write_signers(&[
        allowed_signers_line(PRINCIPAL, &scene.key, ""),
        allowed_signers_line("old@example", &expiring, "valid-before=\"20200101\""),
        allowed_signers_line("store@example", &other_ns, "namespaces=\"shoal-release\""),
    ]);
    repo.tag_signed("v1.0.0", "good", &scene.key, None);
    repo.tag_signed("latest", "good, not a version", &scene.key, None);
    repo.tag_signed("v1.1.0", "untrusted", &stranger, None);
    repo.tag_signed("v1.2.0", "expired", &expiring, Some("2021-06-01T00:00:00Z"));
    repo.tag_signed("v1.2.1", "in time", &expiring, Some("2019-06-01T00:00:00Z"));
    repo.tag_signed("v1.3.0", "other namespace", &other_ns, None);
    repo.tag_lightweight("v1.4.0");
    repo.tag_annotated_unsigned("v1.5.0", "unsigned");
    repo.tag_signed("v1.6.0", "to be tampered", &scene.key, None);
    repo.tag_tampered("v1.6.0", "v1.6.0", "tampered");
    repo.tag_signed("v1.7.0", "before the move", &scene.key, None);
    let moved_to = repo.commit_file("later", "x", "later");
    repo.move_tag("v1.7.0", &moved_to, &scene.key);

    // (tag, git verify-tag accepts, shoal accepts). They differ on one kind only: git judges a
    // key's validity at the tagger date (`ssh-keygen -Overify-time=`), a time the signer
    // writes; shoal judges it now, as `ssh-keygen -Y verify` does by default.
    let cases = [
        ("v1.0.0", true, true),
        ("latest", true, true),
        ("v1.1.0", false, false),
        ("v1.2.0", false, false),
        ("v1.2.1", true, false),
        ("v1.3.0", false, false),
        ("v1.4.0", false, false),
        ("v1.5.0", false, false),
        ("v1.6.0", false, false),
        ("v1.7.0", true, true),
    ];
    let home = scene.path("home");
    std::fs::create_dir(&home).unwrap();
    let path = repo.dir().to_str().unwrap();
    for (tag, git_good, good) in cases {
        let (git_ok, git_said) = repo.verify_tag(tag, &scene.signers_path);
        let out = verify(&home, path, tag, &scene.signers_path, &[]);
        let ours = text(&out);
        assert_eq!(git_ok, git_good, "git verify-tag {tag}: {git_said}");
        assert_eq!(
            out.status.success(),
            good,
            "{tag}: shoal\n{ours}\n--- git\n{git_said}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if good {
            let commit = repo.git(&["rev-parse", &format!("{tag}^{{commit}}")]);
            assert!(
                stdout.starts_with(&format!(
                    "good: tag {tag} (commit {}) of application web signed by ",
                    commit.trim()
                )),
                "{ours}"
            );
            assert!(stdout.contains(" with key SHA256:"), "{ours}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{ours}");
            assert!(
                stdout.starts_with(&format!("refused: tag {tag}: ")),
                "{ours}"
            );
        }
    }
}

#[test]
fn shoal_verify_git_names_the_signer_reads_file_urls_and_speaks_json() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "good", &scene.key, None);
    scene.repo.tag_lightweight("v1.1.0");
    let url = format!("file://{}", scene.repo.dir().display());
    let home = scene.dir.path();
    let out = verify(home, &url, "v1.0.0", &scene.signers_path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let fingerprint = clean("ssh-keygen", home)
        .args(["-l", "-f"])
        .arg(&scene.key.public)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout);
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "good: tag v1.0.0 (commit {}) of application web signed by {PRINCIPAL} with key {fingerprint}\n",
            scene.repo.head()
        )
    );

    let out = verify(home, &url, "v1.1.0", &scene.signers_path, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["result"], "refused");
    assert_eq!(json["kind"], "lightweight_tag");
}

#[test]
fn shoal_verify_git_usage_and_missing_tags() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "good", &scene.key, None);
    let home = scene.dir.path();
    let path = scene.repo.dir().to_str().unwrap();

    let missing = verify(home, path, "v9.9.9", &scene.signers_path, &[]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("has no tag v9.9.9"),
        "{}",
        text(&missing)
    );

    let bad = scene.path("keys/bad_signers");
    let good_line = allowed_signers_line(PRINCIPAL, &scene.key, "");
    std::fs::write(
        &bad,
        format!(
            "# keys\n{good_line}\nops@example nosuch=\"x\" {}\n",
            scene.key.key_text()
        ),
    )
    .unwrap();
    let out = verify(home, path, "v1.0.0", &bad, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: line 3: unknown option", bad.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");

    let absent = scene.path("keys/absent");
    let out = verify(home, path, "v1.0.0", &absent, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&absent.display().to_string()));

    let out = verify(home, path, "v*", &scene.signers_path, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let nowhere = scene.path("no-such-repo");
    let out = verify(
        home,
        nowhere.to_str().unwrap(),
        "v1.0.0",
        &scene.signers_path,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot fetch tags from"),
        "{}",
        text(&out)
    );
}
