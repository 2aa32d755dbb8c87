//! The real `shoal release` and `shoal verify store` commands: what they print, their exit
//! codes, that a version is never overwritten, and the ways a release can be signed.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use object_store::ObjectStoreExt;
use shoal_shared::release::RELEASE_NAMESPACE;
use shoal_tests::signing::SigningKey;

use crate::backend::{Backend, Kind, pinned_manifest};
use crate::fixture::{PRINCIPAL, World, sha256_hex};
use crate::poll_now;

over_stores!(cli:
    releasing_a_version_twice_is_refused_and_changes_nothing,
    verify_store_says_who_signed_or_why_not,
);

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ssh-keygen -lf key.pub`'s fingerprint.
fn fingerprint(key: &SigningKey) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key.public)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

async fn releasing_a_version_twice_is_refused_and_changes_nothing(store: Backend) {
    let world = World::new();
    let app = world.app_dir("app", "one");
    let out = store.shoal_release("v1.0.0", &app, &world.key.private, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let bundle = store
        .store
        .get(&store.location.object("v1.0.0", "bundle.tar.gz"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let expected = [
        format!("published release v1.0.0 to {}", store.source.url),
        "  for     application web".to_owned(),
        format!(
            "  bundle  {}/v1.0.0/bundle.tar.gz (packaged from {})",
            if store.kind == Kind::S3 {
                "s3://releases/apps/web".to_owned()
            } else {
                store.source.url.clone()
            },
            app.display()
        ),
        format!("  sha256  {}", sha256_hex(&bundle)),
        format!("  size    {} bytes", bundle.len()),
        format!("  signed  key {} (via ssh-key)", fingerprint(&world.key)),
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    let before = store.objects().await;
    assert_eq!(before.len(), 3, "{before:?}");

    let other = world.app_dir("other", "two");
    for spelling in ["v1.0.0", "1.0.0"] {
        let out = store.shoal_release(spelling, &other, &world.key.private, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: version v1.0.0 already exists in {}; releases are immutable, publish a new version",
                store.source.url
            )
        );
    }
    assert_eq!(store.objects().await, before);

    // An upload that stopped before its signature is named as such.
    store
        .put("v3.0.0", "bundle.tar.gz", b"partial".to_vec())
        .await;
    let out = store.shoal_release("v3.0.0", &other, &world.key.private, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: version v3.0.0 exists in {} without its release.yaml.sig (an interrupted upload?)",
            store.source.url
        )),
        "{stderr}"
    );
}

fn verify(store: &Backend, world: &World, version: &str, signers: &Path) -> Output {
    verify_with(store, world, version, signers, &[])
}

fn verify_with(
    store: &Backend,
    world: &World,
    version: &str,
    signers: &Path,
    extra: &[&str],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args([
        "verify",
        "store",
        "--url",
        &store.source.url,
        "--version",
        version,
    ])
    .arg("--allowed-signers")
    .arg(signers)
    .args(extra)
    .envs(store.env.iter().map(|(k, v)| (k, v)))
    .current_dir(world.path());
    if let Some(endpoint) = &store.source.endpoint {
        cmd.args(["--endpoint", endpoint, "--allow-http"]);
    }
    cmd.output().unwrap()
}

async fn verify_store_says_who_signed_or_why_not(store: Backend) {
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("app", "one"))
        .await;
    let bundle = store
        .store
        .get(&store.location.object("v1.0.0", "bundle.tar.gz"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let out = verify(&store, &world, "v1.0.0", &world.signers_file);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim_end(),
        format!(
            "good: release v1.0.0 (sha256:{}, {} bytes) of application web signed by {PRINCIPAL} with key {}",
            sha256_hex(&bundle),
            bundle.len(),
            fingerprint(&world.key)
        )
    );

    // Signed by a stranger.
    let manifest = pinned_manifest(
        "v1.1.0",
        "bundle.tar.gz",
        &sha256_hex(&bundle),
        bundle.len() as u64,
    );
    store
        .put_release(
            &world,
            "v1.1.0",
            &manifest,
            ("bundle.tar.gz", &bundle),
            (&world.stranger, RELEASE_NAMESPACE),
        )
        .await;
    let out = verify(&store, &world, "v1.1.0", &world.signers_file);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim_end(),
        format!(
            "refused: release v1.1.0: key {} is not in allowed_signers",
            fingerprint(&world.stranger)
        )
    );

    // Trusted signature, but the bundle is not the one pinned.
    let mut swapped = bundle.to_vec();
    swapped[30] ^= 1;
    let manifest = pinned_manifest(
        "v1.2.0",
        "bundle.tar.gz",
        &sha256_hex(&bundle),
        bundle.len() as u64,
    );
    store
        .put_release(
            &world,
            "v1.2.0",
            &manifest,
            ("bundle.tar.gz", &swapped),
            (&world.key, RELEASE_NAMESPACE),
        )
        .await;
    let out = verify(&store, &world, "v1.2.0", &world.signers_file);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "refused: release v1.2.0: bundle sha256 is {}",
            sha256_hex(&swapped)
        )),
        "{stdout}"
    );

    // A version that is not there.
    let out = verify(&store, &world, "v9.0.0", &world.signers_file);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("missing: ") && stdout.contains("v9.0.0/release.yaml does not exist"),
        "{stdout}"
    );

    // The same verdicts as JSON.
    let out = verify_with(&store, &world, "v1.0.0", &world.signers_file, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let good: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(good["result"], "good");
    assert_eq!(good["sha256"], sha256_hex(&bundle));
    assert_eq!(good["size"], bundle.len());
    assert_eq!(good["principal"], PRINCIPAL);
    let out = verify_with(&store, &world, "v1.1.0", &world.signers_file, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (refused["result"].as_str(), refused["kind"].as_str()),
        (Some("refused"), Some("untrusted_key"))
    );

    // A broken allowed_signers file is a usage error naming the file and the line.
    let broken = world.path().join("broken_signers");
    fs::write(
        &broken,
        "# trust\nrelease@example ssh-ed25519 not-base64!\n",
    )
    .unwrap();
    let out = verify(&store, &world, "v1.0.0", &broken);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {}: line 2: ", broken.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn release_usage_errors_exit_2_and_upload_nothing() {
    let store = Backend::file();
    let world = World::new();
    let app = world.app_dir("app", "one");
    let not_a_key = world.path().join("not-a-key");
    fs::write(&not_a_key, "hello\n").unwrap();
    let rollout = world.path().join("rollout.yaml");
    fs::write(&rollout, "rollout:\n  strategy: big-bang\n").unwrap();
    let rollout_arg = rollout.display().to_string();
    let missing = world.path().join("missing-key");
    let cases: [(&str, &Path, &[&str], String); 4] = [
        (
            "latest",
            &world.key.private,
            &[],
            "error: --version: `latest` is not a semver version".to_owned(),
        ),
        (
            "v1.0.0",
            &missing,
            &[],
            format!("error: cannot read the key {}", missing.display()),
        ),
        (
            "v1.0.0",
            &not_a_key,
            &[],
            format!(
                "error: {}: is not an OpenSSH private key or public key",
                not_a_key.display()
            ),
        ),
        (
            "v1.0.0",
            &world.key.private,
            &["--rollout", &rollout_arg],
            format!(
                "error: {}: rollout.strategy: `big-bang` is not a strategy",
                rollout.display()
            ),
        ),
    ];
    for (version, key, extra, expected) in cases {
        let out = store.shoal_release(version, &app, key, extra);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.starts_with(&expected),
            "expected {expected}\ngot {stderr}"
        );
    }
    assert!(store.objects().await.is_empty());
}

#[tokio::test]
async fn a_rollout_file_and_an_archive_go_into_the_release_as_given() {
    let store = Backend::file();
    let world = World::new();
    let app = world.app_dir("app", "one");
    let zip = world.path().join("app.zip");
    let zipped = Command::new("zip")
        .arg("-qr")
        .arg(&zip)
        .arg(".")
        .current_dir(&app)
        .status()
        .unwrap();
    assert!(zipped.success());
    let rollout = world.path().join("rollout.yaml");
    fs::write(
        &rollout,
        "strategy: canary\ncanary: 1\nmin_healthy_time: 30s\n",
    )
    .unwrap();
    let out = store.shoal_release(
        "v2.0.0",
        &zip,
        &world.key.private,
        &["--rollout", &rollout.display().to_string()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let uploaded = store
        .store
        .get(&store.location.object("v2.0.0", "bundle.zip"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(uploaded.as_ref(), fs::read(&zip).unwrap().as_slice());

    let mut channel = store.channel(&world);
    let poll = poll_now(&world, &mut channel, &mut world.state()).await;
    let release = poll.newest.unwrap();
    let policy = release.rollout.clone().unwrap();
    assert_eq!(policy.strategy.as_deref(), Some("canary"));
    let tree = channel.materialize(&release, &world.cache()).await.unwrap();
    assert!(tree.join("scripts/start.sh").is_file());
}

#[tokio::test]
async fn keys_that_need_ssh_keygen_sign_through_it() {
    let store = Backend::file();
    let world = World::new();
    let app = world.app_dir("app", "one");

    // An encrypted key: ssh-keygen asks for the passphrase (answered here by SSH_ASKPASS).
    let encrypted = world.path().join("keys/encrypted");
    let made = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "sesame",
            "-C",
            "enc@example",
            "-f",
        ])
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(made.success());
    let askpass = world.path().join("askpass.sh");
    fs::write(&askpass, "#!/bin/sh\necho sesame\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "release",
            "--store",
            &store.source.url,
            "--version",
            "v1.0.0",
            "--application",
            "web",
        ])
        .arg("--bundle")
        .arg(&app)
        .arg("--key")
        .arg(&encrypted)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("(via ssh-keygen)"), "{stdout}");

    // A .pub key whose private half is in ssh-agent.
    let socket = world.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = shoal_tests::poll_until(std::time::Duration::from_secs(5), || {
        socket.exists().then_some(())
    });
    assert!(ready.is_some(), "ssh-agent did not start");
    let added = Command::new("ssh-add")
        .arg(&world.key.private)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "release",
            "--store",
            &store.source.url,
            "--version",
            "v1.1.0",
            "--application",
            "web",
        ])
        .arg("--bundle")
        .arg(&app)
        .arg("--key")
        .arg(&world.key.public)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("key {} (via ssh-keygen)", fingerprint(&world.key))),
        "{stdout}"
    );

    // Both verify: the agent key through the channel, the encrypted one with its own trust.
    let mut channel = store.channel(&world);
    let poll = poll_now(&world, &mut channel, &mut world.state()).await;
    assert_eq!(poll.newest.unwrap().version.name(), "v1.1.0");
    let public = fs::read_to_string(encrypted.with_extension("pub")).unwrap();
    let trust = world.path().join("enc_signers");
    fs::write(&trust, format!("enc@example {public}")).unwrap();
    let out = verify(&store, &world, "v1.0.0", &trust);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("signed by enc@example"), "{stdout}");
}
