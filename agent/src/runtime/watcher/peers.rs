//! A look at the peers instead of the origin: a host that does not poll the origin learns of a
//! release from a peer's gossip and fetches what that peer verified — a store release's
//! manifest and signature, a git tag's pack — from the holders in its own order, then verifies
//! it as if the origin had served it. A holder whose bytes fail is dropped for that release and
//! counted; when none is left, the look goes to the origin. A store bundle comes from the
//! holders too, before the origin ([`Watcher::bundle_from_peers`]). When this host cannot keep
//! what a holder serves (its disk is full), the holder is not blamed. A bundle's size is signed,
//! so a bundle without room ends the fetch, the origin unasked, until the next look; a pack's
//! size is the holder's to choose, so a holder sending one too large for the disk only drops
//! out, and the others, then the origin, are asked as usual.

use shoal_shared::gossip::Target;
use shoal_shared::release::version::above_floor;
use shoal_shared::release::{AllowedSigners, Version};
use shoal_shared::rollout::sources;
use tracing::{debug, info, warn};

use super::Watcher;
use crate::channel::git::PackError;
use crate::channel::{Digest, Poll, Release};
use crate::clock::unix_now;
use crate::runtime::channel::{ChannelFailure, GroupChannel};
use crate::share::fetch::{Got, Holder, Peers};

impl Watcher {
    /// The release `offer` (a peer's target above this host's floor) from the peers that hold
    /// it; `None` when no holder served one that verified, and the origin is to be asked.
    pub(super) async fn look_at_peers(
        &mut self,
        offer: &Target,
        signers: &AllowedSigners,
    ) -> Result<Option<Poll>, ChannelFailure> {
        let (Some(peers), Ok(version)) = (self.peers.clone(), Version::parse(&offer.revision))
        else {
            return Ok(None);
        };
        let Some(state) = self.state.as_ref() else {
            return Ok(None);
        };
        if !above_floor(&version, state.floor().as_ref()) {
            return Ok(Some(Poll::default()));
        }
        let mut asking = peers.asking(&self.group.name, &offer.digest);
        while let Some(holder) = peers.next_holder(&mut asking).await {
            let (outcome, poll) = self
                .ask_holder(&peers, &holder, &version, offer, signers)
                .await
                .map_err(|message| ChannelFailure {
                    kind: "channel_state",
                    message,
                    refusal: None,
                })?;
            asking.answered(&holder, outcome);
            if poll.is_some() {
                return Ok(poll);
            }
        }
        info!(revision.id = %offer.revision, "no peer served the release; asking the origin");
        Ok(None)
    }

    /// Asks one holder for the release and verifies what it serves; `Err` says why this host
    /// could not record a release that verified.
    async fn ask_holder(
        &mut self,
        peers: &Peers,
        holder: &Holder,
        version: &Version,
        offer: &Target,
        signers: &AllowedSigners,
    ) -> Result<(sources::Answer, Option<Poll>), String> {
        let group = self.group.name.clone();
        let (Some(channel), Some(state)) = (self.channel.as_mut(), self.state.as_mut()) else {
            return Ok((sources::Answer::Missing, None));
        };
        let name = version.name();
        let verdict = match channel {
            GroupChannel::Store(channel) => {
                let offered = match peers.store_release(holder, &group, name).await {
                    Got::Served(offered) => offered,
                    other => return failed(peers, &group, holder, other),
                };
                match channel
                    .take_offered(version, offered, signers, state, unix_now())
                    .await
                {
                    Ok(Ok(Some(release))) => Ok(release),
                    Ok(Ok(None)) => return Ok((sources::Answer::Served, Some(Poll::default()))),
                    Ok(Err(refusal)) => Err((refusal.kind(), refusal.to_string())),
                    Err(e) => return Err(format!("cannot take a peer's store release: {e}")),
                }
            }
            GroupChannel::Git(channel) => {
                let haves = tokio::task::block_in_place(|| channel.haves());
                let got = peers
                    .git_pack(holder, &group, name, haves, &self.cache)
                    .await;
                let (pack, tag) = match got {
                    Got::Served(pack) => pack,
                    other => return failed(peers, &group, holder, other),
                };
                let taken = channel
                    .take_pack(name, &tag, &pack, signers, state, unix_now())
                    .await;
                match taken {
                    Ok(poll) => match poll.newest {
                        Some(release) if release.digest.to_string() == offer.digest => {
                            let poll = Poll {
                                newest: Some(release),
                                ..poll
                            };
                            info!(peer = %holder.node, revision.id = %name, "git release verified from a peer");
                            return Ok((sources::Answer::Served, Some(poll)));
                        }
                        _ => match poll.refusals.iter().find(|(n, _)| n == name) {
                            Some((_, refusal)) => Err((refusal.kind(), refusal.to_string())),
                            None => Err((
                                "not_the_release",
                                format!("its pack did not make {name} the newest release"),
                            )),
                        },
                    },
                    Err(PackError::Bad(why)) => Err(("bad_pack", why)),
                    Err(PackError::NoRoom(why)) => return Ok(unkept(holder, &why)),
                    Err(PackError::Local(e)) => {
                        debug!(error = %e, "cannot take a peer's pack");
                        return Ok((sources::Answer::Failed, None));
                    }
                }
            }
        };
        match verdict {
            Ok(release) => {
                info!(peer = %holder.node, revision.id = %name, "store release verified from a peer");
                Ok((
                    sources::Answer::Served,
                    Some(Poll {
                        newest: Some(release),
                        ..Poll::default()
                    }),
                ))
            }
            Err((reason, why)) => {
                peers.bad_peer(&group, &holder.node, reason, &why);
                Ok((sources::Answer::Failed, None))
            }
        }
    }

    /// Brings the bundle of store release `release` into the cache from the peers that hold
    /// it, when it is not there yet; `Ok(true)` when it is there now, `Ok(false)` when the
    /// origin is to serve it, `Err` when this host cannot keep it (see [`Peers::fetch_blob`]).
    pub(super) async fn bundle_from_peers(&self, release: &Release) -> Result<bool, String> {
        let (Some(peers), Some(GroupChannel::Store(channel))) = (&self.peers, &self.channel) else {
            return Ok(false);
        };
        let Digest::Sha256(sha256) = &release.digest else {
            return Ok(false);
        };
        if self.cache.has_tree(&release.digest) || self.cache.blob_path(sha256).is_file() {
            return Ok(true);
        }
        let Some(bundle) = channel.bundle_of(release) else {
            return Ok(false);
        };
        let bundle = bundle.clone();
        peers
            .fetch_blob(
                &self.group.name,
                &release.digest.to_string(),
                &bundle,
                &self.cache,
            )
            .await
    }
}

/// What a holder's failed answer comes to, counted when it was bad.
fn failed<T>(
    peers: &Peers,
    group: &str,
    holder: &Holder,
    got: Got<T>,
) -> Result<(sources::Answer, Option<Poll>), String> {
    let outcome = got.outcome();
    match got {
        Got::Failed(reason, why) => peers.bad_peer(group, &holder.node, reason, &why),
        Got::Local(why) => return Ok(unkept(holder, &why)),
        Got::Served(_) | Got::Busy | Got::Missing => {}
    }
    Ok((outcome, None))
}

/// A holder whose pack this host could not keep (`why`): dropped for the release, not blamed.
fn unkept(holder: &Holder, why: &str) -> (sources::Answer, Option<Poll>) {
    warn!(peer = %holder.node, error = why, "cannot keep a peer's pack; asking another");
    (sources::Answer::Failed, None)
}
