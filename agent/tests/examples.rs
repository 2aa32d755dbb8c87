//! The samples under `examples/` work as the docs under `docs/` say: every agent config passes
//! `shoal agent --check-config`, and the CI scripts publish releases that `shoal verify`
//! accepts, run as they are with their inputs in environment variables.

use std::path::{Path, PathBuf};
use std::process::Output;

use shoal_tests::command;
use shoal_tests::signing::git::Repo;
use shoal_tests::signing::{SigningKey, allowed_signers_line};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

fn examples(dir: &str) -> PathBuf {
    shoal_tests::workspace_root().join("examples").join(dir)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh release key from `ssh-keygen -t ed25519`, and an allowed_signers file trusting it
/// for tags and store releases.
fn trust(dir: &Path) -> (SigningKey, PathBuf) {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir keys");
    let key = SigningKey::generate(&keys, "release@example.com");
    let signers = dir.join("allowed_signers");
    let line = allowed_signers_line(
        "release@example.com",
        &key,
        "namespaces=\"git,shoal-release\"",
    );
    std::fs::write(&signers, format!("{line}\n")).expect("write allowed_signers");
    (key, signers)
}

/// The samples name their files where a packaged host keeps them (`/etc/shoal/...`), and
/// `--check-config` reads each group's allowed_signers file. So each sample is checked as it
/// would be on a host: copied to `<temp>/etc/shoal/agent.yaml` with `/etc/shoal/` turned into
/// `<temp>/etc/shoal/` (nothing else changes), beside a real allowed_signers file at every
/// path the sample names, a placeholder at each token or ssh key path (`--check-config` checks
/// that they are readable files; their content is read at a fetch), and a gossip key made by
/// `shoal keygen`.
#[test]
fn every_config_sample_passes_check_config() {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(examples("config"))
        .expect("examples/config")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    samples.sort();
    let names: Vec<String> = samples
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    for wanted in ["three-hosts-git.yaml", "store-s3.yaml", "two-groups.yaml"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }

    let keys = tempfile::tempdir().expect("tempdir");
    let (_, signers) = trust(keys.path());
    for sample in &samples {
        let host = tempfile::tempdir().expect("tempdir");
        let etc = host.path().join("etc/shoal");
        std::fs::create_dir_all(&etc).expect("mkdir etc/shoal");
        let original = std::fs::read_to_string(sample).expect("read sample");
        let config_text = original.replace("/etc/shoal/", &format!("{}/", etc.display()));
        for line in config_text.lines() {
            let value = line
                .trim_start()
                .strip_prefix("allowed_signers:")
                .map(|rest| rest.split('#').next().unwrap_or_default().trim());
            if let Some(path) = value {
                assert!(
                    path.starts_with(etc.to_str().expect("utf-8")),
                    "{}: allowed_signers {path} is not under /etc/shoal/",
                    sample.display()
                );
                std::fs::copy(&signers, path).expect("place allowed_signers");
            }
            // Credential files must exist and be readable; their content is read at a fetch.
            let credential = ["token_file:", "ssh_key:"].iter().find_map(|key| {
                let rest = line.trim_start().strip_prefix(key)?;
                Some(rest.split('#').next().unwrap_or_default().trim())
            });
            if let Some(path) = credential {
                assert!(
                    path.starts_with(etc.to_str().expect("utf-8")),
                    "{}: credential file {path} is not under /etc/shoal/",
                    sample.display()
                );
                std::fs::write(path, "placeholder\n").expect("place a credential file");
            }
        }
        // The mesh's cluster key, as a host has it after `shoal keygen --out`.
        let made = std::process::Command::new(SHOAL)
            .arg("keygen")
            .arg("--out")
            .arg(etc.join("gossip.key"))
            .output()
            .expect("run shoal keygen");
        assert!(made.status.success(), "{}", text(&made));
        let config = etc.join("agent.yaml");
        std::fs::write(&config, &config_text).expect("write config");
        let out = std::process::Command::new(SHOAL)
            .args(["agent", "--check-config", "--config"])
            .arg(&config)
            .output()
            .expect("run shoal");
        assert!(
            out.status.success(),
            "{}:\n{}",
            sample.display(),
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(&format!("{}: ok", config.display())),
            "{}:\n{stdout}",
            sample.display()
        );
    }
}

/// A repository holding a small AppSpec bundle, committed and clean.
fn app_repo(dir: &Path) -> Repo {
    let repo = Repo::init(dir);
    repo.commit_file(
        "appspec.yml",
        "version: 0.0\nos: linux\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
        "appspec",
    );
    repo.commit_file("scripts/validate.sh", "#!/bin/sh\nexit 0\n", "validate");
    repo
}

/// `examples/ci/release-git.sh` as a CI job runs it: in the repository, with its inputs in
/// the environment; the tag it pushes to a bare repository is one `shoal verify git` trusts.
#[test]
fn release_git_script_pushes_a_tag_that_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, signers) = trust(tmp.path());
    let repo = app_repo(&tmp.path().join("work"));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let bare = tmp.path().join("origin.git");
    command::stdout(
        command::clean("git", &home)
            .args(["init", "-q", "--bare"])
            .arg(&bare),
    );
    let script = examples("ci").join("release-git.sh");
    let run = |version: &str| {
        command::clean("bash", &home)
            .arg(&script)
            .current_dir(repo.dir())
            .env("VERSION", version)
            .env("APPLICATION", "web")
            .env("SIGNING_KEY", &key.private)
            .env("REMOTE", &bare)
            .env("SHOAL", SHOAL)
            .env("BUILD_COMMAND", "touch \"$HOME/built\"")
            .output()
            .expect("run release-git.sh")
    };

    let out = run("v1.4.0");
    assert!(out.status.success(), "{}", text(&out));
    assert!(home.join("built").exists(), "BUILD_COMMAND did not run");

    let verify = std::process::Command::new(SHOAL)
        .args([
            "verify",
            "git",
            "--application",
            "web",
            "--tag",
            "v1.4.0",
            "--repo",
        ])
        .arg(&bare)
        .arg("--allowed-signers")
        .arg(&signers)
        .output()
        .expect("run shoal verify git");
    assert!(verify.status.success(), "{}", text(&verify));
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        stdout.starts_with("good: tag v1.4.0 (commit ")
            && stdout.contains(" of application web signed by release@example.com"),
        "{stdout}"
    );

    // A tree with uncommitted changes is not released.
    std::fs::write(repo.dir().join("appspec.yml"), "version: 0.0\nos: linux\n").expect("edit");
    let out = run("v1.5.0");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uncommitted changes"),
        "{}",
        text(&out)
    );
    let tags = command::stdout(
        command::clean("git", &home)
            .arg("--git-dir")
            .arg(&bare)
            .args(["tag", "--list"]),
    );
    assert_eq!(tags.trim(), "v1.4.0");
}

/// `examples/ci/release-store.sh` publishes to a `file://` store (the same code path as S3
/// after the client) a release that `shoal verify store` trusts.
#[test]
fn release_store_script_publishes_a_release_that_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, signers) = trust(tmp.path());
    let home = tmp.path().join("home");
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(dist.join("scripts")).expect("mkdir dist");
    std::fs::create_dir_all(&home).expect("mkdir home");
    std::fs::write(
        dist.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n",
    )
    .expect("write appspec");
    std::fs::write(dist.join("scripts/start.sh"), "#!/bin/sh\nexit 0\n").expect("write script");
    let store = format!("file://{}", tmp.path().join("releases").display());
    std::fs::create_dir_all(tmp.path().join("releases")).expect("mkdir releases");

    let out = command::clean("bash", &home)
        .arg(examples("ci").join("release-store.sh"))
        .current_dir(tmp.path())
        .env("VERSION", "v2.0.0")
        .env("APPLICATION", "api")
        .env("STORE", &store)
        .env("SIGNING_KEY", &key.private)
        .env("SHOAL", SHOAL)
        .env("ALLOWED_SIGNERS", &signers)
        .output()
        .expect("run release-store.sh");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("published release v2.0.0 to {store}")),
        "{stdout}"
    );

    let verify = std::process::Command::new(SHOAL)
        .args(["verify", "store", "--version", "v2.0.0", "--url", &store])
        .args(["--application", "api"])
        .arg("--allowed-signers")
        .arg(&signers)
        .output()
        .expect("run shoal verify store");
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).starts_with("good: release v2.0.0 "),
        "{}",
        text(&verify)
    );
}
