//! The store channel against real stores: releases published with the real `shoal release`
//! (or, for the in-memory store, the same library steps), signed with real `ssh-keygen` keys and
//! signatures, polled, verified and unpacked into the release cache. One suite runs over a
//! `file://` directory, a real S3 (moto_server) and object_store's in-memory store.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

/// Declares each case (an `async fn(Backend)` in the same module) once per store, as the
/// tests `<case>::file`, `<case>::s3` and `<case>::memory`; with `cli:`, only for the stores
/// the `shoal` binary can reach (file and s3).
macro_rules! over_stores {
    (cli: $($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn file() {
                    super::$case(crate::backend::Backend::file()).await;
                }
                #[tokio::test]
                async fn s3() {
                    super::$case(crate::backend::Backend::s3()).await;
                }
            }
        )*
    };
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn file() {
                    super::$case(crate::backend::Backend::file()).await;
                }
                #[tokio::test]
                async fn s3() {
                    super::$case(crate::backend::Backend::s3()).await;
                }
                #[tokio::test]
                async fn memory() {
                    super::$case(crate::backend::Backend::memory()).await;
                }
            }
        )*
    };
}

mod backend;
mod bench;
mod binding;
mod bundles;
mod cache;
mod commands;
mod fixture;
mod odd_names;
mod polling;
mod restart;
mod validity;
mod watching;
mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

/// One poll of `channel` now, trusting the world's allowed_signers; the poll must not fail.
pub async fn poll_now(
    world: &fixture::World,
    channel: &mut shoal_agent::channel::store::StoreChannel,
    state: &mut shoal_agent::verify::state::ChannelState,
) -> shoal_agent::channel::Poll {
    channel
        .poll(&world.signers, state, now())
        .await
        .expect("the poll itself succeeds")
}

/// Now, in seconds since the Unix epoch (what the daemon passes to `poll`).
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}
