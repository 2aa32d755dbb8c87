//! `shoal rollback` on this host: the order an operator is to sign (back to a release the group
//! ran here, from the newest release this host verified), and the signed order checked before
//! it is handed to the group's loop, whose channel watcher takes it and gossips it. Every other
//! host checks the order again itself (see [`super::watcher`]).

use std::path::{Path, PathBuf};

use shoal_shared::gossip::{GroupValues, Rollback};
use shoal_shared::release::rollback::{Age, RollbackOrder, verify_order};
use shoal_shared::release::{AllowedSigners, Version};
use shoal_shared::rollout::Command;
use shoal_shared::status::{RollbackAnswer, RollbackRequest};

use super::keeper::Keeper;
use crate::clock::unix_now;
use crate::report::http::{Steer, SteerError};
use crate::report::metrics::RolloutGauges;
use crate::verify::state::ChannelState;

/// One group as the status endpoint steers it: its keeper, and what a rollback needs to know.
pub struct GroupSteer {
    keeper: Keeper,
    group: String,
    allowed_signers: PathBuf,
    /// The group's channel state file (its floor, the rollback in force).
    channel_state: PathBuf,
    /// Where the group's deployment records are (what it ran here).
    deployment_root: PathBuf,
}

impl GroupSteer {
    /// Group `group` (kept by `keeper`, trusting `allowed_signers`) of the agent whose data
    /// directory is `data_dir` and deployment root `root`.
    pub fn new(
        keeper: Keeper,
        group: &str,
        allowed_signers: &Path,
        data_dir: &Path,
        root: &Path,
    ) -> Self {
        Self {
            keeper,
            group: group.to_owned(),
            allowed_signers: allowed_signers.to_path_buf(),
            channel_state: ChannelState::path_for(data_dir, group),
            deployment_root: root.to_path_buf(),
        }
    }

    /// The releases this group ran on this host (succeeded), newest first, each once.
    fn ran(&self) -> Result<Vec<String>, SteerError> {
        let records = crate::report::deployments::list_group(&self.deployment_root, &self.group)
            .map_err(|e| SteerError::Conflict(format!("cannot read what the group ran: {e}")))?;
        let mut ran: Vec<String> = Vec::new();
        for record in records {
            if record.result == "succeeded" && !ran.contains(&record.revision) {
                ran.push(record.revision);
            }
        }
        Ok(ran)
    }

    /// Checks that the group may go back from `floor` to `to`: a release below the floor
    /// that the group ran here.
    fn check_target(&self, floor: &Version, to: &str) -> Result<(), SteerError> {
        let group = &self.group;
        let conflict = |why: String| Err(SteerError::Conflict(why));
        let Ok(version) = Version::parse(to) else {
            return conflict(format!(
                "`{to}` is not a release name (a version like v1.2.0)"
            ));
        };
        if !shoal_shared::release::version::above_floor(floor, Some(&version)) {
            return conflict(format!(
                "{to} is not older than {floor}, the newest release group {group} verified: \
                 a rollback goes back (publish a newer release to go forward)",
                floor = floor.name()
            ));
        }
        let ran = self.ran()?;
        if !ran.iter().any(|r| r == to) {
            return conflict(format!(
                "group {group} never ran {to} on this host; it ran {}",
                listed(&ran)
            ));
        }
        Ok(())
    }

    /// The group's channel state now.
    fn state(&self) -> Result<(ChannelState, Version), SteerError> {
        let state = ChannelState::load(&self.channel_state)
            .map_err(|e| SteerError::Conflict(e.to_string()))?;
        let floor = state.floor().ok_or_else(|| {
            SteerError::Conflict(format!(
                "group {} has verified no release yet: there is nothing to roll back from",
                self.group
            ))
        })?;
        Ok((state, floor))
    }

    /// The order to sign: back to `to`, else to the newest release below the floor the group
    /// ran here.
    fn order(&self, to: Option<String>, by: &str) -> Result<RollbackAnswer, SteerError> {
        let (_, floor) = self.state()?;
        let to = match to {
            Some(to) => to,
            None => self
                .ran()?
                .into_iter()
                .find(|r| {
                    Version::parse(r).is_ok_and(|v| {
                        shoal_shared::release::version::above_floor(&floor, Some(&v))
                    })
                })
                .ok_or_else(|| {
                    SteerError::Conflict(format!(
                        "group {} ran no release older than {} on this host: name one with --to",
                        self.group,
                        floor.name()
                    ))
                })?,
        };
        self.check_target(&floor, &to)?;
        let order = RollbackOrder {
            group: self.group.clone(),
            to,
            from: floor.name().to_owned(),
            issued: unix_now(),
            by: by.to_owned(),
        };
        Ok(answer(&order, false, None))
    }

    /// Checks the signed order `text` and hands it to the group's loop.
    fn give(&self, text: &str, signature: &str) -> Result<RollbackAnswer, SteerError> {
        let signers = std::fs::read_to_string(&self.allowed_signers)
            .map_err(|e| e.to_string())
            .and_then(|text| AllowedSigners::parse(&text).map_err(|e| e.to_string()))
            .map_err(|e| {
                SteerError::Conflict(format!(
                    "cannot check the order against {}: {e}",
                    self.allowed_signers.display()
                ))
            })?;
        let (order, signer) = verify_order(
            text,
            signature.as_bytes(),
            &self.group,
            &signers,
            unix_now(),
            Age::Fresh,
        )
        .map_err(|e| {
            SteerError::Forbidden(format!(
                "{e} (the order must be signed with a key {} lists for namespace `{}`)",
                self.allowed_signers.display(),
                shoal_shared::release::rollback::ROLLBACK_NAMESPACE
            ))
        })?;
        let (state, floor) = self.state()?;
        if order.from != floor.name() {
            return Err(SteerError::Conflict(format!(
                "the order rolls back from {}, but the newest release group {} verified is {}: \
                 run shoal rollback again for a new order",
                order.from,
                self.group,
                floor.name()
            )));
        }
        if let Some((taken, in_force)) = state.rollback()
            && taken.order != text
            && in_force.issued >= order.issued
        {
            return Err(SteerError::Conflict(format!(
                "a later rollback order (to {}, by {}) is in force",
                in_force.to, in_force.by
            )));
        }
        self.check_target(&floor, &order.to)?;
        self.keeper.give_order(Rollback {
            order: text.to_owned(),
            signature: signature.to_owned(),
            signer: signer.principal.clone(),
        });
        Ok(answer(&order, true, Some(signer.principal)))
    }
}

fn answer(order: &RollbackOrder, given: bool, signer: Option<String>) -> RollbackAnswer {
    RollbackAnswer {
        group: order.group.clone(),
        order: order.text(),
        deployment: order.deployment_id(),
        from: order.from.clone(),
        to: order.to.clone(),
        given,
        signer,
        gossip: false,
    }
}

/// `a, b and c`, or `nothing` for none.
fn listed(names: &[String]) -> String {
    match names {
        [] => "nothing yet".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl Steer for GroupSteer {
    fn command(&self, command: Command) -> Result<String, SteerError> {
        self.keeper.command(command)
    }

    fn rollback(&self, request: RollbackRequest, by: &str) -> Result<RollbackAnswer, SteerError> {
        match (request.order, request.signature) {
            (None, None) => self.order(request.to, by),
            (Some(order), Some(signature)) => self.give(&order, &signature),
            _ => Err(SteerError::Conflict(
                "a signed rollback order comes with both `order` and `signature`".to_owned(),
            )),
        }
    }

    fn values(&self) -> GroupValues {
        self.keeper.values()
    }

    fn rollout(&self) -> RolloutGauges {
        self.keeper.rollout()
    }
}

#[cfg(test)]
mod tests {
    use shoal_shared::release::rollback::ROLLBACK_NAMESPACE;
    use ssh_key::{HashAlg, LineEnding, PrivateKey, private::Ed25519Keypair};

    use super::*;
    use crate::execute::deployment::{DeploymentRecord, Status};
    use crate::runtime::journal::JournalFile;
    use crate::runtime::testing::host;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn sign(key: &PrivateKey, text: &str) -> String {
        key.sign(ROLLBACK_NAMESPACE, HashAlg::Sha512, text.as_bytes())
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .expect("sign")
    }

    /// Group `web` with floor v2.0.0 that ran v1.0.0 and v2.0.0 here; `ops` (seed 7) may
    /// order rollbacks, `release` (seed 8) may sign releases only.
    struct Setup {
        _dir: tempfile::TempDir,
        steer: GroupSteer,
        keeper: Keeper,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let signers = dir.path().join("allowed_signers");
        let line = |who: &str, namespaces: &str, seed: u8| {
            let public = key(seed).public_key().to_openssh().expect("openssh");
            format!("{who} namespaces=\"{namespaces}\" {public}\n")
        };
        std::fs::write(
            &signers,
            line("ops@example.com", "shoal-rollback", 7)
                + &line("release@example.com", "git,shoal-release", 8),
        )
        .expect("signers");
        let state_path = ChannelState::path_for(dir.path(), "web");
        let mut state = ChannelState::load(&state_path).expect("state");
        state.raise_floor(&Version::parse("v2.0.0").expect("version"));
        state.save_if_changed().expect("save");
        let root = dir.path().join("deployment-root");
        for (n, revision) in [(1, "v1.0.0"), (2, "v2.0.0")] {
            DeploymentRecord {
                deployment_id: format!("d-00000000000{n}"),
                group: "web".into(),
                application: "shop".into(),
                revision: revision.into(),
                previous_revision: None,
                reverts: None,
                bundle: "b".into(),
                status: Status::Succeeded,
                started_at_ms: n * 1000,
                finished_at_ms: Some(n * 1000 + 1),
                events: Vec::new(),
                warnings: Vec::new(),
                error: None,
            }
            .save(&root.join(format!("web/d-00000000000{n}")))
            .expect("record");
        }
        let keeper = Keeper::new(JournalFile::of(dir.path(), "web"), host());
        let steer = GroupSteer {
            keeper: keeper.clone(),
            group: "web".into(),
            allowed_signers: signers,
            channel_state: state_path,
            deployment_root: root,
        };
        Setup {
            _dir: dir,
            steer,
            keeper,
        }
    }

    fn order(setup: &Setup, to: Option<&str>) -> RollbackOrder {
        let asked = setup
            .steer
            .rollback(
                RollbackRequest {
                    to: to.map(str::to_owned),
                    ..RollbackRequest::default()
                },
                "alice@web-1",
            )
            .expect("an order to sign");
        RollbackOrder::parse(&asked.order).expect("reads")
    }

    fn give(setup: &Setup, text: &str, signature: String) -> Result<RollbackAnswer, SteerError> {
        setup.steer.rollback(
            RollbackRequest {
                order: Some(text.to_owned()),
                signature: Some(signature),
                to: None,
            },
            "alice@web-1",
        )
    }

    #[test]
    fn the_order_goes_back_to_the_release_before_and_is_given_once_signed() {
        let setup = setup();
        let order = order(&setup, None);
        assert_eq!(
            (order.to.as_str(), order.from.as_str(), order.by.as_str()),
            ("v1.0.0", "v2.0.0", "alice@web-1")
        );
        let text = order.text();
        let given = give(&setup, &text, sign(&key(7), &text)).expect("given");
        assert!(given.given);
        assert_eq!(given.signer.as_deref(), Some("ops@example.com"));
        assert_eq!(given.deployment, order.deployment_id());
        let handed = setup.keeper.take_orders();
        assert_eq!(handed.len(), 1);
        assert_eq!(handed[0].order, text);
    }

    #[test]
    fn orders_the_group_cannot_take_are_refused_and_nothing_is_handed_on() {
        let setup = setup();
        let fresh = order(&setup, None);
        let text = fresh.text();
        let forbidden = |result: Result<RollbackAnswer, SteerError>| match result {
            Err(SteerError::Forbidden(why)) => why,
            other => panic!("not forbidden: {other:?}"),
        };
        let conflict = |result: Result<RollbackAnswer, SteerError>| match result {
            Err(SteerError::Conflict(why)) => why,
            other => panic!("not a conflict: {other:?}"),
        };
        // The release key may not order a rollback.
        let why = forbidden(give(&setup, &text, sign(&key(8), &text)));
        assert!(why.contains("shoal-rollback"), "{why}");
        // Another target under the operator's signature.
        let tampered = text.replace("to: v1.0.0", "to: v0.9.0");
        forbidden(give(&setup, &tampered, sign(&key(7), &text)));
        // An order written two hours ago.
        let old = RollbackOrder {
            issued: fresh.issued - 7200,
            ..fresh.clone()
        };
        let why = forbidden(give(&setup, &old.text(), sign(&key(7), &old.text())));
        assert!(why.contains("within the last hour"), "{why}");
        // Back to a release this group never ran here, or not older than the floor.
        for (to, expected) in [("v0.5.0", "never ran v0.5.0"), ("v2.1.0", "not older")] {
            let order = RollbackOrder {
                to: to.into(),
                ..fresh.clone()
            };
            let why = conflict(give(&setup, &order.text(), sign(&key(7), &order.text())));
            assert!(why.contains(expected), "{why}");
        }
        assert!(setup.keeper.take_orders().is_empty());

        // Given, then replayed once a newer release raised the floor.
        give(&setup, &text, sign(&key(7), &text)).expect("given");
        let mut state = ChannelState::load(&setup.steer.channel_state).expect("state");
        state.raise_floor(&Version::parse("v3.0.0").expect("version"));
        state.save_if_changed().expect("save");
        let why = conflict(give(&setup, &text, sign(&key(7), &text)));
        assert!(why.contains("is v3.0.0"), "{why}");
        assert_eq!(setup.keeper.take_orders().len(), 1, "only the first");
    }

    #[test]
    fn an_older_order_does_not_replace_the_one_in_force() {
        let setup = setup();
        let newer = order(&setup, None);
        let mut state = ChannelState::load(&setup.steer.channel_state).expect("state");
        state.take_rollback(Rollback {
            order: newer.text(),
            signature: sign(&key(7), &newer.text()),
            signer: "ops@example.com".into(),
        });
        state.save_if_changed().expect("save");
        let older = RollbackOrder {
            issued: newer.issued - 60,
            ..newer.clone()
        };
        let refused = give(&setup, &older.text(), sign(&key(7), &older.text()));
        assert!(
            matches!(&refused, Err(SteerError::Conflict(why)) if why.contains("is in force")),
            "{refused:?}"
        );
        // The order in force, given again, is taken (a retry of the same order).
        give(&setup, &newer.text(), sign(&key(7), &newer.text())).expect("the same order");
    }
}
