//! `shoal agent` on configs that are good, bad or unusable: `--check-config` exit codes and
//! the one sentence that names the file, line and key; credential files that are missing or
//! unreadable; a status address in use.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};

use crate::world::World;

fn agent(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("agent")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn world_with_git_config() -> World {
    let world = World::new();
    std::fs::create_dir_all(world.dir.path().join("repo")).unwrap();
    let repo = world.dir.path().join("repo");
    world.write_config(&format!("{{ git: {{ url: {} }} }}", repo.display()), "30s");
    world
}

#[test]
fn check_config_accepts_a_good_file() {
    let world = world_with_git_config();
    let out = agent(&["--check-config"], &world.config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(": ok"), "{said}");
    assert!(
        said.contains("group web (shop): git channel, polled every 30s"),
        "{said}"
    );
}

#[test]
fn check_config_names_the_file_line_and_key_of_a_mistake() {
    let world = world_with_git_config();
    let good = std::fs::read_to_string(&world.config).unwrap();
    let cases = [
        (
            good.replace("kill_grace: 1s", "kill_grace: 1"),
            "kill_grace: `1` has no unit",
        ),
        (
            good.replace(
                "    application: shop\n",
                "    application: shop\n    colour: blue\n",
            ),
            "unknown field `colour`",
        ),
        (
            good.replace("allowed_signers: ", "allowed_signers: /nowhere"),
            "cannot read /nowhere",
        ),
    ];
    for (text_in, words) in cases {
        std::fs::write(&world.config, &text_in).unwrap();
        let out = agent(&["--check-config"], &world.config);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        let prefix = format!("error: {}:", world.config.display());
        assert!(said.starts_with(&prefix), "names the file and line: {said}");
        assert!(said.contains(words), "wanted `{words}` in: {said}");
        assert_eq!(said.lines().count(), 1, "one sentence: {said}");
    }
}

#[test]
fn a_missing_config_is_a_usage_error() {
    let out = agent(&[], Path::new("/nonexistent/agent.yaml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot read config file /nonexistent/agent.yaml"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_status_address_in_use_stops_the_agent_with_exit_1() {
    let world = world_with_git_config();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = std::fs::read_to_string(&world.config)
        .unwrap()
        .replace("listen: 127.0.0.1:0", &format!("listen: {addr}"));
    std::fs::write(&world.config, config).unwrap();
    let out = agent(&[], &world.config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot listen on {addr} (status.listen)")),
        "{}",
        text(&out)
    );
}

/// A git channel's `ssh_key` or `token_file` that is missing, not a regular file, or that the
/// agent cannot read: `--check-config` and a start both exit 2 with one sentence naming the key,
/// the group and the path, before anything is made under the data dir. The secret never shows.
#[test]
fn credential_files_must_exist_be_regular_files_and_readable() {
    let world = World::new();
    let key = world.dir.path().join("deploy_ed25519");
    let token = world.dir.path().join("git-token");
    let git = |extra: &str| {
        world.write_config(&format!("{{ git: {{ {extra} }} }}"), "30s");
    };
    let refused = |args: &[&str], key_name: &str, path: &Path, problem: &str| {
        let out = world.run_agent(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert_eq!(
            said,
            format!(
                "error: {}: groups[0].channel.git.{key_name} (group web): {} {problem}\n",
                world.config.display(),
                path.display()
            ),
            "{args:?}"
        );
    };

    git(&format!(
        "url: 'ssh://git@127.0.0.1:1/app.git', ssh_key: {}",
        key.display()
    ));
    let missing = "does not exist; put the private key there or correct the path";
    refused(&["--check-config"], "ssh_key", &key, missing);
    refused(&[], "ssh_key", &key, missing);
    assert!(
        !world.data_dir.exists(),
        "a refused start makes nothing under the data dir"
    );

    std::fs::create_dir(&token).unwrap();
    git(&format!(
        "url: 'https://git.example.com/app.git', token_file: {}",
        token.display()
    ));
    refused(
        &["--check-config"],
        "token_file",
        &token,
        "is a directory, not a regular file; point it at the file that holds the token",
    );

    std::fs::remove_dir(&token).unwrap();
    std::fs::write(&token, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, "not really a key\n").unwrap();
    git(&format!(
        "url: 'https://git.example.com/app.git', token_file: {}, ssh_key: {}",
        token.display(),
        key.display()
    ));
    let out = world.run_agent(&["--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("s3cret"), "{}", text(&out));

    // Unreadable: as root, check as another user (root reads any file); else take the mode away.
    let mut check = Command::new(env!("CARGO_BIN_EXE_shoal"));
    check
        .args(["agent", "--check-config", "--config"])
        .arg(&world.config)
        .env_remove("RUST_LOG");
    let uid = if nix::unistd::geteuid().is_root() {
        std::fs::set_permissions(world.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        check.uid(65534).gid(65534);
        65534
    } else {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o000)).unwrap();
        nix::unistd::geteuid().as_raw()
    };
    let out = check.output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "groups[0].channel.git.token_file (group web): {} is not readable by the agent (uid {uid})",
            token.display()
        )),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "one sentence: {said}");
}
