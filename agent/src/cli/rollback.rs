//! `shoal rollback GROUP [--to VERSION] --key FILE`: roll a group back to a release it ran
//! before, as a rollout of its own under the group's policy. The agent on this host writes the
//! order (from the newest release it verified, to `--to` or the release the group ran before
//! it); the operator's key signs it here, in namespace `shoal-rollback`; the agent checks the
//! signature against the group's `allowed_signers` and gossips the order, and every host checks
//! it again before it goes back.

use std::path::PathBuf;

use shoal_shared::release::rollback::ROLLBACK_NAMESPACE;
use shoal_shared::status::{RollbackAnswer, RollbackRequest};

use super::control::{Steering, TargetArgs};
use super::exit;
use super::sign::sign;
use crate::report::http::Control;

/// `shoal rollback`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The group to roll back (as in the agent's config).
    group: String,
    /// The release to go back to; by default the newest one older than the group's newest
    /// release that this host ran.
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// The operator's signing key, listed in the group's allowed_signers for namespace
    /// shoal-rollback: an OpenSSH ed25519 private key, or its .pub to sign through ssh-agent.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
}

pub(super) fn run(args: Args) -> u8 {
    let agent = match Steering::open(&args.group, Control::Rollback, &args.target) {
        Ok(agent) => agent,
        Err(code) => return code,
    };
    let order = match agent.post::<RollbackAnswer>(Some(&RollbackRequest {
        to: args.to.clone(),
        ..RollbackRequest::default()
    })) {
        Ok(order) => order,
        Err((code, message)) => {
            errln!("error: {message}");
            return code;
        }
    };
    let signed = match sign(&args.key, ROLLBACK_NAMESPACE, order.order.as_bytes()) {
        Ok(signed) => signed,
        Err(e) => {
            errln!("error: {}", super::error_chain(&e));
            return if e.is_usage() {
                exit::USAGE
            } else {
                exit::FAILURE
            };
        }
    };
    let given = match agent.post::<RollbackAnswer>(Some(&RollbackRequest {
        order: Some(order.order.clone()),
        signature: Some(signed.armored),
        to: None,
    })) {
        Ok(given) => given,
        Err((code, message)) => {
            errln!("error: {message}");
            return code;
        }
    };
    outln!("{}", said(&given));
    exit::OK
}

/// What was done, in one line.
fn said(given: &RollbackAnswer) -> String {
    let signer = given.signer.as_deref().unwrap_or("?");
    let spread = if given.gossip {
        "every host checks the order and rolls back under the group's rollout policy; follow it \
         with `shoal fleet`"
    } else {
        "this agent has no mesh, so the group is this host alone"
    };
    format!(
        "rolling {} back from {} to {} (deployment {}), order signed by {signer}; {spread}",
        given.group, given.from, given.to, given.deployment
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_where_the_group_goes_and_who_signed() {
        let given = RollbackAnswer {
            group: "web".into(),
            order: String::new(),
            deployment: "d-0123456789ab".into(),
            from: "v2.0.0".into(),
            to: "v1.0.0".into(),
            given: true,
            signer: Some("ops@example.com".into()),
            gossip: true,
        };
        assert_eq!(
            said(&given),
            "rolling web back from v2.0.0 to v1.0.0 (deployment d-0123456789ab), order signed by \
             ops@example.com; every host checks the order and rolls back under the group's \
             rollout policy; follow it with `shoal fleet`"
        );
    }
}
