//! An idle poll asks for tags only: with 1,000 `refs/pull/*` refs beside the release tag (as a
//! busy GitHub repository has), it costs what a repository with the tag alone costs. Measured
//! on the wire through the counting proxy, in front of nginx and `git http-backend`.

use std::io::Write as _;
use std::process::Stdio;

use shoal_agent::channel::git::GitSource;
use shoal_tests::command::clean;
use shoal_tests::proxy::CountingProxy;

use super::served;

/// Above what an idle poll of the tags alone costs over http with protocol v2 (measured: about
/// 1.5 KB), far below what listing every ref costs (about 60 KB here).
const IDLE_POLL_MAX_BYTES: u64 = 5_000;

#[test]
fn an_idle_poll_asks_for_tags_only() {
    let Some((scene, servers, name)) = served("idle") else {
        return;
    };
    let served = servers.served(&name);
    let head = scene.repo.head();
    let mut update = clean("git", scene.dir.path())
        .arg("--git-dir")
        .arg(&served)
        .args(["update-ref", "--stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut refs = String::new();
    for n in 1..=1000 {
        refs.push_str(&format!("create refs/pull/{n}/head {head}\n"));
    }
    update
        .stdin
        .take()
        .unwrap()
        .write_all(refs.as_bytes())
        .unwrap();
    assert!(update.wait().unwrap().success());

    let proxy = CountingProxy::start(([127, 0, 0, 1], servers.http_port).into());
    let url = format!("http://{}/{name}.git", proxy.addr());
    let mut channel = scene.channel_for(GitSource::new(url));
    let first = scene.poll(&mut channel);
    assert_eq!(
        first.newest.map(|r| r.version.name().to_owned()).as_deref(),
        Some("v1.0.0")
    );
    proxy.reset();
    let idle = scene.poll(&mut channel);
    assert!(idle.newest.is_none() && idle.refusals.is_empty());
    let stats = proxy.stats();
    let bytes = stats.bytes_up + stats.bytes_down;
    eprintln!(
        "idle poll, 1000 refs/pull/* and one tag over http: {} requests, {} bytes up, {} bytes down",
        stats.requests, stats.bytes_up, stats.bytes_down
    );
    assert!(
        bytes <= IDLE_POLL_MAX_BYTES,
        "an idle poll moved {bytes} bytes: {stats:?}"
    );
}
