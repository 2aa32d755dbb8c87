//! `shoal agent`: read the config, hold the data directory (one agent per data directory), set
//! up logging from the config, and run the agent until SIGTERM.

use std::path::PathBuf;

use super::{LogFormat, exit, init_logging};
use crate::config::{self, Channel};
use crate::lock::{DataDirLock, LockError};
use crate::logging::error_text;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The agent's config file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check the config file (and the files it names) and exit: 0 when it is good, 2 (with the
    /// reason) when not.
    #[arg(long)]
    check_config: bool,
}

pub(super) fn run(args: Args) -> u8 {
    if !args.check_config {
        crate::heap::restart_tuned();
    }
    let loaded = config::load(&args.config)
        .and_then(|settings| config::check_credential_files(&settings).map(|()| settings));
    let settings = match loaded {
        Ok(settings) => settings,
        Err(e) => {
            errln!("{}", error_text(&format!("error: {e}")));
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
    // Before anything under the data directory is read or written; held until the process
    // ends. `--check-config` takes no lock, so it can check a file while the agent runs.
    let _held = match DataDirLock::acquire(&settings.node.data_dir) {
        Ok(held) => held,
        Err(e) => {
            errln!("{}", error_text(&format!("error: {e}")));
            return match e {
                LockError::Held { .. } => exit::USAGE,
                LockError::DataDir { .. } | LockError::File { .. } => exit::FAILURE,
            };
        }
    };
    let format = match settings.log.format {
        config::LogFormat::Pretty => LogFormat::Pretty,
        config::LogFormat::Json => LogFormat::Json,
    };
    init_logging(format, &settings.log.level);
    crate::heap::tune();
    let runtime = match super::runtime(2) {
        Ok(runtime) => runtime,
        Err(message) => {
            errln!("{}", error_text(&format!("error: {message}")));
            return exit::FAILURE;
        }
    };
    match runtime.block_on(crate::runtime::agent::run(settings)) {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!(error = %e, "agent stopped");
            let chain = super::error_chain(&e);
            errln!("{}", error_text(&format!("error: {chain}")));
            exit::FAILURE
        }
    }
}
