//! The `shoal` command: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use shoal_agent::cli::{Cli, init_logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.logs_from_config() {
        let level = match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        init_logging(cli.log_format, level);
    }
    cli.run()
}
