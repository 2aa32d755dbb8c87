//! The command line: one file per subcommand; each returns the process exit code.

#[macro_use]
pub(crate) mod output;
mod agent;
mod appspec;
mod client;
mod completions;
mod control;
mod demo;
mod deploy;
mod fleet;
mod hello_server;
mod history;
mod keygen;
mod logs;
mod man;
mod release;
mod rollback;
mod sign;
mod status;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes every command uses.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure (a deployment that failed, an I/O error).
    pub const FAILURE: u8 = 1;
    /// Bad usage or configuration (including an invalid AppSpec).
    pub const USAGE: u8 = 2;
}

/// shoal: deploy CodeDeploy AppSpec bundles on this host, with no central server.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Pretty,
    /// One JSON object a line, for journald and log shippers.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent: watch each group's channel and deploy new signed releases.
    Agent(agent::Args),
    /// Deploy a bundle on this host now (like codedeploy-local): no channel, no gossip.
    Deploy(deploy::Args),
    /// Work with AppSpec files.
    #[command(subcommand)]
    Appspec(appspec::Command),
    /// Package, sign and publish a release to a store channel.
    Release(release::Args),
    /// Check a signed tag or store release against an allowed_signers file.
    #[command(subcommand)]
    Verify(verify::Command),
    /// This host's groups: revisions, phase, last deployment and its events (from the agent).
    Status(status::Args),
    /// Every node of the mesh and each group's rollout, as this host's agent sees it.
    Fleet(fleet::Args),
    /// The hook output of a deployment on this host (from the agent).
    Logs(logs::Args),
    /// Each group's recent releases: when, the result, how long, who signed them and who
    /// halted, resumed or promoted them (from the agent).
    History(history::Args),
    /// Halt a group's rollout: no host starts it any more, and hosts that moved go back.
    Halt(control::HaltArgs),
    /// Lift the halt of a group's rollout: it goes on where it stopped.
    Resume(control::Args),
    /// Let a canary rollout go on past its canaries (when the policy does not auto-promote).
    Promote(control::Args),
    /// Roll a group back to a release it ran before, as a rollout under its policy; the order
    /// is signed with an operator's key from the group's allowed_signers.
    Rollback(rollback::Args),
    /// Drop a member gone for good from a group: it no longer counts in the quorum, on any host.
    Forget(control::ForgetArgs),
    /// Take this host out of its groups for good (decommissioning); then stop the agent with
    /// systemctl.
    Leave(control::LeaveArgs),
    /// The showcase: five agents on this machine, a signed git channel, a canary that passes
    /// and one that fails, halts the rollout everywhere and goes back. Needs git and ssh-keygen.
    Demo(demo::Args),
    /// Make a new gossip key (the cluster key of a mesh), to stdout or a new 0600 file.
    Keygen(keygen::Args),
    /// The static HTTP server of examples/hello-app.
    #[command(hide = true)]
    HelloServer(hello_server::Args),
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the man page shoal(1), in roff, to stdout.
    #[command(hide = true)]
    Man(man::Args),
}

impl Cli {
    /// Whether the command sets up logging itself (the agent, from its config file).
    pub fn logs_from_config(&self) -> bool {
        matches!(self.command, Command::Agent(_))
    }

    /// Runs the chosen command.
    pub fn run(self) -> ExitCode {
        let code = match self.command {
            Command::Agent(args) => agent::run(args),
            Command::Deploy(args) => deploy::run(args),
            Command::Appspec(command) => appspec::run(command),
            Command::Release(args) => release::run(args),
            Command::Verify(command) => verify::run(command),
            Command::Status(args) => status::run(args),
            Command::Fleet(args) => fleet::run(args),
            Command::Logs(args) => logs::run(args),
            Command::History(args) => history::run(args),
            Command::Halt(args) => control::halt(args),
            Command::Resume(args) => control::resume(args),
            Command::Promote(args) => control::promote(args),
            Command::Rollback(args) => rollback::run(args),
            Command::Forget(args) => control::forget(args),
            Command::Leave(args) => control::leave(args),
            Command::Demo(args) => demo::run(args),
            Command::Keygen(args) => keygen::run(args),
            Command::HelloServer(args) => hello_server::run(args),
            Command::Completions(args) => completions::run(args),
            Command::Man(args) => man::run(args),
        };
        ExitCode::from(code)
    }
}

/// Sends log lines to stderr in `format` (see [`crate::logging`]: colour only on a terminal,
/// syslog priorities when stderr is the journal); `RUST_LOG`, when set, overrides `filter`.
pub fn init_logging(format: LogFormat, filter: &str) {
    let format = match format {
        LogFormat::Pretty => crate::logging::Format::Pretty,
        LogFormat::Json => crate::logging::Format::Json,
    };
    crate::logging::init(format, filter);
}

/// The async runtime could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the async runtime: {0}")]
pub(crate) struct RuntimeError(std::io::Error);

/// The async runtime a command runs on: `workers` threads, or the calling thread alone for 0.
pub(crate) fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, RuntimeError> {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build().map_err(RuntimeError)
}

/// An error and its causes, one per line (`  caused by: …`).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
