//! `shoal appspec check FILE`: validate an AppSpec with the same errors a deployment gives.

use std::path::PathBuf;

use clap::Subcommand;
use shoal_shared::appspec;
use shoal_shared::appspec::lifecycle::RunOrder;

use super::exit;

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Validate an AppSpec: prints `ok` and any warnings (exit 0), or the error (exit 2), the
    /// same one a deployment of it would stop with.
    Check {
        /// The appspec.yml to check.
        file: PathBuf,
        /// Check it for a deployment that runs these events (`shoal deploy --events`): hooks
        /// for the custom events named are accepted.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
    },
}

pub(super) fn run(command: Command) -> u8 {
    let Command::Check { file, events } = command;
    let shown = file.display();
    let order = match events.as_deref().map(RunOrder::from_list) {
        None => RunOrder::default(),
        Some(Ok(order)) => order,
        Some(Err(why)) => {
            errln!("error: {why}");
            return exit::USAGE;
        }
    };
    let source = match std::fs::read(&file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            errln!("error: cannot read {shown}: {e}");
            return exit::USAGE;
        }
    };
    match appspec::parse(&source) {
        Ok(parsed) => {
            // What a deployment refuses, the check refuses, in the same words.
            if let Some(error) = appspec::lifecycle::refused_hooks(&parsed.spec, &order) {
                errln!("error: {shown}: {error}");
                return exit::USAGE;
            }
            for warning in parsed.warnings.iter().filter(|w| !order.expects(&w.key)) {
                errln!("warning: {shown}: {warning}");
            }
            outln!("ok");
            exit::OK
        }
        Err(error) => {
            errln!("error: {shown}: {error}");
            exit::USAGE
        }
    }
}
