//! `shoal agent`: read the config, set up logging from it, and run the agent until SIGTERM.

use std::path::PathBuf;

use super::{LogFormat, exit, init_logging};
use crate::config::{self, Channel};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The agent's config file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check the config file and exit: 0 when it is good, 2 (with the reason) when not.
    #[arg(long)]
    check_config: bool,
}

pub(super) fn run(args: Args) -> u8 {
    let settings = match config::load(&args.config) {
        Ok(settings) => settings,
        Err(e) => {
            errln!("error: {e}");
            return exit::USAGE;
        }
    };
    if args.check_config {
        outln!("{}: ok", args.config.display());
        outln!(
            "  node {} · data {} · status http://{}",
            settings.node.id,
            settings.node.data_dir.display(),
            settings.status.listen
        );
        for group in &settings.groups {
            let (kind, poll) = match &group.channel {
                Channel::Git(s) => ("git", s.poll),
                Channel::Store(s) => ("store", s.poll),
            };
            outln!(
                "  group {} ({}): {} channel, polled every {}; strategy {}",
                group.name,
                group.application,
                kind,
                shoal_shared::duration::format_duration(poll),
                group.rollout.strategy.as_str()
            );
        }
        return exit::OK;
    }
    let format = match settings.log.format {
        config::LogFormat::Pretty => LogFormat::Pretty,
        config::LogFormat::Json => LogFormat::Json,
    };
    init_logging(format, &settings.log.level);
    crate::heap::tune();
    let runtime = match super::runtime(2) {
        Ok(runtime) => runtime,
        Err(message) => {
            errln!("error: {message}");
            return exit::FAILURE;
        }
    };
    match runtime.block_on(crate::runtime::agent::run(settings)) {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!(error = %e, "agent stopped");
            errln!("error: {}", super::error_chain(&e));
            exit::FAILURE
        }
    }
}
