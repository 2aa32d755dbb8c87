//! https remotes (nginx, `git http-backend`, a private CA): the token reaches the server and
//! no output, and each credential and certificate failure says which it is.

use super::servers::{HTTP_USER, TOKEN};
use super::{Home, refused_saying, served, verify};

#[test]
fn a_token_reads_a_private_repository_and_its_absence_or_a_wrong_one_read_apart() {
    let Some((scene, servers, name)) = served("https-token") else {
        return;
    };
    let home = Home::new();
    let ca = servers.ca.to_str().unwrap();
    let env = [("GIT_SSL_CAINFO", ca)];
    let url = format!(
        "https://127.0.0.1:{}/private/{name}.git",
        servers.https_port
    );
    let token = home.path("token");
    let token_arg = token.to_str().unwrap();

    home.write("token", &format!("{TOKEN}\n"));
    let user = ["--token-file", token_arg, "--username", HTTP_USER];
    let (ok, said) = verify(&home, &scene, &url, &user, &env);
    assert!(ok, "{said}");
    assert!(!said.contains(TOKEN), "{said}");

    let (ok, said) = verify(&home, &scene, &url, &[], &env);
    refused_saying(
        ok,
        &said,
        &["asks for credentials and none are configured", "token_file"],
    );

    home.write("token", "not-the-token\n");
    let (ok, said) = verify(&home, &scene, &url, &user, &env);
    refused_saying(
        ok,
        &said,
        &[&format!(
            "refused the token from {} sent as user `{HTTP_USER}`",
            token.display()
        )],
    );
    assert!(!said.contains("not-the-token"), "{said}");

    // The same token from the url's password: never shown either.
    let with_password = url.replace("https://", &format!("https://{HTTP_USER}:{TOKEN}@"));
    let (ok, said) = verify(&home, &scene, &with_password, &[], &env);
    assert!(ok, "{said}");
    assert!(!said.contains(TOKEN), "{said}");
}

/// An untrusted CA, a certificate for another name and an expired one: each is named, with
/// the server.
#[test]
fn certificates_read_as_untrusted_for_another_name_or_expired() {
    let Some((scene, servers, name)) = served("https-tls") else {
        return;
    };
    let home = Home::new();
    let ca = servers.ca.to_str().unwrap();
    let trusted = [("GIT_SSL_CAINFO", ca)];
    let at = |port: u16| format!("https://127.0.0.1:{port}/{name}.git");

    let (ok, said) = verify(&home, &scene, &at(servers.https_port), &[], &trusted);
    assert!(ok, "{said}");

    let (ok, said) = verify(&home, &scene, &at(servers.https_port), &[], &[]);
    refused_saying(
        ok,
        &said,
        &[
            &format!(
                "the TLS certificate of 127.0.0.1:{} is not signed by a CA this host trusts",
                servers.https_port
            ),
            "GIT_SSL_CAINFO",
        ],
    );

    let (ok, said) = verify(&home, &scene, &at(servers.other_name_port), &[], &trusted);
    refused_saying(
        ok,
        &said,
        &[&format!(
            "the TLS certificate of 127.0.0.1:{} is for other.example, not for 127.0.0.1",
            servers.other_name_port
        )],
    );

    let (ok, said) = verify(&home, &scene, &at(servers.expired_port), &[], &trusted);
    refused_saying(
        ok,
        &said,
        &[&format!(
            "the TLS certificate of 127.0.0.1:{} has expired",
            servers.expired_port
        )],
    );
}

/// Only the url's own protocol is allowed: a `url.<base>.insteadOf` in git's config (or a
/// server's redirect) cannot turn an https channel into a fetch of a repository on this host.
#[test]
fn only_the_urls_protocol_is_allowed() {
    let Some((scene, _servers, _name)) = served("https-protocol") else {
        return;
    };
    let home = Home::new();
    home.write(
        ".gitconfig",
        &format!(
            "[url \"file://{}\"]\n\tinsteadOf = https://git.example.invalid/app.git\n",
            scene.repo.dir().display()
        ),
    );
    let (ok, said) = verify(
        &home,
        &scene,
        "https://git.example.invalid/app.git",
        &[],
        &[],
    );
    refused_saying(ok, &said, &["transport 'file' not allowed"]);
}

/// A tag the remote does not have reads as missing (exit 1, `missing:`), as for a local
/// repository, not as a failed fetch.
#[test]
fn a_tag_the_remote_does_not_have_is_missing() {
    let Some((scene, servers, name)) = served("https-missing") else {
        return;
    };
    let home = Home::new();
    let ca = servers.ca.to_str().unwrap();
    let url = servers.https_url(servers.https_port, "127.0.0.1", &name);
    let out = home
        .command(
            std::path::Path::new(env!("CARGO_BIN_EXE_shoal")),
            &[("GIT_SSL_CAINFO", ca)],
        )
        .args(["verify", "git", "--repo", &url, "--tag", "v9.9.9"])
        .arg("--allowed-signers")
        .arg(&scene.signers_path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.starts_with("missing:"), "{said}");
}
