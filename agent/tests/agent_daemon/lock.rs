//! One agent per data directory: a second `shoal agent` on the data directory of a live one
//! exits 2 with one sentence naming the directory and the first agent's pid, and leaves the
//! first alone; after `kill -9` of the first, the lock file it left does not block a start.

use shoal_tests::agent::AgentProcess;

use crate::world::World;

fn lock_file(world: &World) -> String {
    std::fs::read_to_string(world.data_dir.join("agent.lock")).unwrap()
}

fn answers(agent: &AgentProcess) {
    let status = agent.status();
    assert_eq!(status["node"]["id"], "test-node", "{status}");
}

#[test]
fn a_second_agent_on_one_data_dir_exits_2_and_a_killed_ones_lock_does_not_block() {
    let world = World::new();
    let repo = world.dir.path().join("no-repo-yet");
    world.write_config(&format!("{{ git: {{ url: {} }} }}", repo.display()), "30s");
    let mut first = world.start_agent(&[]);
    assert_eq!(lock_file(&world), format!("{}\n", first.pid()));

    let second = world.run_agent(&[]);
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(
        said.starts_with(&format!("error: another shoal agent (pid {})", first.pid())),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "running on the data directory {};",
            world.data_dir.display()
        )),
        "{said}"
    );
    assert!(said.contains("stop it first"), "{said}");
    assert_eq!(said.lines().count(), 1, "one sentence: {said}");
    assert_eq!(
        lock_file(&world),
        format!("{}\n", first.pid()),
        "the refused agent leaves the holder's pid in place"
    );
    answers(&first);

    // Checking the config takes no lock: it works while the agent runs.
    let check = world.run_agent(&["--check-config"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    first.kill9();
    assert_eq!(
        lock_file(&world),
        format!("{}\n", first.pid()),
        "kill -9 leaves the file behind"
    );
    let third = world.start_agent(&[]);
    assert_eq!(lock_file(&world), format!("{}\n", third.pid()));
    answers(&third);
}
