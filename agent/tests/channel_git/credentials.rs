//! https credentials: the token is read from its file and sent as basic auth (user
//! `x-access-token` unless configured), only to the server configured, never in clear text,
//! and no output ever shows it. The servers are `tests/fixtures/tls/recorder.py` on 127.0.0.1
//! with a certificate made here, which `shoal verify git` (its git) trusts through
//! `GIT_SSL_CAINFO`; they answer 401 (or redirect) and record what they were sent.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::fixture::Scene;

const TOKEN: &str = "s3cr3t-t0ken-do-not-print";

/// A certificate for 127.0.0.1 and localhost, and its key, in the scene.
fn certificate(scene: &Scene) -> (PathBuf, PathBuf) {
    let (cert, key) = (scene.path("keys/cert.pem"), scene.path("keys/key.pem"));
    if !cert.exists() {
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (cert, key)
}

/// One `recorder.py` server, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    heads: PathBuf,
}

impl Server {
    /// Answers 401 with a basic-auth challenge.
    fn refusing(scene: &Scene, name: &str) -> Server {
        Server::start(scene, name, &["refuse"])
    }

    /// Answers 302 to `base` and the same path.
    fn redirecting(scene: &Scene, name: &str, base: &str) -> Server {
        Server::start(scene, name, &["redirect", base])
    }

    fn start(scene: &Scene, name: &str, mode: &[&str]) -> Server {
        let (cert, key) = certificate(scene);
        let heads = scene.path(&format!("{name}.heads"));
        let mut child = Command::new("python3")
            .arg(shoal_tests::fixture("tls/recorder.py"))
            .args([&cert, &key, &heads])
            .args(mode)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its port");
        let port = line.trim().parse().expect("a port");
        Server { child, port, heads }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/acme/app.git", self.port)
    }

    /// One line per request: the request line, a tab, its `Authorization` header or `-`.
    fn heads(&self) -> Vec<String> {
        std::fs::read_to_string(&self.heads)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `shoal verify git` of `url` with the token (and `extra` flags), trusting the scene's
/// certificate; its output.
fn verify_with_token(scene: &Scene, url: &str, token: &Path, extra: &[&str]) -> Output {
    let (cert, _) = certificate(scene);
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "verify",
            "git",
            "--repo",
            url,
            "--tag",
            "v1.0.0",
            "--allowed-signers",
        ])
        .arg(&scene.signers_path)
        .arg("--token-file")
        .arg(token)
        .args(extra)
        .env("GIT_SSL_CAINFO", cert)
        .env("RUST_LOG", "debug")
        .output()
        .expect("shoal verify git")
}

fn token_file(scene: &Scene) -> PathBuf {
    let file = scene.path("keys/token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    file
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}

#[test]
fn the_token_is_sent_as_basic_auth_and_never_printed() {
    let scene = Scene::new();
    let server = Server::refusing(&scene, "git");
    let url = server.url("127.0.0.1");
    let out = verify_with_token(&scene, &url, &token_file(&scene), &[]);
    let said = said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains(TOKEN), "{said}");
    assert!(said.contains(&url), "the error names the url: {said}");
    let expected = format!(
        "Authorization: Basic {}",
        base64(format!("x-access-token:{TOKEN}").as_bytes())
    );
    let heads = server.heads();
    assert!(heads.iter().any(|h| h.ends_with(&expected)), "{heads:?}");
    assert!(
        heads.len() <= 3,
        "credentials are offered once, not in a loop: {heads:?}"
    );
}

#[test]
fn a_configured_username_carries_the_token_and_url_passwords_are_hidden() {
    let scene = Scene::new();
    let server = Server::refusing(&scene, "git");
    let with_password = server.url("bot:hunter2@127.0.0.1");
    let out = verify_with_token(
        &scene,
        &with_password,
        &token_file(&scene),
        &["--username", "deploy-bot"],
    );
    let said = said(&out);
    assert!(!said.contains(TOKEN) && !said.contains("hunter2"), "{said}");
    assert!(said.contains("https://bot:***@127.0.0.1"), "{said}");
    let expected = base64(format!("deploy-bot:{TOKEN}").as_bytes());
    let heads = server.heads();
    assert!(heads.iter().any(|h| h.contains(&expected)), "{heads:?}");
}

#[test]
fn an_unreadable_token_file_is_named_in_the_error() {
    let scene = Scene::new();
    let server = Server::refusing(&scene, "git");
    let out = verify_with_token(
        &scene,
        &server.url("127.0.0.1"),
        &scene.path("keys/no-such-token"),
        &[],
    );
    let said = said(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("cannot read the token file"), "{said}");
    assert!(said.contains("no-such-token"), "{said}");
}

/// The configured server redirects the fetch elsewhere (another port, another host name for
/// the same machine, as an open redirect or a hijacked server would): the redirect is not
/// followed, so the other server is not even asked, and the error says to change the url.
#[test]
fn a_redirect_to_another_server_gets_no_token() {
    for other_name in ["127.0.0.1", "localhost"] {
        let scene = Scene::new();
        let other = Server::refusing(&scene, "other");
        let base = format!("https://{other_name}:{}", other.port);
        let redirect = Server::redirecting(&scene, "redirect", &base);
        let out = verify_with_token(&scene, &redirect.url("127.0.0.1"), &token_file(&scene), &[]);
        let said = said(&out);
        assert!(!said.contains(TOKEN), "{said}");
        assert!(!redirect.heads().is_empty(), "the redirect was asked for");
        assert!(
            other.heads().is_empty(),
            "the redirect to {other_name} was followed: {:?}",
            other.heads()
        );
        assert!(
            said.contains("answers with a redirect (HTTP 302)"),
            "{said}"
        );
    }
}

/// A token or a url password that would travel in clear text (plain http, to another host or
/// to this one, where a local user could hold the port; git://) is a config error: exit 2 with
/// one sentence naming the key. A public repository over plain http is still accepted.
#[test]
fn a_secret_over_plain_http_or_git_is_refused_at_config_load() {
    let scene = Scene::new();
    let dir = scene.path("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.join("allowed_signers"), "").unwrap();
    let check = |git: &str| {
        let config = dir.join("agent.yaml");
        std::fs::write(
            &config,
            format!(
                "node: {{ id: web-1, data_dir: {} }}\n\
                 groups:\n  - name: web\n    channel:\n      git: {git}\n    \
                 allowed_signers: allowed_signers\n",
                scene.path("data").display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["agent", "--check-config", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!said.contains(TOKEN) && !said.contains("hunter2"), "{said}");
        (out.status.code(), said)
    };
    for (git, key, scheme) in [
        (
            "{ url: 'http://git.example.com/app.git', token_file: token }",
            "groups[0].channel.git.token_file",
            "http://",
        ),
        (
            "{ url: 'git://git.example.com/app.git', token_file: token }",
            "groups[0].channel.git.token_file",
            "git://",
        ),
        (
            "{ url: 'http://bot:hunter2@git.example.com/app.git' }",
            "groups[0].channel.git.url",
            "http://",
        ),
        (
            "{ url: 'http://127.0.0.1:3000/app.git', token_file: token }",
            "groups[0].channel.git.token_file",
            "http://",
        ),
    ] {
        let (code, said) = check(git);
        assert_eq!(code, Some(2), "{git}: {said}");
        assert!(said.contains(key), "{git}: {said}");
        assert!(
            said.contains(&format!("over {scheme}"))
                || said.contains(&format!("the url is {scheme}")),
            "{git}: {said}"
        );
        assert!(said.contains("clear text"), "{git}: {said}");
    }
    for git in [
        "{ url: 'http://git.example.com/public.git' }",
        "{ url: 'https://git.example.com/app.git', token_file: token }",
    ] {
        let (code, said) = check(git);
        assert_eq!(code, Some(0), "{git}: {said}");
    }
}
