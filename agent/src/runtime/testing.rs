//! What the runtime's unit tests share: a group's host alone in its group.

use shoal_shared::gossip::Target;
use shoal_shared::rollout::{GroupHost, Journal, Policy, Settings, View};

/// The host of group `web` on node `h0`, with no mesh and an empty journal.
pub(super) fn host() -> GroupHost {
    let settings = Settings {
        node: "h0".into(),
        warmup: 0,
        forget_after: 0,
        expected_members: None,
    };
    GroupHost::start("web", settings, Journal::empty(), &Policy::default(), 0)
}

/// `host` verifies v1, alone in its group: it starts it at once.
pub(super) fn release_v1(host: &mut GroupHost) {
    let target = Target {
        id: "d-0123456789ab".into(),
        revision: "v1".into(),
        digest: "git:v1".into(),
    };
    host.release(
        target,
        Policy::default(),
        "/cache/v1".into(),
        &View::default(),
        1,
    );
}
