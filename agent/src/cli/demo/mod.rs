//! `shoal demo`: the whole product on one machine in under a minute. Five agents on 127.0.0.1
//! gossip as one mesh and watch one git repository of `examples/hello-app` with SSH-signed
//! tags: v1.0.0 (every host installs it), v2.0.0 (a canary first, then the rest two at a time),
//! and v3.0.0, whose ValidateService fails on the canary: the rollout halts on every host and
//! the canary goes back to v2.0.0. Each expectation is checked against what the agents report
//! and record; the exit code is 0 only when all of them held.

mod hosts;
mod story;
mod watch;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tokio::time::Instant;

use super::exit;
use story::Story;
use watch::Watch;

/// How many agents make the mesh.
const HOSTS: usize = 5;

/// Why the demo stopped short, in one sentence for the end of its output.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step of setting up (a file, a process, a port) failed: what it was, and why.
    #[error("{doing}: {cause}")]
    Setup {
        /// What was being done, e.g. `cannot create /tmp/x/keys`.
        doing: String,
        /// Why it failed.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A tool the demo runs (git, ssh-keygen) failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// `--dir` names a directory that has something in it.
    #[error("--dir {}: the directory is not empty; give a new or empty one", dir.display())]
    DirNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// What the demo waited for or checked did not happen, as the check says it.
    #[error("{0}")]
    Unmet(String),
    /// Ctrl-C.
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
}

/// For `map_err`: a setup step, `doing` (e.g. `cannot create /tmp/x`), failed with its cause.
fn failed<E>(doing: impl Into<String>) -> impl FnOnce(E) -> DemoError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let doing = doing.into();
    move |cause| DemoError::Setup {
        doing,
        cause: cause.into(),
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Leave the agents running at the end, and print how to explore them.
    #[arg(long)]
    keep: bool,
    /// Make the workspace in this new (or empty) directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> u8 {
    let missing = workspace::missing_tools();
    if !missing.is_empty() {
        errln!(
            "error: shoal demo runs the real tools, and {} is not on PATH; install git and openssh-client (ssh-keygen)",
            missing.join(" and ")
        );
        return exit::FAILURE;
    }
    let root = match make_root(args.dir.as_deref()) {
        Ok(root) => root,
        Err(message) => {
            errln!("error: {message}");
            return exit::USAGE;
        }
    };
    let runtime = match super::runtime(0) {
        Ok(runtime) => runtime,
        Err(message) => {
            errln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let started = Instant::now();
    let mut story = Story::new(Watch::new(started));
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = story.tell(&root) => outcome,
            _ = tokio::signal::ctrl_c() => Err(DemoError::Interrupted),
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            story.summary(elapsed);
            if args.keep {
                story.keep(&root);
            } else {
                runtime.block_on(story.stop());
                let _ = std::fs::remove_dir_all(&root);
            }
            exit::OK
        }
        Err(why) => {
            runtime.block_on(story.stop());
            outln!();
            outln!("The demo did not go as expected: {why}");
            outln!(
                "Everything it made is kept in {} (each host's agent.yaml and agent.log are under hosts/).",
                root.display()
            );
            exit::FAILURE
        }
    }
}

/// The workspace's directory: `dir` (new or empty), or a new temporary one.
fn make_root(dir: Option<&Path>) -> Result<PathBuf, DemoError> {
    let Some(dir) = dir else {
        return tempfile::Builder::new()
            .prefix("shoal-demo-")
            .tempdir()
            .map(tempfile::TempDir::keep)
            .map_err(failed("cannot make a temporary directory"));
    };
    let given = || format!("--dir {}", dir.display());
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(failed(given())(e)),
    };
    if !empty {
        return Err(DemoError::DirNotEmpty {
            dir: dir.to_owned(),
        });
    }
    std::fs::create_dir_all(dir).map_err(failed(given()))?;
    std::path::absolute(dir).map_err(failed(given()))
}

/// Where the demo's agents find `shoal` (for the hello-app's `shoal hello-server`): a `bin/`
/// in the workspace with a link to this very binary.
fn bin_dir(root: &Path) -> Result<PathBuf, DemoError> {
    let exe = std::env::current_exe().map_err(failed("cannot find this program"))?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).map_err(failed(format!("cannot create {}", bin.display())))?;
    std::os::unix::fs::symlink(&exe, bin.join("shoal")).map_err(failed(format!(
        "cannot link {} into {}",
        exe.display(),
        bin.display()
    )))?;
    Ok(bin)
}
