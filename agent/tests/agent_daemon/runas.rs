//! `runas` hooks under a real agent: the data dir is 0700 root as packaged, the hook runs as a
//! real throwaway user, reads its own bundle and gets a clean environment, while the agent's
//! secrets (set on the agent process) stay with the agent and its non-runas hooks.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::unistd::Uid;
use serde_json::Value;
use shoal_tests::signing::git::Repo;
use shoal_tests::users::ThrowawayUser;

use crate::story::DEPLOY;
use crate::world::{GROUP, World, group};

/// A secret of the agent's own environment (as an s3:// channel's credentials would be).
const SECRET: &str = "wJalrXUtnFEMI-shoal-test-secret";

/// A runas hook that reads a file beside it through the usual idioms, and prints its
/// environment; an AfterInstall hook run as root that says whether it sees the secret.
fn write_bundle(dir: &Path, user: &str) {
    let appspec = format!(
        "version: 0.0\nos: linux\nhooks:\n\
         \x20 BeforeInstall:\n    - location: scripts/as_user.sh\n      runas: {user}\n\
         \x20 AfterInstall:\n    - location: scripts/as_root.sh\n"
    );
    let as_user = "#!/bin/sh\n\
                   set -e\n\
                   here=$(cd \"$(dirname \"$0\")\" && pwd)\n\
                   echo \"user=$(id -un)\"\n\
                   echo \"conf=$(cat \"$here/../conf/app.conf\")\"\n\
                   echo \"sibling=$(cat \"$(dirname \"$0\")/../conf/app.conf\")\"\n\
                   env | sort | sed 's/^/env: /'\n";
    let as_root = "#!/bin/sh\necho \"root sees the secret: ${AWS_SECRET_ACCESS_KEY:-no}\"\n";
    let files = [
        ("appspec.yml", appspec.as_str(), 0o644),
        ("conf/app.conf", "read from the bundle", 0o644),
        ("scripts/as_user.sh", as_user, 0o755),
        ("scripts/as_root.sh", as_root, 0o755),
    ];
    for (path, content, mode) in files {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, content).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A world whose data dir has `data_mode` (0700 as packaged) under a folder any user may
/// search, a git channel with a signed `v1.0.0` whose hooks are [`write_bundle`]'s, and a
/// running agent with [`SECRET`] and `LANG` in its environment; returns the last deployment.
fn deploy(user: &ThrowawayUser, data_mode: u32) -> (World, Value, String) {
    let world = World::new();
    fs::set_permissions(world.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(&world.data_dir).unwrap();
    fs::set_permissions(&world.data_dir, fs::Permissions::from_mode(data_mode)).unwrap();
    let repo = Repo::init(&world.dir.path().join("repo"));
    write_bundle(repo.dir(), &user.name);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "v1.0.0"]);
    repo.tag_signed("v1.0.0", "release v1.0.0", &world.key, None);
    let config = format!(
        "node: {{ id: test-node, data_dir: {data} }}\n\
         status: {{ listen: 127.0.0.1:0 }}\n\
         log: {{ format: json, level: info }}\n\
         groups:\n\
         \x20 - name: {GROUP}\n\
         \x20   channel: {{ git: {{ url: {repo}, tags: \"v*\", poll: 30s }} }}\n\
         \x20   allowed_signers: {signers}\n\
         \x20   rollout: {{ min_healthy_time: 100ms }}\n",
        data = world.data_dir.display(),
        repo = repo.dir().display(),
        signers = world.signers_file.display(),
    );
    fs::write(&world.config, config).unwrap();
    let env = [
        ("AWS_SECRET_ACCESS_KEY".to_owned(), SECRET.to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    let agent = world.start_agent(&env);
    let status = agent.wait_status(DEPLOY, "the deployment of v1.0.0 ended", |s| {
        matches!(
            group(s)["last_deployment"]["result"].as_str(),
            Some("succeeded" | "failed")
        )
    });
    let deployment = group(&status)["last_deployment"].clone();
    let log = scripts_log(&world.data_dir, deployment["id"].as_str().unwrap());
    (world, deployment, log)
}

/// The deployment's scripts.log, read as root.
fn scripts_log(data_dir: &Path, id: &str) -> String {
    let path: PathBuf = data_dir
        .join("deployment-root")
        .join(GROUP)
        .join(id)
        .join("logs/scripts.log");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the runas hook printed on stdout, tags and timestamps cut off.
fn user_stdout(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|l| {
            l.split_once("[scripts/as_user.sh] [stdout] ")
                .map(|(_, t)| t)
        })
        .collect()
}

#[test]
fn a_runas_hook_reads_its_bundle_under_the_packaged_0700_data_dir() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: runas needs the tests to run as root");
        return;
    }
    let user = ThrowawayUser::create();
    let (world, deployment, log) = deploy(&user, 0o700);

    assert_eq!(
        deployment["result"], "succeeded",
        "the runas hook failed under a 0700 data dir\ndeployment: {deployment:#}\nscripts.log:\n{log}"
    );
    let stdout = user_stdout(&log);
    assert_eq!(
        stdout[..3],
        [
            format!("user={}", user.name),
            "conf=read from the bundle".to_owned(),
            "sibling=read from the bundle".to_owned(),
        ],
        "{log}"
    );
    // The hook got in without the data dir being opened to anyone: still 0700, and the user
    // cannot list it or reach the archive by its path from outside the hook.
    let mode = fs::metadata(&world.data_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o700, "the data dir's mode changed");
    let archive = world
        .data_dir
        .join("deployment-root")
        .join(GROUP)
        .join(deployment["id"].as_str().unwrap())
        .join("deployment-archive/conf/app.conf");
    for (tool, path) in [("ls", &world.data_dir), ("cat", &archive)] {
        let out = std::process::Command::new(tool)
            .arg(path)
            .uid(user.uid)
            .gid(user.gid)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "user {} could {tool} {} outside a hook",
            user.name,
            path.display()
        );
    }
}

#[test]
fn a_runas_hook_does_not_get_the_agents_secrets() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: runas needs the tests to run as root");
        return;
    }
    let user = ThrowawayUser::create();
    // The data dir opened up (the workaround the old error message asked for), so that the
    // hook runs whether or not the agent can make it a view of its bundle.
    let (_world, deployment, log) = deploy(&user, 0o755);

    let stdout = user_stdout(&log);
    assert!(
        !stdout.iter().any(|l| l.contains(SECRET)),
        "the runas hook saw the agent's AWS_SECRET_ACCESS_KEY:\n{}",
        stdout.join("\n")
    );
    assert_eq!(deployment["result"], "succeeded", "{deployment:#}\n{log}");
    let env: Vec<&str> = stdout
        .iter()
        .filter_map(|l| l.strip_prefix("env: "))
        .collect();
    let id = deployment["id"].as_str().unwrap();
    for wanted in [
        "LIFECYCLE_EVENT=BeforeInstall".to_owned(),
        format!("DEPLOYMENT_ID={id}"),
        format!("APPLICATION_NAME={GROUP}"),
        format!("DEPLOYMENT_GROUP_NAME={GROUP}"),
        format!("DEPLOYMENT_GROUP_ID={GROUP}"),
        "SHOAL_REVISION=v1.0.0".to_owned(),
        format!("USER={}", user.name),
        format!("LOGNAME={}", user.name),
        format!("HOME=/home/{}", user.name),
        format!("PATH={}", shoal_agent::execute::hooks::RUNAS_PATH),
        // On the default allow-list (hooks.runas_env).
        "LANG=C.UTF-8".to_owned(),
    ] {
        assert!(env.contains(&wanted.as_str()), "no {wanted} in {env:#?}");
    }
    assert!(
        env.iter().any(|v| v.starts_with("BUNDLE_COMMIT=")),
        "{env:#?}"
    );
    // Nothing else of the agent's environment: its HOME, git settings and the like.
    for gone in ["GIT_CONFIG_GLOBAL=", "GIT_CONFIG_NOSYSTEM=", "RUST_LOG="] {
        assert!(
            !env.iter().any(|v| v.starts_with(gone)),
            "{gone} in {env:#?}"
        );
    }
    // Hooks without runas run as the agent, with its environment (as the CodeDeploy agent's do).
    assert!(
        log.contains(&format!(
            "[scripts/as_root.sh] [stdout] root sees the secret: {SECRET}"
        )),
        "{log}"
    );
}
