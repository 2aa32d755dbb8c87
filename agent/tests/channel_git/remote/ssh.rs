//! ssh remotes, as `git` with OpenSSH fetches them: host keys from `~/.ssh/known_hosts` and
//! `/etc/ssh/ssh_known_hosts`, `~/.ssh/config`, and each refusal said as its own case.

use super::servers::{SSH_USER, fingerprint, keygen, public_key};
use super::{Home, refused_saying, served, verify};

#[test]
fn a_known_host_and_an_authorized_key_verify() {
    let Some((scene, servers, name)) = served("ssh-good") else {
        return;
    };
    let home = Home::new();
    home.write(".ssh/known_hosts", &servers.known_hosts_line());
    let key = servers.client_key.to_str().unwrap();
    let url = servers.ssh_url(SSH_USER, &name);
    let (ok, said) = verify(&home, &scene, &url, &["--ssh-key", key], &[]);
    assert!(ok, "{said}");
    assert!(said.contains("good: tag v1.0.0"), "{said}");
}

/// An unknown host is refused (never trusted on first use), and the error shows the key the
/// server offers, the files ssh read, and the command that adds it.
#[test]
fn an_unknown_host_key_is_named_with_its_fingerprint_and_the_files() {
    let Some((scene, servers, name)) = served("ssh-unknown") else {
        return;
    };
    let home = Home::new();
    let key = servers.client_key.to_str().unwrap();
    let url = servers.ssh_url(SSH_USER, &name);
    let (ok, said) = verify(&home, &scene, &url, &["--ssh-key", key], &[]);
    let port = servers.sshd_port;
    refused_saying(
        ok,
        &said,
        &[
            &format!("the ssh host key of [127.0.0.1]:{port} is not known here"),
            &format!("the server offers ssh-ed25519 {}", servers.host_fingerprint),
            "/root/.ssh/known_hosts or /etc/ssh/ssh_known_hosts",
            &format!("ssh-keyscan -p {port} 127.0.0.1"),
        ],
    );
    assert!(!said.contains("has CHANGED"), "{said}");
}

#[test]
fn a_changed_host_key_is_refused_with_the_new_fingerprint_and_the_line() {
    let Some((scene, servers, name)) = served("ssh-changed") else {
        return;
    };
    let home = Home::new();
    keygen(&home.path("impostor"));
    let old = public_key(&home.path("impostor.pub"));
    let port = servers.sshd_port;
    home.write(
        ".ssh/known_hosts",
        &format!("# the key we knew\n[127.0.0.1]:{port} {old}\n"),
    );
    let key = servers.client_key.to_str().unwrap();
    let url = servers.ssh_url(SSH_USER, &name);
    let (ok, said) = verify(&home, &scene, &url, &["--ssh-key", key], &[]);
    refused_saying(
        ok,
        &said,
        &[
            &format!("the ssh host key of [127.0.0.1]:{port} has CHANGED"),
            &format!(
                "the server now offers ED25519 key {}",
                servers.host_fingerprint
            ),
            "/root/.ssh/known_hosts:2 holds another key",
            "man-in-the-middle",
        ],
    );
}

/// The system's known_hosts file is read where OpenSSH reads it: `/etc/ssh/ssh_known_hosts`
/// (here a copy of `/etc/ssh` mounted over it for this test's processes only).
#[test]
fn the_system_known_hosts_file_is_read() {
    let Some((scene, servers, name)) = served("ssh-system") else {
        return;
    };
    let home = Home::new();
    home.system_known_hosts(&servers.known_hosts_line());
    let key = servers.client_key.to_str().unwrap();
    let url = servers.ssh_url(SSH_USER, &name);
    let (ok, said) = verify(&home, &scene, &url, &["--ssh-key", key], &[]);
    assert!(ok, "{said}");
}

/// A host alias from `~/.ssh/config` (its host name, port, user and key) works as it does
/// for `git`: the url names only the alias.
#[test]
fn the_users_ssh_config_is_read() {
    let Some((scene, servers, name)) = served("ssh-config") else {
        return;
    };
    let home = Home::new();
    home.write(".ssh/known_hosts", &servers.known_hosts_line());
    std::fs::copy(&servers.client_key, home.path(".ssh/deploy")).unwrap();
    home.write(
        ".ssh/config",
        &format!(
            "Host gitserver\n  HostName 127.0.0.1\n  Port {}\n  User {SSH_USER}\n  \
             IdentityFile ~/.ssh/deploy\n",
            servers.sshd_port
        ),
    );
    let url = format!("gitserver:{}", servers.served(&name).display());
    let (ok, said) = verify(&home, &scene, &url, &[], &[]);
    assert!(ok, "{said}");
}

/// No key, a key the server does not know, and a user it does not know: each says what was
/// offered. (An ssh server answers a wrong key and a wrong user alike, by design, so the
/// error names both the user and the key.)
#[test]
fn no_key_a_wrong_key_and_a_wrong_user_read_apart() {
    let Some((scene, servers, name)) = served("ssh-auth") else {
        return;
    };
    let home = Home::new();
    home.write(".ssh/known_hosts", &servers.known_hosts_line());
    let url = servers.ssh_url(SSH_USER, &name);

    let (ok, said) = verify(&home, &scene, &url, &[], &[]);
    refused_saying(
        ok,
        &said,
        &["no ssh key was offered", "as user `root`", "ssh_key"],
    );

    keygen(&home.path("stranger"));
    let stranger = home.path("stranger");
    let stranger_print = fingerprint(&home.path("stranger.pub"));
    let (ok, said) = verify(
        &home,
        &scene,
        &url,
        &["--ssh-key", stranger.to_str().unwrap()],
        &[],
    );
    refused_saying(
        ok,
        &said,
        &[&format!(
            "refused user `root` with ssh key {stranger_print} ({})",
            stranger.display()
        )],
    );

    let key = servers.client_key.to_str().unwrap();
    let client_print = fingerprint(&servers.client_key.with_extension("pub"));
    let wrong_user = servers.ssh_url("nobody", &name);
    let (ok, said) = verify(&home, &scene, &wrong_user, &["--ssh-key", key], &[]);
    refused_saying(
        ok,
        &said,
        &[&format!(
            "refused user `nobody` with ssh key {client_print}"
        )],
    );

    // A url without a user logs in as `git` (the documented default), unless `--username`.
    let no_user = wrong_user.replace("nobody@", "");
    let (ok, said) = verify(&home, &scene, &no_user, &["--ssh-key", key], &[]);
    refused_saying(ok, &said, &["refused user `git`"]);
    let (ok, said) = verify(
        &home,
        &scene,
        &no_user,
        &["--ssh-key", key, "--username", SSH_USER],
        &[],
    );
    assert!(ok, "{said}");
}
