//! `shoal halt GROUP [--reason TEXT]`, `shoal resume GROUP`, `shoal promote GROUP`, `shoal
//! forget GROUP NODE`, `shoal leave [GROUP…]`: steer a group through this host's agent (`POST /v1/groups/{group}/{action}`), which
//! records the command and spreads it to the group over gossip.
//!
//! The call goes over the agent's control socket (`<data_dir>/control.sock`), which only root
//! can reach and whose peer the agent asks the kernel about, so no secret crosses it: a local
//! user who holds the status port while the agent is down (a restart, an upgrade) gets nothing.
//! The token-guarded HTTP calls stay for automation that chooses to send the token.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use shoal_shared::status::{CommandAccepted, ForgetRequest, HaltRequest};
use tokio::net::UnixStream;

use super::exit;
use crate::config;
use crate::report::http::{Control, control_socket};

/// How long connecting, and then the whole exchange, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

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

/// `shoal forget`.
#[derive(Debug, clap::Args)]
pub(super) struct ForgetArgs {
    /// The group (as in the agent's config).
    group: String,
    /// The node id of the member to drop: a host gone for good that did not run `shoal leave`.
    node: String,
    #[command(flatten)]
    target: TargetArgs,
}

/// `shoal leave`.
#[derive(Debug, clap::Args)]
pub(super) struct LeaveArgs {
    /// The groups this host leaves (as in the agent's config); every group when none is named.
    groups: Vec<String>,
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

/// Which agent.
#[derive(Debug, clap::Args)]
pub(super) struct TargetArgs {
    /// The agent's config file, read for node.data_dir (where its control socket is).
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

impl TargetArgs {
    /// The agent's control socket, from its config; `Err` (after saying why) with the exit
    /// code when the config does not load.
    pub(super) fn socket(&self) -> Result<PathBuf, u8> {
        match config::load(&self.config) {
            Ok(settings) => Ok(control_socket(&settings.node.data_dir)),
            Err(e) => {
                super::client::print_config_error(&e);
                Err(exit::USAGE)
            }
        }
    }
}

pub(super) fn halt(args: HaltArgs) -> u8 {
    let body = HaltRequest {
        reason: args.reason,
    };
    run(Control::Halt, &args.group, Some(&body), &args.target)
}

pub(super) fn resume(args: Args) -> u8 {
    run::<()>(Control::Resume, &args.group, None, &args.target)
}

pub(super) fn promote(args: Args) -> u8 {
    run::<()>(Control::Promote, &args.group, None, &args.target)
}

pub(super) fn forget(args: ForgetArgs) -> u8 {
    let body = ForgetRequest { node: args.node };
    run(Control::Forget, &args.group, Some(&body), &args.target)
}

pub(super) fn leave(args: LeaveArgs) -> u8 {
    let groups = if args.groups.is_empty() {
        match config::load(&args.target.config) {
            Ok(settings) => settings.groups.into_iter().map(|g| g.name).collect(),
            Err(e) => {
                super::client::print_config_error(&e);
                return exit::USAGE;
            }
        }
    } else {
        args.groups
    };
    let mut code = exit::OK;
    for group in &groups {
        code = code.max(run::<()>(Control::Leave, group, None, &args.target));
    }
    if code == exit::OK {
        outln!(
            "once `shoal fleet` on another host no longer counts this one, stop the agent (`systemctl disable --now shoal`)"
        );
    }
    code
}

fn run<B: serde::Serialize>(
    action: Control,
    group: &str,
    body: Option<&B>,
    target: &TargetArgs,
) -> u8 {
    let channel = match Steering::open(group, action, target) {
        Ok(channel) => channel,
        Err(code) => return code,
    };
    match channel.post::<CommandAccepted>(body) {
        Ok(accepted) => {
            outln!("{}", said(&accepted));
            exit::OK
        }
        Err((code, message)) => {
            errln!("error: {message}");
            code
        }
    }
}

/// One steering call's way to the agent: its control socket, the path of `action` on the
/// group, and a runtime to wait on the answer.
pub(super) struct Steering {
    socket: PathBuf,
    path: String,
    runtime: tokio::runtime::Runtime,
}

impl Steering {
    /// The way to `action` on `group` through the agent `target` names; `Err` (after saying
    /// why) with the exit code when the group name or the config is bad.
    pub(super) fn open(group: &str, action: Control, target: &TargetArgs) -> Result<Self, u8> {
        check_group_name(group)?;
        let socket = target.socket()?;
        let runtime = super::runtime(0).map_err(|message| {
            errln!("error: {message}");
            exit::FAILURE
        })?;
        Ok(Self {
            socket,
            path: format!("/v1/groups/{group}/{}", action.as_str()),
            runtime,
        })
    }

    /// Posts `body` (JSON) and reads the agent's answer; the exit code and one sentence when
    /// it does not come or says no.
    pub(super) fn post<T: serde::de::DeserializeOwned>(
        &self,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T, (u8, String)> {
        let body = body.and_then(|b| serde_json::to_vec(b).ok());
        self.runtime
            .block_on(steer::<T>(&self.socket, &self.path, body))
    }
}

/// Who runs the command, as the agent records it: the user who ran `sudo` (`$SUDO_USER`),
/// else the name of this process's user.
fn operator() -> Option<String> {
    std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let uid = nix::unistd::geteuid();
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
        })
}

/// `POST path` with `body` on the control socket; the agent's answer, or the exit code and
/// one sentence.
async fn steer<T: serde::de::DeserializeOwned>(
    socket: &Path,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<T, (u8, String)> {
    let shown = socket.display();
    let stream = match tokio::time::timeout(TIMEOUT, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(connect_error(socket, &e)),
        Err(_) => {
            return Err((
                exit::FAILURE,
                format!(
                    "the agent's control socket {shown} did not accept within 10 s: is the agent stuck? (`journalctl -u shoal`)"
                ),
            ));
        }
    };
    let mut request = crate::net::request(Method::POST, "localhost", path, None, body)
        .map_err(|e| (exit::FAILURE, e.to_string()))?;
    if let Some(user) = operator().and_then(|u| HeaderValue::from_str(&u).ok()) {
        request
            .headers_mut()
            .insert(crate::report::http::OPERATOR_HEADER, user);
    }
    let exchange = async {
        let response = crate::net::send_on(stream, request).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(crate::net::GetError::Http)?
            .to_bytes();
        Ok::<_, crate::net::GetError>((status, bytes))
    };
    let (status, bytes) = match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            return Err((
                exit::FAILURE,
                format!("the exchange with the agent on {shown} failed: {e}"),
            ));
        }
        Err(_) => {
            return Err((
                exit::FAILURE,
                format!(
                    "the agent on {shown} did not answer within 10 s: is it stuck? (`journalctl -u shoal`)"
                ),
            ));
        }
    };
    if !status.is_success() {
        let message = super::client::agent_error(status, &bytes, path);
        let code = match status {
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => exit::USAGE,
            _ => exit::FAILURE,
        };
        return Err((code, message));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        (
            exit::FAILURE,
            format!("unexpected answer from the agent on {shown}: {e}"),
        )
    })
}

/// Why the control socket could not be reached, in one sentence with what to do.
fn connect_error(socket: &Path, error: &io::Error) -> (u8, String) {
    let shown = socket.display();
    match error.kind() {
        io::ErrorKind::NotFound => (
            exit::FAILURE,
            format!(
                "no shoal agent runs with this config (no control socket {shown}): is `shoal \
                 agent` running, and with this --config?"
            ),
        ),
        io::ErrorKind::ConnectionRefused => (
            exit::FAILURE,
            format!(
                "no shoal agent answers on {shown} (connection refused): is `shoal agent` running?"
            ),
        ),
        io::ErrorKind::PermissionDenied => (
            exit::USAGE,
            format!(
                "steering needs root: the agent's control socket {shown} is root's alone (run \
                 it with sudo)"
            ),
        ),
        _ => (
            exit::FAILURE,
            format!("cannot reach the agent on {shown}: {error}"),
        ),
    }
}

/// Group names are letters, digits, `-`, `_` and `.` (so they go into a path as they are).
/// `Err(2)`, after saying so, when `group` cannot be a group name.
pub(super) fn check_group_name(group: &str) -> Result<(), u8> {
    if is_group_name(group) {
        return Ok(());
    }
    errln!(
        "error: `{group}` is not a group name: use letters, digits, `-`, `_` and `.`, as in \
         the agent's config"
    );
    Err(exit::USAGE)
}

fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What happened, in one line.
fn said(accepted: &CommandAccepted) -> String {
    let (done, noun) = match accepted.action.as_str() {
        "halt" => ("halted", "halt"),
        "resume" => ("resumed", "resume"),
        "promote" => ("promoted", "promotion"),
        "forget" => ("forgot a member of", "forget"),
        "leave" => ("leaving", "leave"),
        other => (other, other),
    };
    let spread = if accepted.gossip {
        format!("the {noun} spreads to the group through gossip")
    } else {
        "this agent has no mesh, so the group is this host alone".to_owned()
    };
    let deployment = if accepted.deployment.is_empty() {
        String::new()
    } else {
        format!(" (deployment {})", accepted.deployment)
    };
    format!(
        "{done} {}{deployment} on this host; {spread}",
        accepted.group
    )
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
    fn an_unreachable_socket_says_why_and_what_to_do() {
        let socket = Path::new("/var/lib/shoal/control.sock");
        let (code, message) = connect_error(socket, &io::Error::from_raw_os_error(13));
        assert_eq!(code, exit::USAGE);
        assert!(message.starts_with("steering needs root"), "{message}");
        let (code, message) = connect_error(socket, &io::Error::from_raw_os_error(2));
        assert_eq!(code, exit::FAILURE);
        assert!(
            message.contains("no control socket /var/lib/shoal/control.sock"),
            "{message}"
        );
    }
}
