//! The git channel against real repositories: keys from `ssh-keygen`, tags from `git tag -s`
//! (gpg.format=ssh) and `git mktag`, fetched by the channel (with libgit2 on this host, with
//! `git` from real sshd and nginx servers), verified, and exported into the release cache;
//! `shoal verify git` checked against `git verify-tag`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod bench;
mod binding;
mod cli;
mod credentials;
mod export;
mod fixture;
mod mirror;
mod poll;
mod remote;
mod tags;
mod watch;
