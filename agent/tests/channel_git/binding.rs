//! Releases are bound to their application: a signed tag names it in its signed message
//! (`Shoal-Application: web`), and a group takes only tags bound to its own application.
//!
//! The attack: two applications share a signing key, and someone who may push to the second
//! one's repository copies the first one's signed tag (tag object and commit) into it with real
//! git. The copy must not become a release there, nor raise that group's floor, nor be recorded.

use shoal_agent::channel::git::{GitChannel, GitSource};
use shoal_agent::verify::state::ChannelState;
use shoal_tests::command::{clean, stdout};
use shoal_tests::signing::git::Repo;

use crate::cli::{text, verify};
use crate::fixture::{GROUP, NOW, Scene, newest, refusals};

/// The group (and application) of the second application.
const OTHER: &str = "api";

/// The second application's repository, with a commit of its own, beside the scene's; its
/// signed tags are bound to `api`.
fn other_repo(scene: &Scene) -> Repo {
    let repo = Repo::init(&scene.path("repo-api")).for_application(Some(OTHER));
    repo.commit_file("appspec.yml", "version: 0.0\nos: linux\n", "api");
    repo
}

/// A channel of group `api` (application `api`) over `repo`, with its own data directory, and
/// the path of its state.
fn other_channel(scene: &Scene, repo: &Repo) -> (GitChannel, std::path::PathBuf) {
    let data_dir = scene.path("data-api");
    let source = GitSource::new(repo.dir().to_str().unwrap());
    let channel = GitChannel::open(source, &data_dir, OTHER, OTHER).unwrap();
    (channel, ChannelState::path_for(&data_dir, OTHER))
}

#[test]
fn a_tag_copied_from_another_applications_repository_is_refused() {
    let scene = Scene::new();
    scene
        .repo
        .commit_file("scripts/start.sh", "echo web 9", "web 9");
    scene
        .repo
        .tag_signed("v9.0.0", "release 9.0.0", &scene.key, None);
    let api = other_repo(&scene);
    // The attacker's push: the signed tag object and the commit it tags, as they are.
    let from = scene.repo.dir().to_str().unwrap();
    api.git(&["fetch", "-q", from, "refs/tags/v9.0.0:refs/tags/v9.0.0"]);
    assert_eq!(
        api.tag_object("v9.0.0"),
        scene.repo.tag_object("v9.0.0"),
        "the very same signed tag object"
    );

    let (mut channel, state_path) = other_channel(&scene, &api);
    let mut state = ChannelState::load(&state_path).unwrap();
    let poll = channel.poll(&scene.signers(), &mut state, NOW).unwrap();
    assert_eq!(
        newest(&poll),
        None,
        "group {OTHER} took web's v9.0.0 copied into its repository"
    );
    assert_eq!(
        refusals(&poll),
        [("v9.0.0".to_owned(), "wrong_application")]
    );
    let message = poll.refusals[0].1.to_string();
    assert!(
        message.starts_with(
            "tag `v9.0.0` is signed for application `web`, not `api` (this group's `application`)"
        ) && message.contains("`Shoal-Application: api`"),
        "{message}"
    );
    let state = ChannelState::load(&state_path).unwrap();
    assert_eq!(state.floor(), None, "a copied tag must not raise the floor");
    assert_eq!(state.identity("v9.0.0"), None, "nor be recorded as seen");

    // api's own release still verifies: nothing of web's tag stuck.
    api.commit_file("scripts/start.sh", "echo api 1", "api 1");
    api.tag_signed("v1.0.0", "release 1.0.0", &scene.key, None);
    let mut state = ChannelState::load(&state_path).unwrap();
    let poll = channel.poll(&scene.signers(), &mut state, NOW).unwrap();
    assert_eq!(newest(&poll), Some("v1.0.0"), "{:?}", poll.refusals);
    assert_eq!(state.floor().unwrap().name(), "v1.0.0");
}

#[test]
fn an_unbound_tag_is_refused_with_the_sentence_that_retags_it() {
    let scene = Scene::new();
    let old = Repo::init(scene.repo.dir()).for_application(None);
    old.tag_signed("v1.2.0", "release 1.2.0", &scene.key, None);
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), None);
    assert_eq!(refusals(&poll), [("v1.2.0".to_owned(), "unbound")]);
    assert_eq!(scene.state().floor(), None);
    let message = poll.refusals[0].1.to_string();
    let recipe = "git tag -s -f v1.2.0 -m \"release v1.2.0\" -m \"Shoal-Application: web\"";
    assert!(
        message.starts_with("tag `v1.2.0` names no application it is for (no `Shoal-Application:` line in its signed message); tag it again with `")
            && message.contains(recipe),
        "{message}"
    );

    // The sentence's own command, run by a shell with the release key, fixes it.
    let home = scene.path("home");
    std::fs::create_dir_all(&home).unwrap();
    stdout(
        clean("sh", &home)
            .current_dir(scene.repo.dir())
            .args(["-c", recipe])
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "user.signingkey")
            .env("GIT_CONFIG_VALUE_0", &scene.key.public),
    );
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), Some("v1.2.0"), "{:?}", poll.refusals);
}

#[test]
fn the_documented_recipe_verifies_with_git_and_with_shoal() {
    let scene = Scene::new();
    // docs/signing-and-releases.md, "Git tags": exactly these arguments, through real git
    // and ssh-keygen.
    let signing_key = format!("user.signingkey={}", scene.key.public.display());
    let signers = format!(
        "gpg.ssh.allowedSignersFile={}",
        scene.signers_path.display()
    );
    let home = scene.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let git = |args: &[&str]| {
        stdout(
            clean("git", &home)
                .current_dir(scene.repo.dir())
                .args(["-c", "gpg.format=ssh", "-c", &signing_key, "-c", &signers])
                .args(args),
        )
    };
    git(&[
        "tag",
        "-s",
        "v1.4.0",
        "-m",
        "release 1.4.0",
        "-m",
        "Shoal-Application: web",
    ]);
    let object = git(&["cat-file", "tag", "v1.4.0"]);
    assert!(
        object.contains("release 1.4.0\n\nShoal-Application: web\n-----BEGIN SSH SIGNATURE-----"),
        "{object}"
    );
    git(&["verify-tag", "v1.4.0"]);

    let mut channel = scene.channel();
    assert_eq!(newest(&scene.poll(&mut channel)), Some("v1.4.0"));

    let repo = scene.repo.dir().to_str().unwrap();
    let good = verify(
        &home,
        repo,
        "v1.4.0",
        &scene.signers_path,
        &["--application", GROUP],
    );
    assert!(good.status.success(), "{}", text(&good));
    let other = verify(
        &home,
        repo,
        "v1.4.0",
        &scene.signers_path,
        &["--application", OTHER, "--json"],
    );
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    let json: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_eq!(json["kind"], "wrong_application", "{json}");
}

#[test]
fn two_bindings_or_one_added_outside_the_signature_are_refused() {
    let scene = Scene::new();
    // Two lines: which one counts would be a guess.
    scene.repo.tag_signed(
        "v1.0.0",
        "release\n\nShoal-Application: api",
        &scene.key,
        None,
    );
    // An unbound tag whose message is rewritten to carry a binding: the signature breaks.
    let old = Repo::init(scene.repo.dir()).for_application(None);
    old.tag_signed("v0.9.0", "release 0.9.0", &scene.key, None);
    scene.repo.tag_tampered(
        "v0.9.0",
        "v0.9.0",
        "release 0.9.0\n\nShoal-Application: web",
    );
    let mut channel = scene.channel();
    let poll = scene.poll(&mut channel);
    assert_eq!(newest(&poll), None);
    assert_eq!(
        refusals(&poll),
        [
            ("v1.0.0".to_owned(), "bad_binding"),
            ("v0.9.0".to_owned(), "bad_signature")
        ]
    );
    let message = poll.refusals[0].1.to_string();
    assert!(
        message.starts_with("tag `v1.0.0` has 2 `Shoal-Application:` lines in its signed message; a release names exactly one; tag it again with `"),
        "{message}"
    );
}
