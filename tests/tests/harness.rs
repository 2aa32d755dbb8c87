//! Proves the harness against the real tools: moto answers S3 requests through the counting
//! proxy with exact counts, and tags and signatures made by the signing fixtures are judged by
//! `git verify-tag` and `ssh-keygen -Y verify` as intended.

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use shoal_tests::http;
use shoal_tests::proxy::{CountingProxy, Stats};
use shoal_tests::s3::MotoServer;
use shoal_tests::signing::git::Repo;
use shoal_tests::signing::{SigningKey, allowed_signers_line, ssh_sign, ssh_verify};

/// An empty folder for one test under cargo's scratch space for integration tests.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("harness")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's folder");
    dir
}

fn write_allowed_signers(dir: &Path, lines: &[String]) -> PathBuf {
    let path = dir.join("allowed_signers");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write allowed_signers");
    path
}

#[test]
fn moto_serves_a_bucket_through_the_proxy_which_counts_every_request_and_byte() {
    let moto = MotoServer::start();
    let proxy = CountingProxy::start(moto.addr());

    let created = http::request(proxy.addr(), "PUT", "/revisions", b"").expect("PUT /revisions");
    assert_eq!(created.status, 200, "{}", created.body);
    moto.put_object("revisions", "app/v1/bundle.tar.gz", b"bundle");
    let listed = http::request(proxy.addr(), "GET", "/revisions", b"").expect("GET /revisions");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.body.contains("<Key>app/v1/bundle.tar.gz</Key>")
            && listed.body.contains("<Size>6</Size>"),
        "{}",
        listed.body
    );

    assert_eq!(
        proxy.stats(),
        Stats {
            connections: 2,
            requests: 2,
            bytes_up: created.bytes_sent + listed.bytes_sent,
            bytes_down: created.bytes_received + listed.bytes_received,
        }
    );
    proxy.reset();
    assert_eq!(proxy.stats(), Stats::default());

    let env = moto.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL".to_owned(), moto.endpoint())));
    let addr = moto.addr();
    drop(moto);
    assert!(
        TcpStream::connect(addr).is_err(),
        "moto still listens after drop"
    );
}

#[test]
fn a_signed_tag_verifies_only_when_its_key_is_an_allowed_signer() {
    let dir = scratch("signed_tag");
    let trusted = SigningKey::generate(&dir, "release@example");
    let stranger = SigningKey::generate(&dir, "stranger@example");
    let signers = write_allowed_signers(
        &dir,
        &[allowed_signers_line("release@example", &trusted, "")],
    );
    let repo = Repo::init(&dir.join("repo"));
    repo.commit_file("appspec.yml", "version: 0.0\nos: linux\n", "v1");
    repo.tag_signed("v1.0.0", "release v1.0.0", &trusted, None);
    repo.tag_signed("v1.0.1", "release v1.0.1", &stranger, None);

    let (ok, output) = repo.verify_tag("v1.0.0", &signers);
    assert!(ok && output.contains("Good \"git\" signature"), "{output}");
    let (ok, output) = repo.verify_tag("v1.0.1", &signers);
    assert!(
        !ok && output.contains("No principal matched"),
        "a stranger's tag verified:\n{output}"
    );
}

#[test]
fn tampered_unsigned_and_lightweight_tags_fail_verification() {
    let dir = scratch("bad_tags");
    let key = SigningKey::generate(&dir, "release@example");
    let signers = write_allowed_signers(&dir, &[allowed_signers_line("release@example", &key, "")]);
    let repo = Repo::init(&dir.join("repo"));
    repo.commit_file("appspec.yml", "version: 0.0\nos: linux\n", "v1");
    repo.tag_signed("v1.0.0", "release v1.0.0", &key, None);
    repo.tag_tampered("v1.0.0-forged", "v1.0.0", "release v9.9.9");
    repo.tag_annotated_unsigned("v1.0.0-unsigned", "release v1.0.0");
    repo.tag_lightweight("v1.0.0-light");

    let signature = |tag: &str| {
        let object = repo.tag_object(tag);
        let at = object
            .find("-----BEGIN SSH SIGNATURE-----")
            .expect("signed");
        object[at..].to_owned()
    };
    let forged = repo.tag_object("v1.0.0-forged");
    assert!(forged.contains("\ntag v1.0.0-forged\n") && forged.contains("\n\nrelease v9.9.9\n"));
    assert_eq!(signature("v1.0.0-forged"), signature("v1.0.0"));
    assert!(repo.verify_tag("v1.0.0", &signers).0);
    for tag in ["v1.0.0-forged", "v1.0.0-unsigned", "v1.0.0-light"] {
        let (ok, output) = repo.verify_tag(tag, &signers);
        assert!(!ok, "{tag} verified:\n{output}");
    }
}

#[test]
fn a_moved_tag_points_at_the_new_commit_and_still_verifies() {
    let dir = scratch("moved_tag");
    let key = SigningKey::generate(&dir, "release@example");
    let signers = write_allowed_signers(&dir, &[allowed_signers_line("release@example", &key, "")]);
    let repo = Repo::init(&dir.join("repo"));
    let first = repo.commit_file("VERSION", "1\n", "v1");
    repo.tag_signed("stable", "stable", &key, None);
    let second = repo.commit_file("VERSION", "2\n", "v2");
    assert_ne!(first, second);
    assert_eq!(repo.git(&["rev-parse", "stable^{commit}"]).trim(), first);

    repo.move_tag("stable", &second, &key);
    assert_eq!(repo.git(&["rev-parse", "stable^{commit}"]).trim(), second);
    assert!(repo.verify_tag("stable", &signers).0);
}

#[test]
fn git_checks_a_signers_validity_window_at_the_tagger_time() {
    let dir = scratch("validity_window");
    let key = SigningKey::generate(&dir, "release@example");
    let line = allowed_signers_line("release@example", &key, "valid-before=\"20200101\"");
    assert!(line.starts_with("release@example valid-before=\"20200101\" ssh-ed25519 "));
    let signers = write_allowed_signers(&dir, &[line]);
    let repo = Repo::init(&dir.join("repo"));
    repo.commit_file("VERSION", "1\n", "v1");
    repo.tag_signed("old", "signed in 2019", &key, Some("2019-06-01T00:00:00Z"));
    repo.tag_signed("new", "signed today", &key, None);

    let (ok, output) = repo.verify_tag("old", &signers);
    assert!(ok, "a tag made inside the window failed:\n{output}");
    let (ok, output) = repo.verify_tag("new", &signers);
    assert!(!ok, "a tag made after valid-before verified:\n{output}");
}

#[test]
fn ssh_keygen_verifies_an_ssh_sign_signature_in_its_namespace_only() {
    let dir = scratch("ssh_sign");
    let key = SigningKey::generate(&dir, "release@example");
    let signers = write_allowed_signers(&dir, &[allowed_signers_line("release@example", &key, "")]);
    let bundle = dir.join("bundle.tar.gz");
    std::fs::write(&bundle, b"not really a tarball").expect("write bundle");
    let sig = ssh_sign(&key, "file", &bundle);

    let (ok, output) = ssh_verify(&signers, "release@example", "file", &bundle, &sig);
    assert!(ok, "{output}");
    let (ok, output) = ssh_verify(&signers, "release@example", "git", &bundle, &sig);
    assert!(!ok, "verified in the wrong namespace:\n{output}");
    std::fs::write(&bundle, b"not really a tarbalL").expect("change bundle");
    let (ok, output) = ssh_verify(&signers, "release@example", "file", &bundle, &sig);
    assert!(!ok, "verified a changed file:\n{output}");
}
