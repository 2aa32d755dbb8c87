//! `shoal agent` on configs that are good, bad or unusable: `--check-config` exit codes and
//! the one sentence that names the file, line and key; a status address in use.

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
