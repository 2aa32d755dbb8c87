//! `shoal verify`: check a tag or a store release against an `allowed_signers` file and say
//! who signed what (exit 0), or why it is refused (exit 1). Bad usage exits 2.

mod git;
mod store;

use clap::Subcommand;

/// What to verify.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A signed git tag, as `git verify-tag` checks it.
    Git(git::Args),
    /// A release in an object store (`release.yaml`, its signature and its bundle).
    Store(store::Args),
}

/// Runs `shoal verify …` and returns the exit code.
pub fn run(command: Command) -> u8 {
    match command {
        Command::Git(args) => git::run(args),
        Command::Store(args) => store::run(args),
    }
}
