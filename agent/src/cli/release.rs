//! `shoal release` (being written).

use super::exit;

/// Arguments of `shoal release`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> u8 {
    exit::FAILURE
}
