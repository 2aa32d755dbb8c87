//! A group's rollback orders (`shoal rollback`): each heard from the mesh or given on this host
//! is checked once against the group's `allowed_signers`; the newest whose `from` is the floor is
//! taken and kept with the floor, and while it is in force the watcher offers its `to` below the
//! floor under the order's own deployment.

use shoal_shared::gossip::Rollback;
use shoal_shared::release::rollback::{Age, RollbackOrder, verify_order};
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{AllowedSigners, Version};
use shoal_shared::status::Verified;
use tracing::{info, warn};

use super::super::channel::{ChannelFailure, one_line};
use super::Watcher;
use crate::clock::{now_rfc3339, unix_now};
use crate::verify::state::ChannelState;

/// Most rollback orders remembered as checked.
const MAX_JUDGED: usize = 256;

impl Watcher {
    /// Hears rollback orders (published by peers, or given on this host): each new one is
    /// checked against the group's `allowed_signers` once, and kept until its `from` is the
    /// floor. True when one is new and verified: the channel should be looked at.
    pub(in crate::runtime) fn hear<'a>(
        &mut self,
        heard: impl IntoIterator<Item = &'a Rollback>,
    ) -> bool {
        // Every peer republishes the order in force: only one not judged yet is copied.
        let new: Vec<Rollback> = heard
            .into_iter()
            .filter(|r| !self.judged.contains(&r.order))
            .cloned()
            .collect();
        if new.is_empty() {
            return false;
        }
        let signers = std::fs::read_to_string(&self.group.allowed_signers)
            .ok()
            .and_then(|text| AllowedSigners::parse(&text).ok());
        let Some(signers) = signers else {
            // Judged at a later look, once the file reads (the poll says why it does not).
            return false;
        };
        if self.judged.len() > MAX_JUDGED {
            // Orders are few; a peer sending many only makes this host check them again.
            self.judged.clear();
        }
        let mut verified = false;
        for mut heard in new {
            self.judged.insert(heard.order.clone());
            let checked = verify_order(
                &heard.order,
                heard.signature.as_bytes(),
                &self.group.name,
                &signers,
                unix_now(),
                Age::Taken,
            );
            match checked {
                Ok((order, signer)) => {
                    heard.signer = signer.principal;
                    self.orders.push((order, heard));
                    verified = true;
                }
                Err(e) => {
                    warn!(error = %e, "a rollback order from the mesh was refused");
                    self.metrics.refused(&self.group.name, "rollback_order");
                }
            }
        }
        verified
    }

    /// The rollback order this host took and keeps in force, as it publishes it.
    pub(in crate::runtime) fn rollback(&self) -> Option<Rollback> {
        let (taken, _) = self.state.as_ref()?.rollback()?;
        Some(taken.clone())
    }

    /// After a poll: a newer release ends the rollback in force; the newest order heard whose
    /// `from` is the floor is taken (and kept, durably) if it is newer than the one in force.
    pub(super) fn take_order(&mut self) -> Result<(), ChannelFailure> {
        let Some(state) = self.state.as_mut() else {
            return Ok(());
        };
        let floor = state.floor();
        let floor_name = floor.as_ref().map(|f| f.name().to_owned());
        if let Some((_, order)) = state.rollback()
            && floor_name.as_deref() != Some(order.from.as_str())
        {
            info!(rollback.from = %order.from, floor = ?floor_name, "a newer release ended the rollback");
            state.end_rollback();
        }
        let in_force = state.rollback().map(|(_, order)| order.issued);
        let newest = next_order(&mut self.orders, floor.as_ref(), in_force);
        if let Some((order, taken)) = newest {
            info!(
                rollback.to = %order.to,
                rollback.from = %order.from,
                rollback.by = %order.by,
                signer = %taken.signer,
                deployment.id = %order.deployment_id(),
                "rollback order taken"
            );
            state.take_rollback(taken);
        }
        state.save_if_changed().map_err(|e| ChannelFailure {
            kind: "channel_state",
            message: one_line(&e),
            refusal: None,
        })?;
        Ok(())
    }

    /// With a rollback order in force: offers its `to` (whatever the floor) under the order's
    /// deployment when the planner does not have that deployment yet or waits for its files.
    /// True when an order is in force (nothing else is offered then: the only release the
    /// poll can give is the floor's, the one rolled back from).
    pub(super) async fn rolled_back(
        &mut self,
        signers: &AllowedSigners,
        wanted: Option<&str>,
        target: Option<&str>,
    ) -> Result<bool, ChannelFailure> {
        let Some(order) = self
            .state
            .as_ref()
            .and_then(ChannelState::rollback)
            .map(|(_, order)| order)
        else {
            return Ok(false);
        };
        let id = order.deployment_id();
        let prepared = self.prepared.as_ref().is_some_and(|p| p.id == id);
        let offer = target != Some(id.as_str()) || wanted == Some(order.to.as_str());
        if !offer || prepared {
            return Ok(true);
        }
        let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_mut()) else {
            return Ok(true);
        };
        let Some(release) = channel
            .named_release(&order.to, signers, state, unix_now())
            .await?
        else {
            return Err(ChannelFailure {
                kind: "rollback",
                message: format!(
                    "the rollback to {} cannot go on: the channel has no release {} that verifies",
                    order.to, order.to
                ),
                refusal: None,
            });
        };
        info!(revision.id = %order.to, deployment.id = %id, rollback.from = %order.from, "rolling back");
        let verified = Verified {
            name: order.to.clone(),
            signer: release.signer.principal.clone(),
            when: now_rfc3339(),
        };
        self.show(|g| g.verified = Some(verified));
        self.pending = Some((release, id));
        Ok(true)
    }
}

/// Of the rollback orders heard, the one to take now: the newest whose `from` is the `floor`
/// and that was given after the order `in_force` (its time), if any. Orders for a release the
/// floor passed are dropped: they can never apply.
fn next_order(
    orders: &mut Vec<(RollbackOrder, Rollback)>,
    floor: Option<&Version>,
    in_force: Option<i64>,
) -> Option<(RollbackOrder, Rollback)> {
    orders.retain(|(order, _)| {
        Version::parse(&order.from)
            .is_ok_and(|from| floor.is_none_or(|floor| !above_floor(floor, Some(&from))))
    });
    orders
        .iter()
        .filter(|(order, _)| floor.is_some_and(|f| f.name() == order.from))
        .filter(|(order, _)| in_force.is_none_or(|issued| order.issued > issued))
        .max_by_key(|(order, _)| order.issued)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_order_for_the_floor_is_taken_and_orders_the_floor_passed_are_dropped() {
        let order = |to: &str, from: &str, issued: i64| {
            let order = RollbackOrder {
                group: "web".into(),
                to: to.into(),
                from: from.into(),
                issued,
                by: "alice@h0".into(),
            };
            let heard = Rollback {
                order: order.text(),
                signature: String::new(),
                signer: "ops@example.com".into(),
            };
            (order, heard)
        };
        let v = |name: &str| Version::parse(name).expect(name);
        let mut orders = vec![
            order("v1.0.0", "v2.0.0", 100),
            order("v0.9.0", "v2.0.0", 200),
            order("v1.0.0", "v1.5.0", 300),
            order("v2.0.0", "v3.0.0", 400),
        ];
        // At v2.0.0 the later of its two orders; v1.5.0's can never apply and is dropped,
        // v3.0.0's waits for this host to verify v3.0.0.
        let taken = next_order(&mut orders, Some(&v("v2.0.0")), None).map(|(o, _)| o.to);
        assert_eq!(taken.as_deref(), Some("v0.9.0"));
        assert_eq!(orders.len(), 3);
        // Nothing later than the order in force.
        assert!(next_order(&mut orders, Some(&v("v2.0.0")), Some(200)).is_none());
        // No floor: nothing to roll back from.
        assert!(next_order(&mut orders, None, None).is_none());
        let taken = next_order(&mut orders, Some(&v("v3.0.0")), Some(200)).map(|(o, _)| o.to);
        assert_eq!(taken.as_deref(), Some("v2.0.0"));
        assert_eq!(orders.len(), 1, "the v2.0.0 orders are passed");
    }
}
