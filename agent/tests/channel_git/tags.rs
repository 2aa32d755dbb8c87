//! Each kind of tag a release engineer or an attacker can push, through a real poll: only a
//! tag signed by a trusted key, valid when the agent first sees it and for namespace `git`, is a
//! release.

use shoal_agent::channel::Digest;

use crate::fixture::{NOW, PRINCIPAL, Scene, newest, refusals};
use shoal_tests::signing::{allowed_signers_line, ssh_verify};

/// Polls a fresh channel of `scene` and asserts that `tag` is refused with `kind` and that
/// nothing became a release or raised the floor.
fn assert_refused(scene: &Scene, tag: &str, kind: &str) {
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), None, "{:?}", poll.refusals);
    assert_eq!(refusals(&poll), [(tag.to_owned(), kind)]);
    assert_eq!(
        scene.state().floor(),
        None,
        "a refusal never raises the floor"
    );
}

#[test]
fn a_tag_signed_by_a_trusted_key_is_the_newest_release() {
    let scene = Scene::new();
    let commit = scene.repo.head();
    scene
        .repo
        .tag_signed("v1.0.0", "release 1.0.0", &scene.key, None);
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    let release = poll.newest.expect("v1.0.0 verifies");
    assert_eq!(release.version.name(), "v1.0.0");
    assert_eq!(release.digest, Digest::Commit(commit.clone()));
    assert_eq!(release.env, [("BUNDLE_COMMIT".to_owned(), commit)]);
    assert_eq!(release.signer.principal, PRINCIPAL);
    assert!(release.signer.fingerprint.starts_with("SHA256:"));
    assert!(release.rollout.is_none());
    assert!(poll.refusals.is_empty() && poll.ignored.is_empty());
    assert_eq!(scene.state().floor().unwrap().name(), "v1.0.0");
    // Nothing new: the next poll finds nothing and refuses nothing.
    let again = scene.poll(&mut channel);
    assert!(again.newest.is_none() && again.refusals.is_empty());
}

#[test]
fn a_key_outside_allowed_signers_is_refused() {
    let scene = Scene::new();
    let stranger = scene.other_key("stranger@example");
    scene.repo.tag_signed("v1.0.0", "release", &stranger, None);
    assert_refused(&scene, "v1.0.0", "untrusted_key");
}

#[test]
fn a_key_past_its_valid_before_at_the_tagger_time_is_refused() {
    let scene = Scene::new();
    let options = "valid-before=\"20200101\"";
    scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, options)]);
    scene
        .repo
        .tag_signed("v1.0.0", "late", &scene.key, Some("2021-06-01T00:00:00Z"));
    assert_refused(&scene, "v1.0.0", "key_not_valid_then");
}

/// Polls a fresh channel of `scene` at the real clock and asserts that `tag` is refused as
/// signed by a key not valid now, and that `ssh-keygen -Y verify` (which judges at the real
/// clock too) refuses the same signature.
fn assert_refused_now_as_ssh_keygen_does(scene: &Scene, tag: &str) {
    let mut channel = scene.channel();
    let mut state = scene.state();
    let poll = channel
        .poll(&scene.signers(), &mut state, real_now())
        .unwrap();
    assert_eq!(newest(&poll), None, "{:?}", poll.refusals);
    assert_eq!(refusals(&poll), [(tag.to_owned(), "key_not_valid_then")]);
    assert_eq!(scene.state().floor(), None);
    let (payload, sig) = scene.repo.tag_signature_files(tag, scene.dir.path());
    let (ok, said) = ssh_verify(&scene.signers_path, PRINCIPAL, "git", &payload, &sig);
    assert!(!ok, "ssh-keygen -Y verify accepted {tag}: {said}");
}

#[test]
fn a_tag_backdated_by_an_expired_key_is_refused_as_ssh_keygen_does() {
    // A retired (or leaked) key signs a new release and writes a tagger date from when it was
    // still valid: the date is the signer's word, so it decides nothing.
    let scene = Scene::new();
    let options = "valid-before=\"20200101\"";
    scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, options)]);
    scene.repo.tag_signed(
        "v1.0.0",
        "backdated",
        &scene.key,
        Some("2019-06-01T00:00:00Z"),
    );
    assert_refused_now_as_ssh_keygen_does(&scene, "v1.0.0");
}

#[test]
fn a_tag_postdated_by_a_not_yet_valid_key_is_refused_as_ssh_keygen_does() {
    let scene = Scene::new();
    let options = "valid-after=\"20990101\"";
    scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, options)]);
    scene.repo.tag_signed(
        "v1.0.0",
        "postdated",
        &scene.key,
        Some("2099-06-01T00:00:00Z"),
    );
    assert_refused_now_as_ssh_keygen_does(&scene, "v1.0.0");
}

#[test]
fn a_verified_release_keeps_its_verdict_after_its_key_expires() {
    // Verified at 2029-12-31 by a key valid until 2030-01-01; the agent restarts in 2030-06.
    let before = NOW - 86_400;
    let after = NOW + 180 * 86_400;
    let scene = Scene::new();
    let options = "valid-before=\"20300101\"";
    scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, options)]);
    scene.repo.tag_signed("v1.0.0", "release", &scene.key, None);
    let mut channel = scene.channel();
    let mut state = scene.state();
    let poll = channel.poll(&scene.signers(), &mut state, before).unwrap();
    assert_eq!(newest(&poll), Some("v1.0.0"), "{:?}", poll.refusals);
    drop((channel, state));

    // Restarted after the key expired: the release it verified is still the release.
    let mut channel = scene.channel();
    let mut state = scene.state();
    let poll = channel.poll(&scene.signers(), &mut state, after).unwrap();
    assert!(poll.refusals.is_empty(), "{:?}", poll.refusals);
    let kept = channel
        .verified_release("v1.0.0", &scene.signers(), &state, after)
        .unwrap();
    assert_eq!(
        kept.map(|r| r.version.name().to_owned()).as_deref(),
        Some("v1.0.0")
    );
    // A release first seen now by the expired key is refused, whatever its tagger date says.
    scene.repo.commit_file("b.txt", "b", "second");
    scene
        .repo
        .tag_signed("v1.1.0", "too late", &scene.key, None);
    let poll = channel.poll(&scene.signers(), &mut state, after).unwrap();
    assert_eq!(newest(&poll), None);
    assert_eq!(
        refusals(&poll),
        [("v1.1.0".to_owned(), "key_not_valid_then")]
    );
}

fn real_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

#[test]
fn a_key_allowed_only_for_another_namespace_is_refused() {
    let scene = Scene::new();
    let options = "namespaces=\"shoal-release\"";
    scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, options)]);
    scene.repo.tag_signed("v1.0.0", "release", &scene.key, None);
    assert_refused(&scene, "v1.0.0", "namespace_not_allowed");
}

#[test]
fn a_lightweight_tag_is_refused() {
    let scene = Scene::new();
    scene.repo.tag_lightweight("v1.0.0");
    assert_refused(&scene, "v1.0.0", "lightweight_tag");
}

#[test]
fn an_unsigned_annotated_tag_is_refused() {
    let scene = Scene::new();
    scene.repo.tag_annotated_unsigned("v1.0.0", "release");
    assert_refused(&scene, "v1.0.0", "unsigned_tag");
}

#[test]
fn a_tampered_tag_is_refused() {
    // The message edited in place, the signature kept: written with `git mktag`.
    let scene = Scene::new();
    let repo = &scene.repo;
    repo.tag_signed("v1.0.0", "release 1.0.0", &scene.key, None);
    repo.tag_tampered("v1.0.0", "v1.0.0", "release 1.0.0, now with extra features");
    assert_refused(&scene, "v1.0.0", "bad_signature");
}

#[test]
fn a_signed_tag_copied_to_another_name_is_refused() {
    // The signature is good, but it vouches for `v1.0.0`, not for `v9.0.0`.
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "release", &scene.key, None);
    let object = scene.repo.git(&["rev-parse", "v1.0.0"]);
    scene.repo.git(&["tag", "-d", "v1.0.0"]);
    scene
        .repo
        .git(&["update-ref", "refs/tags/v9.0.0", object.trim()]);
    assert_refused(&scene, "v9.0.0", "tag_name_mismatch");
}

#[test]
fn a_refused_newer_tag_does_not_hide_an_older_good_one() {
    let scene = Scene::new();
    scene.repo.tag_signed("v1.0.0", "good", &scene.key, None);
    scene.repo.commit_file("b.txt", "b", "second");
    scene.repo.tag_annotated_unsigned("v1.1.0", "unsigned");
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), Some("v1.0.0"));
    assert_eq!(refusals(&poll), [("v1.1.0".to_owned(), "unsigned_tag")]);
    // Still above the floor, so still refused at the next poll.
    let again = scene.poll(&mut channel);
    assert_eq!(newest(&again), None);
    assert_eq!(refusals(&again), [("v1.1.0".to_owned(), "unsigned_tag")]);
}
