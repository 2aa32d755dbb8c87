//! `shoal verify git` (being written).

use super::super::exit;

/// Arguments of `shoal verify git`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> u8 {
    exit::FAILURE
}
