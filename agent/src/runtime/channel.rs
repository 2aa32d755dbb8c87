//! A group's channel as the group task sees it: git or store behind one face, with failures
//! reduced to a stable kind, one line of text, and the refusal when a release was refused.

use std::path::{Path, PathBuf};

use shoal_shared::release::AllowedSigners;

use crate::channel::cache::ReleaseCache;
use crate::channel::git::{GitChannel, GitError};
use crate::channel::store::{StoreChannel, StoreError};
use crate::channel::{Poll, Release};
use crate::config::{Channel, Group};
use crate::verify::Refusal;
use crate::verify::state::ChannelState;

/// One group's channel.
pub(super) enum GroupChannel {
    Git(Box<GitChannel>),
    Store(Box<StoreChannel>),
}

/// Why a channel step failed.
#[derive(Debug)]
pub(super) struct ChannelFailure {
    /// Stable name (metric label, status).
    pub(super) kind: &'static str,
    /// The error and its causes on one line.
    pub(super) message: String,
    /// Set when the release itself was refused (its bundle, say), not the channel unreachable.
    pub(super) refusal: Option<Box<Refusal>>,
}

impl From<GitError> for ChannelFailure {
    fn from(error: GitError) -> Self {
        let kind = error.kind();
        let message = one_line(&error);
        let refusal = match error {
            GitError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        };
        Self {
            kind,
            message,
            refusal,
        }
    }
}

impl From<StoreError> for ChannelFailure {
    fn from(error: StoreError) -> Self {
        let kind = error.kind();
        let message = one_line(&error);
        let refusal = match error {
            StoreError::Refused { refusal, .. } => Some(Box::new(refusal)),
            _ => None,
        };
        Self {
            kind,
            message,
            refusal,
        }
    }
}

impl GroupChannel {
    /// Opens the channel of `group` (nothing is fetched yet).
    pub(super) fn open(group: &Group, data_dir: &Path) -> Result<Self, ChannelFailure> {
        Ok(match &group.channel {
            Channel::Git(source) => Self::Git(Box::new(GitChannel::open(
                source.clone(),
                data_dir,
                &group.name,
                &group.application,
            )?)),
            Channel::Store(source) => {
                let env: Vec<(String, String)> = std::env::vars().collect();
                Self::Store(Box::new(StoreChannel::open(
                    source,
                    &env,
                    data_dir,
                    &group.name,
                    &group.application,
                )?))
            }
        })
    }

    /// Looks at the channel once. Git work is blocking, so it leaves the async workers.
    pub(super) async fn poll(
        &mut self,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Poll, ChannelFailure> {
        match self {
            Self::Git(channel) => tokio::task::block_in_place(|| channel.poll(signers, state, now))
                .map_err(Into::into),
            Self::Store(channel) => channel.poll(signers, state, now).await.map_err(Into::into),
        }
    }

    /// The directory of the release's files in the cache.
    pub(super) async fn materialize(
        &mut self,
        release: &Release,
        cache: &ReleaseCache,
    ) -> Result<PathBuf, ChannelFailure> {
        match self {
            Self::Git(channel) => {
                tokio::task::block_in_place(|| channel.materialize(release, cache))
                    .map_err(Into::into)
            }
            Self::Store(channel) => channel
                .materialize(release, cache)
                .await
                .map_err(Into::into),
        }
    }

    /// The release `name` whatever the floor, verified now (kept verdicts kept), for an
    /// operator's rollback order or the release at the floor a restarted agent verified but
    /// did not deploy; `None` when the channel has no such release or it does not verify.
    pub(super) async fn named_release(
        &mut self,
        name: &str,
        signers: &AllowedSigners,
        state: &mut ChannelState,
        now: i64,
    ) -> Result<Option<Release>, ChannelFailure> {
        match self {
            Self::Git(channel) => {
                tokio::task::block_in_place(|| channel.verified_release(name, signers, state, now))
                    .map_err(Into::into)
            }
            Self::Store(channel) => channel
                .named_release(name, signers, state, now)
                .await
                .map_err(Into::into),
        }
    }

    /// Paths to watch for changes (local channels), or `None` (remote: polled).
    pub(super) fn watch_paths(&self) -> Option<Vec<PathBuf>> {
        match self {
            Self::Git(channel) => channel.watch_paths(),
            Self::Store(channel) => channel.watch_paths(),
        }
    }
}

/// An error and its causes as one line: `a: b: c`.
pub(super) fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
