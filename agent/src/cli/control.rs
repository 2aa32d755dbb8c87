//! `shoal halt GROUP [--reason TEXT]`, `shoal resume GROUP`, `shoal promote GROUP`: steer a
//! group's rollout through this host's agent (`POST /v1/groups/{group}/{action}` with the admin
//! token), which records the command and spreads it to the group over gossip.

use std::io;
use std::path::{Path, PathBuf};

use hyper::StatusCode;
use shoal_shared::status::{CommandAccepted, HaltRequest};

use super::client::{self, Agent, AgentArgs, ClientError};
use super::exit;
use crate::config::ConfigError;
use crate::report::http::Control;
use crate::report::token::read_token;

/// `shoal halt`.
#[derive(Debug, clap::Args)]
pub(super) struct HaltArgs {
    /// The group whose rollout stops (as in the agent's config).
    group: String,
    /// Why, shown in status and fleet views and kept with the halt.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// `shoal resume` and `shoal promote`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The group (as in the agent's config).
    group: String,
    #[command(flatten)]
    target: TargetArgs,
}

/// Which agent, and its admin token.
#[derive(Debug, clap::Args)]
struct TargetArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// The agent's admin token file (default: status.token_file from the config).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

pub(super) fn halt(args: HaltArgs) -> u8 {
    let body = HaltRequest {
        reason: args.reason,
    };
    run(Control::Halt, &args.group, Some(&body), &args.target)
}

pub(super) fn resume(args: Args) -> u8 {
    run(Control::Resume, &args.group, None, &args.target)
}

pub(super) fn promote(args: Args) -> u8 {
    run(Control::Promote, &args.group, None, &args.target)
}

fn run(action: Control, group: &str, body: Option<&HaltRequest>, target: &TargetArgs) -> u8 {
    if !is_group_name(group) {
        errln!(
            "error: `{group}` is not a group name: use letters, digits, `-`, `_` and `.`, as in \
             the agent's config"
        );
        return exit::USAGE;
    }
    let (agent, token_file) = match target
        .agent
        .agent_and_token_file(target.token_file.as_deref())
    {
        Ok(found) => found,
        Err(e) => {
            client::print_config_error(&e);
            if let ConfigError::Read { .. } = e {
                errln!("  and --token-file FILE (its status.token_file)");
            }
            return exit::USAGE;
        }
    };
    let token = match read_token(&token_file) {
        Ok(token) => token,
        Err(e) => {
            errln!("error: {}", token_error(&token_file, &e));
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
    let path = format!("/v1/groups/{group}/{}", action.as_str());
    let body = body.and_then(|b| serde_json::to_vec(b).ok());
    let answer = runtime.block_on(async {
        let bytes = agent.post(&path, &token, body).await?;
        agent.decode::<CommandAccepted>(&bytes)
    });
    match answer {
        Ok(accepted) => {
            outln!("{}", said(&accepted));
            exit::OK
        }
        Err(e) => fail(&agent, &token_file, &e),
    }
}

/// Group names are letters, digits, `-`, `_` and `.` (so they go into a path as they are).
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Why the token file cannot be used, in one sentence with the fix.
pub(super) fn token_error(path: &Path, error: &io::Error) -> String {
    let file = path.display();
    match (error.kind(), error.raw_os_error()) {
        (io::ErrorKind::NotFound, Some(_)) => format!(
            "the admin token file {file} does not exist: the agent makes it when it starts; is \
             it running, and is that file its status.token_file?"
        ),
        (io::ErrorKind::PermissionDenied, Some(_)) => format!(
            "cannot read the admin token file {file} (permission denied): run as root (sudo), \
             or as the user the agent runs as"
        ),
        (_, Some(_)) => format!("cannot read the admin token file {file}: {error}"),
        // The checks of the token file say what is wrong and how to fix it.
        (_, None) => error.to_string(),
    }
}

/// What happened, in one line.
fn said(accepted: &CommandAccepted) -> String {
    let (done, noun) = match accepted.action.as_str() {
        "halt" => ("halted", "halt"),
        "resume" => ("resumed", "resume"),
        "promote" => ("promoted", "promotion"),
        other => (other, other),
    };
    let spread = if accepted.gossip {
        format!("the {noun} spreads to the group through gossip")
    } else {
        "this agent has no mesh, so the group is this host alone".to_owned()
    };
    format!(
        "{done} {} (deployment {}) on this host; {spread}",
        accepted.group, accepted.deployment
    )
}

/// Prints why the command failed; 2 when the request or the setup was wrong, 1 otherwise
/// (the agent cannot be reached, or the rollout's state refuses the command).
fn fail(agent: &Agent, token_file: &Path, error: &ClientError) -> u8 {
    let ClientError::Agent { status, message } = error else {
        return client::fail(error);
    };
    match *status {
        StatusCode::UNAUTHORIZED => errln!(
            "error: the agent at {} refused the admin token read from {}: is that file its \
             status.token_file? (give --token-file FILE or --config FILE)",
            agent.addr(),
            token_file.display()
        ),
        StatusCode::CONFLICT => errln!("error: {message}"),
        _ => client::print_error(error),
    }
    match *status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND => exit::USAGE,
        _ => exit::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(action: &str, gossip: bool) -> CommandAccepted {
        CommandAccepted {
            group: "web".into(),
            action: action.into(),
            deployment: "d-0123456789ab".into(),
            gossip,
        }
    }

    #[test]
    fn one_line_says_what_happened_and_where_it_goes() {
        assert_eq!(
            said(&accepted("halt", true)),
            "halted web (deployment d-0123456789ab) on this host; the halt spreads to the group \
             through gossip"
        );
        assert_eq!(
            said(&accepted("promote", true)),
            "promoted web (deployment d-0123456789ab) on this host; the promotion spreads to \
             the group through gossip"
        );
        assert_eq!(
            said(&accepted("resume", false)),
            "resumed web (deployment d-0123456789ab) on this host; this agent has no mesh, so \
             the group is this host alone"
        );
    }

    #[test]
    fn group_names_are_checked_before_they_go_into_a_path() {
        for good in ["web", "web.eu-1", "api_2"] {
            assert!(is_group_name(good), "{good}");
        }
        for bad in ["", "web/halt", "web?x=1", "../x", "we b", "wéb"] {
            assert!(!is_group_name(bad), "{bad}");
        }
    }

    #[test]
    fn an_unreadable_token_file_names_the_file_and_the_fix() {
        let path = Path::new("/var/lib/shoal/admin.token");
        let denied = io::Error::from_raw_os_error(13);
        let message = token_error(path, &denied);
        assert!(
            message.starts_with("cannot read the admin token file /var/lib/shoal/admin.token"),
            "{message}"
        );
        assert!(message.contains("run as root"), "{message}");
        let missing = io::Error::from_raw_os_error(2);
        assert!(token_error(path, &missing).contains("does not exist"));
        let loose = io::Error::new(io::ErrorKind::PermissionDenied, "run `chmod 600 x`");
        assert_eq!(token_error(path, &loose), "run `chmod 600 x`");
    }
}
