//! `shoal logs DEPLOYMENT`: the hook output of a deployment on this host, from the agent's
//! status endpoint; with `--follow`, new output as it comes until the deployment ends.
//!
//! Hook output may hold secrets, so the agent serves it to root on its control socket, or
//! with the admin token (unless `status.public_logs`). Run as root, the command asks over the
//! control socket and sends no token; the token goes over TCP only from `--token-file`, when
//! the caller chooses to send it to whatever holds the status address.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use hyper::StatusCode;
use hyper::header::HeaderMap;

use super::client::token_error;
use super::client::{self, Agent, AgentArgs, ClientError};
use super::exit;
use crate::report::deployments::{DeploymentsError, is_deployment_id};
use crate::report::http::{LOG_RESULT_HEADER, LOG_SIZE_HEADER};
use crate::report::token::read_token;

/// How often `--follow` asks for new output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// The result of a deployment that has not ended.
const IN_PROGRESS: &str = "in-progress";

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The deployment id, as `shoal status` shows it (e.g. d-0123456789ab).
    deployment: String,
    /// Keep printing new output until the deployment ends.
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    agent: AgentArgs,
    /// Send the admin token from FILE over TCP (root needs none: it asks over the control
    /// socket).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// The admin token to send, and the file it came from.
type Token = Option<(String, PathBuf)>;

pub(super) fn run(args: Args) -> u8 {
    if !is_deployment_id(&args.deployment) {
        let error = DeploymentsError::BadId {
            id: args.deployment,
        };
        errln!("error: {error}");
        return exit::USAGE;
    }
    let (agent, runtime) = match args.agent.connect() {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let token = match token(&args) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let bearer = token.as_ref().map(|(token, _)| token.as_str());
    // Hook output is shown with its control characters escaped, like everything else.
    let mut stdout = super::output::Printable::new(std::io::stdout().lock());
    let result = runtime
        .block_on(print(
            &agent,
            &args.deployment,
            bearer,
            args.follow,
            &mut stdout,
        ))
        .and_then(|()| stdout.flush().map_err(ClientError::Output));
    match result {
        Ok(()) => exit::OK,
        // A closed stdout (`| head`) ends the command, quietly.
        Err(ClientError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(ClientError::Agent { status, .. }) if status == StatusCode::UNAUTHORIZED => {
            errln!(
                "error: {}",
                refused(&agent, &args.deployment, token.as_ref())
            );
            exit::USAGE
        }
        Err(e) => client::fail(&e),
    }
}

/// The token of `--token-file`, which must be readable; none without it.
fn token(args: &Args) -> Result<Token, u8> {
    let Some(file) = &args.token_file else {
        return Ok(None);
    };
    match read_token(file) {
        Ok(token) => Ok(Some((token, file.clone()))),
        Err(e) => {
            errln!("error: {}", token_error(file, &e));
            Err(exit::USAGE)
        }
    }
}

/// Why the agent refused the log, in one sentence with the fix.
fn refused(agent: &Agent, id: &str, token: Option<&(String, PathBuf)>) -> String {
    match token {
        Some((_, file)) => format!(
            "the agent at {} refused the admin token read from {}: is that file its \
             status.token_file? (give --token-file FILE or --config FILE)",
            agent.addr(),
            file.display()
        ),
        None => format!(
            "the hook output of {id} may hold secrets, so the agent serves it to root (over its \
             control socket) or with its admin token: run `sudo shoal logs {id}`, give \
             --token-file FILE, or set status.public_logs: true in the agent's config"
        ),
    }
}

/// Prints the log of `id` to `out`; when `follow`ing, asks again every [`FOLLOW_INTERVAL`]
/// from where the last answer ended until the agent says the deployment is over.
async fn print(
    agent: &Agent,
    id: &str,
    token: Option<&str>,
    follow: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut offset = 0;
    loop {
        let path = format!("/v1/deployments/{id}/log?offset={offset}");
        let (headers, written) = agent.get_into(&path, token, out).await?;
        offset += written;
        let size = header_number(&headers, LOG_SIZE_HEADER).unwrap_or(offset);
        let result = headers
            .get(LOG_RESULT_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(IN_PROGRESS)
            .to_owned();
        if offset < size {
            if written == 0 {
                return Err(ClientError::Unexpected {
                    addr: agent.addr(),
                    what: format!("the log holds {size} bytes but none came from byte {offset}"),
                });
            }
            // The agent sent less than the log held: ask again from there at once.
            continue;
        }
        if !follow {
            if size == 0 {
                errln!("deployment {id} has no hook output (yet)");
            }
            return Ok(());
        }
        if result != IN_PROGRESS {
            errln!("deployment {id} ended: {result}");
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}
