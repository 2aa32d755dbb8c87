//! `shoal deploy`: a one-shot in-place deployment of a local bundle, printed as a table.

use std::path::PathBuf;
use std::time::Duration;

use shoal_shared::appspec::FileExistsBehavior;
use shoal_shared::appspec::lifecycle::RunOrder;

use super::exit;
use crate::bundle::{Limits, Owners};
use crate::execute::deployment::{self, Outcome, Request, Status};
use crate::execute::hooks;
use crate::execute::layout::Layout;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The bundle: a directory, or a .tar, .tar.gz/.tgz or .zip archive.
    #[arg(long)]
    bundle: PathBuf,
    /// The deployment root.
    #[arg(long, default_value = "/var/lib/shoal/deployment-root")]
    root: PathBuf,
    /// Install the AppSpec's `files` (and apply `permissions`) under this directory instead of `/`.
    #[arg(long)]
    files_root: Option<PathBuf>,
    /// Deployment group name.
    #[arg(long, default_value = "default")]
    group: String,
    /// Application name (default: the group).
    #[arg(long)]
    application: Option<String>,
    /// What to do with files that already exist (the AppSpec's own setting wins).
    #[arg(long, value_parser = parse_behavior)]
    file_exists_behavior: Option<FileExistsBehavior>,
    /// AppSpec file name in the bundle (default appspec.yml, then appspec.yaml).
    #[arg(long)]
    appspec: Option<String>,
    /// Name of the revision, given to scripts as SHOAL_REVISION (default: the bundle's file name).
    #[arg(long)]
    revision: Option<String>,
    /// Run these lifecycle events, in this order, instead of the AppSpec's (comma-separated,
    /// as codedeploy-local's option of the same name): DownloadBundle and Install run first
    /// when left out, and a name that is no lifecycle event runs the AppSpec's hooks of that
    /// name.
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<String>>,
    /// Go on when the previous revision's ApplicationStop (or block-traffic) scripts fail, as
    /// CodeDeploy's option of the same name: the way out when an old stop script is broken.
    #[arg(long)]
    ignore_application_stop_failures: bool,
    /// Seconds between SIGTERM and SIGKILL for a script that ran past its timeout.
    #[arg(long, default_value_t = 10)]
    kill_grace: u64,
    /// Deployment directories to keep per group, this one included (older ones are removed).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    max_revisions: u64,
    /// Largest unpacked bundle, in MiB.
    #[arg(long, default_value_t = 8192)]
    max_bundle_mib: u64,
}

fn parse_behavior(text: &str) -> Result<FileExistsBehavior, String> {
    FileExistsBehavior::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| format!("`{text}` is not one of DISALLOW, OVERWRITE, RETAIN"))
}

pub(super) fn run(args: Args) -> u8 {
    if !args.bundle.exists() {
        errln!(
            "error: --bundle {}: no such file or directory",
            args.bundle.display()
        );
        return exit::USAGE;
    }
    let events = match args.events.as_deref().map(RunOrder::from_list) {
        None => RunOrder::default(),
        Some(Ok(order)) => order,
        Some(Err(why)) => {
            errln!("error: {why}");
            return exit::USAGE;
        }
    };
    let revision = args.revision.unwrap_or_else(|| {
        args.bundle.file_name().map_or_else(
            || args.bundle.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let request = Request {
        bundle: std::path::absolute(&args.bundle).unwrap_or(args.bundle),
        layout: Layout::new(args.root).with_files_root(
            args.files_root
                .map(|root| std::path::absolute(&root).unwrap_or(root)),
        ),
        application: args.application.unwrap_or_else(|| args.group.clone()),
        group: args.group,
        revision,
        file_exists_behavior: args.file_exists_behavior,
        appspec_name: args.appspec,
        kill_grace: Duration::from_secs(args.kill_grace),
        output_grace: Duration::from_secs(2),
        limits: Limits {
            max_total_bytes: args.max_bundle_mib.saturating_mul(1024 * 1024),
            ..Limits::default()
        },
        extra_env: Vec::new(),
        runas_env: hooks::DEFAULT_RUNAS_ENV.map(str::to_owned).to_vec(),
        max_revisions: usize::try_from(args.max_revisions).unwrap_or(usize::MAX),
        events,
        owners: Owners::Recorded,
        ignore_application_stop_failures: args.ignore_application_stop_failures,
        deployment_id: None,
        reverts: None,
        observer: None,
        stop: None,
        protect: Vec::new(),
    };
    let runtime = match super::runtime(2) {
        Ok(runtime) => runtime,
        Err(message) => {
            errln!("error: {message}");
            return exit::FAILURE;
        }
    };
    match runtime.block_on(deployment::deploy(&request)) {
        Ok(outcome) => report(&outcome),
        Err(error) => {
            errln!("error: {error}");
            if error.is_usage() {
                exit::USAGE
            } else {
                exit::FAILURE
            }
        }
    }
}

fn report(outcome: &Outcome) -> u8 {
    let record = &outcome.record;
    for warning in &record.warnings {
        errln!("warning: {warning}");
    }
    outln!("{:<20} {:>7} {:>9}  RESULT", "EVENT", "SCRIPTS", "DURATION");
    for event in &record.events {
        let scripts = if event.scripts.is_empty() {
            "-".to_owned()
        } else {
            event.scripts.len().to_string()
        };
        let seconds = Duration::from_millis(event.duration_ms).as_secs_f64();
        outln!(
            "{:<20} {:>7} {:>8.2}s  {}",
            event.name,
            scripts,
            seconds,
            event.status.as_str()
        );
    }
    let total = record
        .finished_at_ms
        .unwrap_or(record.started_at_ms)
        .saturating_sub(record.started_at_ms);
    outln!(
        "deployment {} of {} to group {} {} in {:.2}s",
        record.deployment_id,
        record.revision,
        record.group,
        record.status.as_str(),
        Duration::from_millis(total).as_secs_f64()
    );
    outln!("log: {}", Layout::scripts_log(&outcome.dir).display());
    if record.status == Status::Succeeded {
        exit::OK
    } else {
        if let Some(error) = &record.error {
            errln!("error: {error}");
        }
        exit::FAILURE
    }
}
