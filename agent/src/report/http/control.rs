//! `POST /v1/groups/{group}/{halt|resume|promote|forget|leave|rollback}`: an operator steers a
//! group's rollout from
//! this host. Root over the control socket gets through (the kernel vouched for it); over TCP
//! only a loopback peer with the admin token does (403, 401); an unknown
//! group is a 404, a command the planner refuses a 409 with its reason, and an accepted one a
//! 202 once it is recorded in the group's journal (the group task then publishes it).

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::sync::Arc;

use shoal_shared::rollout::Command;
use shoal_shared::status::{CommandAccepted, ForgetRequest, HaltRequest, RollbackRequest};
use tracing::{info, warn};

use super::Control;
use super::auth::{Credential, is_local};
use super::peer::Peer;
use super::reply::{Asked, Body, error, json};
use super::state::ServerState;
use super::steer::{Steer, SteerError};

/// The reason of a halt sent without one.
const NO_REASON: &str = "no reason given";

/// The answer to `action` on `group`.
pub(super) async fn answer(
    state: &ServerState,
    group: &str,
    action: Control,
    asked: &Asked<'_>,
) -> Response<Body> {
    if let Some(refused) = refusal(state, action, asked) {
        return refused;
    }
    let Some(steered) = state.groups.get(group) else {
        return error(StatusCode::NOT_FOUND, &unknown_group(state, group));
    };
    let by = operator(asked, &state.node);
    if action == Control::Rollback {
        return rollback(state, group, steered, asked, by).await;
    }
    let command = match command(action, &asked.body, by.clone()) {
        Ok(command) => command,
        Err(refused) => return error(StatusCode::BAD_REQUEST, &refused.to_string()),
    };
    let deployment = match apply(steered, command).await {
        Ok(deployment) => deployment,
        Err(refused) => return refused,
    };
    info!(
        group,
        action = action.as_str(),
        deployment.id = %deployment,
        client.addr = %asked.peer,
        operator = %by,
        "operator command recorded"
    );
    json(
        StatusCode::ACCEPTED,
        &CommandAccepted {
            group: group.to_owned(),
            action: action.as_str().to_owned(),
            deployment,
            gossip: state.mesh.is_some(),
        },
    )
}

/// `shoal rollback`: a body without an order asks for the order to sign (200); one with a
/// signed order gives it (202), once checked against the group's `allowed_signers`.
async fn rollback(
    state: &ServerState,
    group: &str,
    steered: Arc<dyn Steer>,
    asked: &Asked<'_>,
    by: String,
) -> Response<Body> {
    let request: RollbackRequest = if asked.body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        match serde_json::from_slice(&asked.body) {
            Ok(request) => request,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the body of a rollback is JSON like {{\"to\": \"v1.0.0\"}}, or \
                         {{\"order\": \"...\", \"signature\": \"...\"}} to give a signed order: {e}"
                    ),
                );
            }
        }
    };
    let operator = by.clone();
    let answered = tokio::task::spawn_blocking(move || steered.rollback(request, &operator)).await;
    let mut answer = match answered {
        Ok(Ok(answer)) => answer,
        Ok(Err(SteerError::Forbidden(why))) => {
            warn!(group, client.addr = %asked.peer, operator = %by, reason = %why, "rollback order refused");
            return error(StatusCode::FORBIDDEN, &why);
        }
        Ok(Err(refused)) => return error(StatusCode::CONFLICT, &refused.to_string()),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot check the rollback on this host: {e}"),
            );
        }
    };
    answer.gossip = state.mesh.is_some();
    if !answer.given {
        return json(StatusCode::OK, &answer);
    }
    info!(
        group,
        action = "rollback",
        deployment.id = %answer.deployment,
        rollback.to = %answer.to,
        rollback.from = %answer.from,
        signer = answer.signer.as_deref().unwrap_or_default(),
        client.addr = %asked.peer,
        operator = %by,
        "rollback order given"
    );
    json(StatusCode::ACCEPTED, &answer)
}

/// Lets through root on the control socket, or a loopback peer with the admin token
/// (`None`); the refusal otherwise.
fn refusal(state: &ServerState, action: Control, asked: &Asked<'_>) -> Option<Response<Body>> {
    let peer = match asked.peer {
        Peer::Root { .. } => return None,
        Peer::Tcp(peer) => peer,
    };
    if !is_local(peer) {
        warn!(
            client.addr = %peer,
            action = action.as_str(),
            "steering call from another host refused"
        );
        return Some(error(
            StatusCode::FORBIDDEN,
            &format!(
                "steering calls are taken from this host only, and {} is not a loopback \
                 address: run `shoal {}` on the host itself",
                peer.ip(),
                action.as_str()
            ),
        ));
    }
    let message = match state.admin.check(asked.authorization) {
        Credential::Admin => return None,
        Credential::Missing => format!(
            "this call needs the admin token: send `Authorization: Bearer <token>` with the \
             token in the agent's status.token_file, or run `sudo shoal {}`, which asks over \
             the control socket",
            action.as_str()
        ),
        Credential::Wrong => "the admin token is wrong: send the token in the agent's \
                              status.token_file"
            .to_owned(),
    };
    let mut response = error(StatusCode::UNAUTHORIZED, &message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"shoal\""),
    );
    Some(response)
}

fn unknown_group(state: &ServerState, group: &str) -> String {
    let names = state.groups.names();
    if names.is_empty() {
        return format!("no group `{group}` on this host: it has no groups");
    }
    format!(
        "no group `{group}` on this host: its groups are {}",
        names.join(", ")
    )
}

/// A body that does not read: a 400.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// A halt's body that is neither empty nor `{"reason": "..."}`.
    #[error("the body of a halt is JSON like {{\"reason\": \"bad build\"}} or nothing: {0}")]
    Halt(serde_json::Error),
    /// A forget's body that is not `{"node": "..."}`.
    #[error("the body of a forget is JSON like {{\"node\": \"web-3\"}}: {0}")]
    Forget(serde_json::Error),
    /// A rollback is an order for the channel watcher, not a command for the planner.
    #[error("a rollback is given as a signed order")]
    NotACommand,
}

/// Who steers, as recorded: `user@node`, the user as the client names it (letters, digits,
/// `.`, `_`, `-`, at most 32), else `root` on the control socket and `token` over TCP (the
/// admin token's holder).
fn operator(asked: &Asked<'_>, node: &str) -> String {
    let named = asked.operator.filter(|user| {
        !user.is_empty()
            && user.len() <= 32
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    let user = named.unwrap_or(match asked.peer {
        Peer::Root { .. } => "root",
        Peer::Tcp(_) => "token",
    });
    format!("{user}@{node}")
}

/// The command `action` asks for, by the operator `by`; a halt reads its reason from the
/// optional JSON body, a forget its node from the JSON body.
fn command(action: Control, body: &[u8], by: String) -> Result<Command, BodyError> {
    Ok(match action {
        Control::Resume => Command::Resume { by: Some(by) },
        Control::Rollback => return Err(BodyError::NotACommand),
        Control::Promote => Command::Promote { by: Some(by) },
        Control::Leave => Command::Leave,
        Control::Halt => Command::Halt {
            reason: halt_reason(body).map_err(BodyError::Halt)?,
            by: Some(by),
        },
        Control::Forget => {
            let request: ForgetRequest = serde_json::from_slice(body).map_err(BodyError::Forget)?;
            Command::Forget {
                node: one_line(&request.node),
            }
        }
    })
}

fn halt_reason(body: &[u8]) -> Result<String, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(NO_REASON.to_owned());
    }
    let request: HaltRequest = serde_json::from_slice(body)?;
    let reason = one_line(request.reason.as_deref().unwrap_or_default());
    Ok(if reason.is_empty() {
        NO_REASON.to_owned()
    } else {
        reason
    })
}

/// `text` on one line: runs of whitespace and control characters become one space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records `command` on this host; the deployment it applies to, or the error response.
async fn apply(steered: Arc<dyn Steer>, command: Command) -> Result<String, Response<Body>> {
    // It writes and syncs the journal.
    let recorded = tokio::task::spawn_blocking(move || steered.command(command)).await;
    match recorded {
        Ok(Ok(deployment)) => Ok(deployment),
        Ok(Err(SteerError::Refused(refusal))) => {
            Err(error(StatusCode::CONFLICT, &refusal.to_string()))
        }
        Ok(Err(failed)) => {
            warn!(error = %failed, "cannot record an operator command");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failed.to_string(),
            ))
        }
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot record the command on this host: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by() -> String {
        "alice@web-1".to_owned()
    }

    #[test]
    fn a_halt_reason_is_optional_and_kept_on_one_line() {
        assert_eq!(halt_reason(b"").ok().as_deref(), Some(NO_REASON));
        assert_eq!(halt_reason(b" \n").ok().as_deref(), Some(NO_REASON));
        assert_eq!(halt_reason(b"{}").ok().as_deref(), Some(NO_REASON));
        assert_eq!(
            halt_reason(br#"{"reason": "  "}"#).ok().as_deref(),
            Some(NO_REASON)
        );
        assert_eq!(
            halt_reason(b"{\"reason\": \"bad\\nbuild\\u0007 v2\"}")
                .ok()
                .as_deref(),
            Some("bad build v2")
        );
    }

    #[test]
    fn a_halt_body_that_is_not_the_json_expected_is_refused() {
        for body in [&b"bad build"[..], br#"{"reson": "x"}"#, br#"{"reason": 3}"#] {
            let message = command(Control::Halt, body, by())
                .expect_err("refused")
                .to_string();
            assert!(message.contains("JSON like"), "{message}");
        }
    }

    #[test]
    fn a_forget_names_its_node_in_json() {
        assert_eq!(
            command(Control::Forget, br#"{"node": "web-3"}"#, by()).ok(),
            Some(Command::Forget {
                node: "web-3".into()
            })
        );
        for body in [&b""[..], b"web-3", br#"{"host": "web-3"}"#] {
            let message = command(Control::Forget, body, by())
                .expect_err("refused")
                .to_string();
            assert!(message.contains("{\"node\": \"web-3\"}"), "{message}");
        }
    }

    #[test]
    fn the_operator_is_the_named_user_at_this_node_and_cannot_name_another_node() {
        let asked = |peer, operator| Asked {
            route: super::super::Route::NotFound,
            path: "/",
            peer,
            authorization: None,
            operator,
            body: bytes::Bytes::new(),
        };
        let root = || Peer::Root { pid: None };
        let tcp = || Peer::Tcp(([127, 0, 0, 1], 4000).into());
        assert_eq!(
            operator(&asked(root(), Some("alice")), "web-1"),
            "alice@web-1"
        );
        assert_eq!(operator(&asked(root(), None), "web-1"), "root@web-1");
        assert_eq!(operator(&asked(tcp(), None), "web-1"), "token@web-1");
        // A name that would make the record point at another node, or carry markup, is not
        // taken: the notification's sender is read from the part after the `@`.
        for hostile in ["mallory@web-2", "<b>", "a b", "", &"x".repeat(33)] {
            assert_eq!(
                operator(&asked(tcp(), Some(hostile)), "web-1"),
                "token@web-1",
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn resume_and_promote_take_no_reason() {
        assert_eq!(
            command(Control::Resume, b"ignored", by()).ok(),
            Some(Command::Resume { by: Some(by()) })
        );
        assert_eq!(
            command(Control::Promote, b"", by()).ok(),
            Some(Command::Promote { by: Some(by()) })
        );
        assert_eq!(
            command(Control::Halt, br#"{"reason":"canary slow"}"#, by()).ok(),
            Some(Command::Halt {
                reason: "canary slow".into(),
                by: Some(by()),
            })
        );
    }
}
