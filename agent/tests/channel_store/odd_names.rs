//! Object names the store library cannot read (`prefix//x`, `.` and `..` segments, control
//! characters, names that are not UTF-8) sit beside valid releases: the channel skips and
//! reports them, still installs the valid releases, and `shoal release` still publishes.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::process::Output;

use crate::backend::{BUCKET, Backend, Kind};
use crate::fixture::World;
use crate::poll_now;

over_stores!(cli: an_unreadable_object_name_does_not_freeze_the_channel);

/// The raw names put beside the releases, relative to the channel's prefix.
const ODD: [&[u8]; 5] = [
    b"/x",
    b"./x",
    b"../x",
    b"\x1b]0;pwned\x07/x",
    b"\x1b[2Jnote",
];

/// Puts every odd name the backend can hold next to the releases: S3 keeps any key as is; a
/// directory cannot hold `//`, `.` or `..`, but can hold control characters and non-UTF-8.
fn put_odd_names(store: &Backend) {
    match store.kind {
        Kind::S3 => {
            let moto = store.moto.as_ref().unwrap();
            for name in ODD {
                let key: String = name
                    .iter()
                    .map(|b| match b {
                        b'a'..=b'z' | b'.' | b'/' => char::from(*b).to_string(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                moto.put_object(BUCKET, &format!("apps/web/{key}"), b"odd");
            }
        }
        Kind::File => {
            let dir = store.location.local_dir().unwrap();
            let osname = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_owned();
            fs::create_dir_all(dir.join(osname(b"\x1b]0;pwned\x07"))).unwrap();
            fs::write(dir.join(osname(b"\x1b]0;pwned\x07/x")), "odd").unwrap();
            fs::write(dir.join(osname(b"\x1b[2Jnote")), "odd").unwrap();
            fs::create_dir_all(dir.join(osname(b"v9.9.9-\xff"))).unwrap();
        }
        Kind::Memory => unreachable!("cli stores only"),
    }
}

fn output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn an_unreadable_object_name_does_not_freeze_the_channel(store: Backend) {
    let world = World::new();
    store
        .release(&world, "v1.0.0", &world.app_dir("one", "one"))
        .await;
    put_odd_names(&store);

    let mut channel = store.channel(&world);
    let mut state = world.state();
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert_eq!(
        poll.newest.as_ref().map(|r| r.version.name().to_owned()),
        Some("v1.0.0".to_owned()),
        "{poll:?}"
    );
    let mut expected = match store.kind {
        Kind::S3 => vec![
            "apps/web//",
            "apps/web/./",
            "apps/web/../",
            "apps/web/\\u{1b}]0;pwned\\u{7}/",
            "apps/web/\\u{1b}[2Jnote",
        ],
        _ => vec!["\\u{1b}]0;pwned\\u{7}", "\\u{1b}[2Jnote", "v9.9.9-\u{fffd}"],
    };
    expected.sort_unstable();
    let mut reported = poll.unreadable.clone();
    reported.sort_unstable();
    assert_eq!(reported, expected, "{poll:?}");
    assert!(poll.refusals.is_empty(), "{poll:?}");

    let out = store.shoal_release(
        "v1.1.0",
        &world.app_dir("two", "two"),
        &world.key.private,
        &[],
    );
    assert!(out.status.success(), "shoal release: {}", output(&out));
    assert!(!output(&out).contains('\x1b'), "{:?}", output(&out));
    let poll = poll_now(&world, &mut channel, &mut state).await;
    assert!(poll.unreadable.is_empty(), "reported once: {poll:?}");
    assert_eq!(
        poll.newest.map(|r| r.version.name().to_owned()),
        Some("v1.1.0".to_owned())
    );
}
