//! https credentials: the token is read from its file and sent as basic auth (user
//! `x-access-token` unless configured), and no error ever shows it. The server is a few lines
//! on 127.0.0.1 that answers every request with 401 and records what it was sent.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use shoal_agent::channel::git::{GitError, GitSource};

use crate::fixture::{NOW, Scene};

const TOKEN: &str = "s3cr3t-t0ken-do-not-print";

/// Serves 401 with a basic-auth challenge on a free port; returns the url and the request heads.
fn refusing_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/acme/app.git", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push_str(&line);
                line.clear();
            }
            seen.lock().unwrap().push(head);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, heads)
}

/// Answers every request with `302 Found` to the same path on `to` (`http://host:port`);
/// returns its own url and the request heads it saw.
fn redirecting_server(to: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/acme/app.git", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let to = to.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push_str(&line);
                line.clear();
            }
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            seen.lock().unwrap().push(head);
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {to}{path}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }
    });
    (url, heads)
}

/// The error and every cause, Display and Debug.
fn everything_said(err: &GitError) -> String {
    let mut said = format!("{err}\n{err:?}\n");
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        said.push_str(&format!("{e}\n{e:?}\n"));
        cause = e.source();
    }
    said
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

fn fetch_with_token(scene: &Scene, url: &str, username: Option<&str>) -> GitError {
    let token_file = scene.path("keys/token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut source = GitSource::new(url);
    source.token_file = Some(token_file);
    source.username = username.map(str::to_owned);
    let mut channel = scene.channel_for(source);
    let mut state = scene.state();
    channel.poll(&scene.signers(), &mut state, NOW).unwrap_err()
}

#[test]
fn the_token_is_sent_as_basic_auth_and_never_printed() {
    let scene = Scene::new();
    let (url, heads) = refusing_server();
    let err = fetch_with_token(&scene, &url, None);
    assert_eq!(err.kind(), "git_fetch");
    let said = everything_said(&err);
    assert!(!said.contains(TOKEN), "{said}");
    assert!(said.contains(&url), "the error names the url: {said}");
    let expected = format!(
        "Basic {}",
        base64(format!("x-access-token:{TOKEN}").as_bytes())
    );
    let heads = heads.lock().unwrap();
    assert!(
        heads.iter().any(|h| h
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("authorization: {expected}")))),
        "{heads:?}"
    );
    assert!(
        heads.len() <= 3,
        "credentials are offered once, not in a loop: {heads:?}"
    );
}

#[test]
fn a_configured_username_carries_the_token_and_url_passwords_are_hidden() {
    let scene = Scene::new();
    let (url, heads) = refusing_server();
    let with_password = url.replacen("http://", "http://bot:hunter2@", 1);
    let err = fetch_with_token(&scene, &with_password, Some("deploy-bot"));
    let said = everything_said(&err);
    assert!(!said.contains(TOKEN) && !said.contains("hunter2"), "{said}");
    assert!(said.contains("http://bot:***@127.0.0.1"), "{said}");
    let expected = base64(format!("deploy-bot:{TOKEN}").as_bytes());
    assert!(
        heads.lock().unwrap().iter().any(|h| h.contains(&expected)),
        "{:?}",
        heads.lock().unwrap()
    );
}

#[test]
fn an_unreadable_token_file_is_named_in_the_error() {
    let scene = Scene::new();
    let (url, _) = refusing_server();
    let mut source = GitSource::new(&url);
    source.token_file = Some(scene.path("keys/no-such-token"));
    let mut channel = scene.channel_for(source);
    let err = channel
        .poll(&scene.signers(), &mut scene.state(), NOW)
        .unwrap_err();
    let said = everything_said(&err);
    assert!(said.contains("cannot read the token file"), "{said}");
    assert!(said.contains("no-such-token"), "{said}");
}

/// The configured server redirects the fetch elsewhere (another port, another host name for
/// the same machine, as an open redirect or a hijacked server would): the other server asks for
/// credentials and gets none. The token goes only to the host, port and scheme configured.
#[test]
fn a_redirect_to_another_server_gets_no_token() {
    for other_name in ["127.0.0.1", "localhost"] {
        let scene = Scene::new();
        let (other, other_heads) = refusing_server();
        let other_port = other.split(':').nth(2).unwrap().split('/').next().unwrap();
        let (url, heads) = redirecting_server(&format!("http://{other_name}:{other_port}"));
        let err = fetch_with_token(&scene, &url, None);
        assert!(!everything_said(&err).contains(TOKEN));
        assert!(
            !heads.lock().unwrap().is_empty(),
            "the redirect was asked for"
        );
        let other_heads = other_heads.lock().unwrap();
        assert!(
            !other_heads.is_empty(),
            "libgit2 follows the redirect to {other_name}"
        );
        assert!(
            other_heads
                .iter()
                .all(|h| !h.to_ascii_lowercase().contains("authorization:")),
            "the token went to {other_name}:{other_port}: {other_heads:?}"
        );
    }
}

/// A token or a url password that would cross the network in clear text (plain http to
/// another host, git://) is a config error: exit 2 with one sentence naming the key. A public
/// repository over plain http, and a token to a loopback http server, are still accepted.
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
        "{ url: 'http://127.0.0.1:3000/app.git', token_file: token }",
    ] {
        let (code, said) = check(git);
        assert_eq!(code, Some(0), "{git}: {said}");
    }
}
