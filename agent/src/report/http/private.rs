//! Who may read hook output (`/v1/deployments/{id}/log` and the log tail of
//! `/v1/deployments/{id}`). A hook prints what it likes, secrets included (a script that runs
//! `env` as root prints the agent's credentials), and the endpoint answers every local user.
//! So the output is the admin's, as the steering calls are: root on the control socket, or a
//! loopback peer with the admin token, which only root can read (`status.token_file`, 0600).
//! `status.public_logs: true` serves it to every client of the endpoint, as before.

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};

use super::auth::{Credential, is_local};
use super::peer::Peer;
use super::reply::{Asked, Body, error};
use super::state::ServerState;
use hyper::Response;

/// Whether the asker may read hook output.
pub(super) fn may_read(state: &ServerState, asked: &Asked<'_>) -> bool {
    state.public_logs
        || match asked.peer {
            Peer::Root { .. } => true,
            Peer::Tcp(peer) => {
                is_local(peer) && state.admin.check(asked.authorization) == Credential::Admin
            }
        }
}

/// The answer to a request for hook output that [`may_read`] refused.
pub(super) fn refused(state: &ServerState, asked: &Asked<'_>) -> Response<Body> {
    let Peer::Tcp(peer) = asked.peer else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "root is always let through",
        );
    };
    if !is_local(peer) {
        return error(
            StatusCode::FORBIDDEN,
            &format!(
                "hook output is served to this host only, and {} is not a loopback address: \
                 run `shoal logs` on the host itself (or set status.public_logs: true)",
                peer.ip()
            ),
        );
    }
    let message = match state.admin.check(asked.authorization) {
        Credential::Wrong => {
            "the admin token is wrong: send the token in the agent's status.token_file"
        }
        Credential::Missing | Credential::Admin => {
            "hook output may hold secrets, so reading it needs the admin token, which only root \
             can read: run `shoal logs` as root, send `Authorization: Bearer <token>` with the \
             token in the agent's status.token_file, or set status.public_logs: true"
        }
    };
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"shoal\""),
    );
    response
}
