//! runas and sudo.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use nix::unistd::{Group, Uid, User};
use shoal_agent::execute::hooks::{HookError, RUNAS_PATH};

use shoal_tests::users::ThrowawayUser;

use super::helpers::*;

#[tokio::test]
async fn runas_an_unknown_user_is_refused_naming_the_user() {
    let deployment = Deployment::new();
    let mut script = deployment.script("scripts/who.sh", "#!/bin/sh\nid\n");
    script.runas = Some("shoal-no-such-user".to_string());

    let error = run_to_end(deployment.run(&script, &[]))
        .await
        .expect_err("refused");

    assert!(matches!(error, HookError::RunAs { .. }), "{error:?}");
    assert!(error.to_string().contains("shoal-no-such-user"), "{error}");
    assert!(deployment.texts("scripts/who.sh", "stdout").is_empty());
}

#[tokio::test]
async fn runas_runs_as_the_user_with_its_groups_and_login_environment() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: runas needs the tests to run as root");
        return;
    }
    let user = ThrowawayUser::create();
    let entry = User::from_name(&user.name).expect("passwd").expect("user");
    let extra_gid = Group::from_name(&user.group)
        .expect("group")
        .expect("group")
        .gid;
    let deployment = Deployment::new();
    let mut script = deployment.script(
        "scripts/whoami.sh",
        "#!/bin/sh\n\
         echo \"uid=$(id -u)\"\n\
         echo \"groups=$(id -G)\"\n\
         echo \"home=$HOME\"\n\
         echo \"user=$USER\"\n\
         echo \"logname=$LOGNAME\"\n\
         echo \"path=$PATH\"\n\
         echo \"event=$LIFECYCLE_EVENT\"\n",
    );
    script.runas = Some(user.name.clone());
    // The user can reach the script by its path: no view of the bundle needed.
    for dir in [deployment.dir.path(), &deployment.archive] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let extra = env(&[("LIFECYCLE_EVENT", EVENT)]);

    let outcome = run_to_end(deployment.run(&script, &extra))
        .await
        .expect("ran");

    assert_succeeded(&outcome);
    let stdout = deployment.texts("scripts/whoami.sh", "stdout");
    assert_eq!(stdout[0], format!("uid={}", entry.uid));
    let groups: Vec<&str> = stdout[1]
        .strip_prefix("groups=")
        .expect("groups line")
        .split(' ')
        .collect();
    assert!(
        groups.contains(&entry.gid.to_string().as_str()),
        "{groups:?}"
    );
    assert!(
        groups.contains(&extra_gid.to_string().as_str()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"0"), "root's group leaked: {groups:?}");
    assert_eq!(
        stdout[2..],
        [
            format!("home=/home/{}", user.name),
            format!("user={}", user.name),
            format!("logname={}", user.name),
            format!("path={RUNAS_PATH}"),
            format!("event={EVENT}"),
        ]
    );
    let shoal = deployment.texts("scripts/whoami.sh", "shoal");
    assert!(
        shoal[0].ends_with(&format!("(as user {})", user.name)),
        "{shoal:?}"
    );
}

#[tokio::test]
async fn sudo_when_the_agent_is_root_just_runs_the_script() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs the tests to run as root (sudo is not exercised)");
        return;
    }
    let deployment = Deployment::new();
    let mut script = deployment.script("scripts/root.sh", "#!/bin/sh\nid -u\n");
    script.sudo = true;

    let outcome = run_to_end(deployment.run(&script, &[])).await.expect("ran");

    assert_succeeded(&outcome);
    assert_eq!(deployment.texts("scripts/root.sh", "stdout"), ["0"]);
}

#[tokio::test]
async fn runas_reaches_its_bundle_under_a_private_directory() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: runas needs the tests to run as root");
        return;
    }
    let user = ThrowawayUser::create();
    let deployment = Deployment::new();
    let beside = deployment.archive.join("scripts/beside.txt");
    fs::write(&beside, "beside\n").expect("write");
    // The user's own file, as a tar recording it as theirs unpacks it: still not theirs to
    // change, since root runs scripts from this archive too.
    let entry = User::from_name(&user.name).expect("passwd").expect("user");
    nix::unistd::chown(&beside, Some(entry.uid), Some(entry.gid)).expect("chown");
    let mut script = deployment.script(
        "scripts/read.sh",
        "#!/bin/sh\nset -e\nhere=$(cd \"$(dirname \"$0\")\" && pwd)\necho \"$(id -un) $(cat \"$here/beside.txt\")\"\n\
         if echo changed >> \"$here/beside.txt\"; then echo changed; else echo read-only; fi\n",
    );
    script.runas = Some(user.name.clone());
    // Private to root above the archive, as the packaged data dir is.
    fs::set_permissions(deployment.dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");

    let outcome = run_to_end(deployment.run(&script, &[])).await;

    let outcome = outcome.unwrap_or_else(|e| panic!("{e:?}\n{:?}", deployment.log_lines()));
    assert_succeeded(&outcome);
    assert_eq!(
        deployment.texts("scripts/read.sh", "stdout"),
        [format!("{} beside", user.name), "read-only".to_owned()]
    );
    assert_eq!(fs::read_to_string(&beside).expect("read"), "beside\n");
}
