//! What happened to a group's rollouts, as the fleet saw it: the events every host records in
//! its history (`shoal history`) and the ones it sends as notifications (`notify:`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::status::Fleet;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new release reached the group (a member verified it).
    ReleaseSeen,
    /// The first member started it.
    RolloutStarted,
    /// A member's deployment of it failed.
    HostFailed,
    /// Its rollout halted (a failure, or an operator).
    Halted,
    /// An operator resumed it.
    Resumed,
    /// An operator promoted it past its canaries.
    Promoted,
    /// Every member is done with it.
    Completed,
    /// An operator rolled the group back to an older release.
    RolledBack,
}

impl EventKind {
    /// Every kind, in the order a rollout meets them.
    pub const ALL: [EventKind; 8] = [
        Self::ReleaseSeen,
        Self::RolloutStarted,
        Self::HostFailed,
        Self::Halted,
        Self::Resumed,
        Self::Promoted,
        Self::Completed,
        Self::RolledBack,
    ];

    /// The name in JSON, in `notify:` filters and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReleaseSeen => "release_seen",
            Self::RolloutStarted => "rollout_started",
            Self::HostFailed => "host_failed",
            Self::Halted => "halted",
            Self::Resumed => "resumed",
            Self::Promoted => "promoted",
            Self::Completed => "completed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event of a group's rollout. Sent as the JSON body of a webhook and on a notify
/// command's stdin; fields are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetEvent {
    /// What happened.
    pub event: EventKind,
    /// The group.
    pub group: String,
    /// The deployment it is about.
    pub deployment: String,
    /// Its release.
    pub revision: String,
    /// When it was seen (RFC 3339, the sending host's clock).
    pub at: String,
    /// The host it is about: the one that failed, halted, or took the operator's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The operator, for commands: `user@node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why: a failure's or a halt's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The failed script's last lines, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// The node that sent the notification.
    #[serde(default)]
    pub node: String,
}

/// What one host saw of one group's rollout at its last look: what the next look's events are
/// told from (kept across restarts, so an event that happened meanwhile is not lost, nor told
/// twice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The group's deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Some member started it.
    #[serde(default)]
    pub started: bool,
    /// Members it failed on.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub failed: BTreeSet<String>,
    /// A halt was in force.
    #[serde(default)]
    pub halted: bool,
    /// It was promoted.
    #[serde(default)]
    pub promoted: bool,
    /// Every member was done.
    #[serde(default)]
    pub complete: bool,
    /// It is an operator's rollback (and was told so).
    #[serde(default)]
    pub rollback: bool,
}

impl Seen {
    /// What `fleet` shows of `group`.
    pub fn of(fleet: &Fleet, group: &str) -> Seen {
        let Some(line) = fleet.groups.iter().find(|g| g.name == group) else {
            return Seen::default();
        };
        Seen {
            deployment: line.deployment.clone(),
            started: line.done + line.running + line.failed > 0,
            failed: failed_members(fleet, group),
            halted: line.halted.is_some(),
            promoted: line.promoted_by.is_some(),
            complete: line.total > 0 && line.done == line.total,
            rollback: line.rollback.is_some(),
        }
    }
}

/// The members of `group` that show a failure.
fn failed_members(fleet: &Fleet, group: &str) -> BTreeSet<String> {
    fleet
        .nodes
        .iter()
        .filter(|n| {
            n.groups
                .iter()
                .any(|g| g.name == group && g.failure.is_some())
        })
        .map(|n| n.id.clone())
        .collect()
}

/// The events between two looks at `group`: `before` (the last look) and `fleet` now, at
/// `at`. A new deployment starts from nothing: its release is seen, then whatever already
/// happened to it.
pub fn events(group: &str, before: &Seen, fleet: &Fleet, at: &str) -> Vec<FleetEvent> {
    let now = Seen::of(fleet, group);
    let Some(line) = fleet.groups.iter().find(|g| g.name == group) else {
        return Vec::new();
    };
    let (Some(deployment), Some(revision)) = (&line.deployment, &line.target) else {
        return Vec::new();
    };
    let event = |kind: EventKind| FleetEvent {
        event: kind,
        group: group.to_owned(),
        deployment: deployment.clone(),
        revision: revision.clone(),
        at: at.to_owned(),
        host: None,
        by: None,
        reason: None,
        output: Vec::new(),
        node: fleet.node.clone(),
    };
    let fresh = Seen::default();
    let before = if before.deployment == now.deployment {
        before
    } else {
        &fresh
    };
    let mut out = Vec::new();
    // An operator's rollback is told as such, with who gave and who signed the order (the
    // order may reach this host's view a moment after the deployment it starts).
    let rolled_back = line.rollback.as_ref().filter(|_| !before.rollback);
    if before.deployment.is_none() && rolled_back.is_none() {
        out.push(event(EventKind::ReleaseSeen));
    }
    if let Some(rollback) = rolled_back {
        out.push(FleetEvent {
            by: Some(rollback.by.clone()),
            reason: Some(format!(
                "back from {} (order signed by {})",
                rollback.from, rollback.signer
            )),
            ..event(EventKind::RolledBack)
        });
    }
    if now.started && !before.started {
        out.push(event(EventKind::RolloutStarted));
    }
    for host in now.failed.difference(&before.failed) {
        let failure = fleet
            .nodes
            .iter()
            .find(|n| n.id == *host)
            .and_then(|n| n.groups.iter().find(|g| g.name == group))
            .and_then(|g| g.failure.clone());
        out.push(FleetEvent {
            host: Some(host.clone()),
            reason: failure,
            output: line
                .halted
                .as_ref()
                .filter(|h| h.host == *host)
                .map(|h| h.output.clone())
                .unwrap_or_default(),
            ..event(EventKind::HostFailed)
        });
    }
    match (&line.halted, before.halted) {
        (Some(halt), false) => out.push(FleetEvent {
            host: Some(halt.host.clone()),
            by: halt.by.clone(),
            reason: Some(halt.reason.clone()),
            output: halt.output.clone(),
            ..event(EventKind::Halted)
        }),
        (None, true) => out.push(FleetEvent {
            by: line.resumed_by.clone(),
            ..event(EventKind::Resumed)
        }),
        _ => {}
    }
    if now.promoted && !before.promoted {
        out.push(FleetEvent {
            by: line.promoted_by.clone(),
            ..event(EventKind::Promoted)
        });
    }
    if now.complete && !before.complete {
        out.push(event(EventKind::Completed));
    }
    out
}

/// The node that sends `event` as a notification, so that the fleet sends it once: the host it
/// is about (the failed or halting host, the host that took the operator's command), alive or
/// not as this host sees it (it is alive when it does it, and views of who is alive differ for
/// a while after a restart); for the events no one host causes (release seen, started,
/// completed), and when that host is no member, the group's first live member by node id,
/// `None` when none is alive. Such a [`coordinated`] event is best sent once the sender has
/// heard the mesh for a while.
pub fn sender(event: &FleetEvent, fleet: &Fleet) -> Option<String> {
    let member = |id: &str, alive: bool| {
        fleet.nodes.iter().any(|n| {
            n.id == id
                && (n.alive || !alive)
                && !n.duplicate
                && n.groups.iter().any(|g| g.name == event.group)
        })
    };
    let alive_member = |id: &str| member(id, true);
    let actor = match event.event {
        EventKind::HostFailed | EventKind::Halted => event.host.clone(),
        EventKind::Resumed | EventKind::Promoted | EventKind::RolledBack => event
            .by
            .as_deref()
            .and_then(|by| by.rsplit_once('@'))
            .map(|(_, node)| node.to_owned()),
        EventKind::ReleaseSeen | EventKind::RolloutStarted | EventKind::Completed => None,
    };
    if let Some(actor) = actor.filter(|a| member(a, false)) {
        return Some(actor);
    }
    // Nodes are sorted by id.
    fleet
        .nodes
        .iter()
        .map(|n| n.id.as_str())
        .find(|id| alive_member(id))
        .map(str::to_owned)
}

/// Whether the sender of `event` is chosen by who is alive (the group's first live member),
/// not by who did it: see [`sender`].
pub fn coordinated(event: &FleetEvent, fleet: &Fleet) -> bool {
    let actor = match event.event {
        EventKind::HostFailed | EventKind::Halted => event.host.as_deref(),
        EventKind::Resumed | EventKind::Promoted | EventKind::RolledBack => event
            .by
            .as_deref()
            .and_then(|by| by.rsplit_once('@'))
            .map(|(_, node)| node),
        EventKind::ReleaseSeen | EventKind::RolloutStarted | EventKind::Completed => None,
    };
    !actor.is_some_and(|a| {
        fleet
            .nodes
            .iter()
            .any(|n| n.id == a && n.groups.iter().any(|g| g.name == event.group))
    })
}

/// Most releases a history keeps (the newest).
pub const MAX_ENTRIES: usize = 50;

/// Most events one release's entry keeps (the first ones, and always the last).
pub const MAX_EVENTS: usize = 40;

/// A group's recent releases, newest first, as this host saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The group.
    pub group: String,
    /// Its releases, newest first.
    pub entries: Vec<Entry>,
}

/// One release of a group and what happened to its rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The deployment.
    pub deployment: String,
    /// The release.
    pub revision: String,
    /// Who signed it (the principal of `allowed_signers`), as this host verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// When this host first saw it (RFC 3339).
    pub seen: String,
    /// When its rollout started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When every member was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// `in-progress`, `completed`, `halted` or `superseded` (a newer release came first).
    pub result: String,
    /// What happened, oldest first.
    pub events: Vec<FleetEvent>,
}

impl Entry {
    /// How long its rollout took, as a span (`3m30s`), once it finished.
    pub fn took(&self) -> Option<String> {
        crate::time::between(self.started.as_deref()?, self.finished.as_deref()?)
    }
}

impl History {
    /// An empty history of `group`.
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            entries: Vec::new(),
        }
    }

    /// Adds `event` to its release's entry (a new entry for a new release; the entries of
    /// releases still going on before it are superseded).
    pub fn record(&mut self, event: &FleetEvent) {
        let at = self
            .entries
            .iter()
            .position(|e| e.deployment == event.deployment);
        let entry = match at {
            Some(i) => &mut self.entries[i],
            None => {
                for older in &mut self.entries {
                    if older.result == "in-progress" {
                        "superseded".clone_into(&mut older.result);
                    }
                }
                self.entries.insert(
                    0,
                    Entry {
                        deployment: event.deployment.clone(),
                        revision: event.revision.clone(),
                        seen: event.at.clone(),
                        result: "in-progress".to_owned(),
                        ..Entry::default()
                    },
                );
                self.entries.truncate(MAX_ENTRIES);
                &mut self.entries[0]
            }
        };
        match event.event {
            EventKind::RolloutStarted => entry.started = Some(event.at.clone()),
            EventKind::Halted => "halted".clone_into(&mut entry.result),
            EventKind::Resumed => "in-progress".clone_into(&mut entry.result),
            EventKind::Completed => {
                entry.finished = Some(event.at.clone());
                "completed".clone_into(&mut entry.result);
            }
            _ => {}
        }
        if entry.events.len() >= MAX_EVENTS {
            entry.events.pop();
        }
        entry.events.push(event.clone());
    }

    /// Notes who signed `revision`'s release, on its entry if there is one without a signer.
    pub fn signed(&mut self, revision: &str, signer: &str) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.revision == revision && e.signer.is_none())
        {
            entry.signer = Some(signer.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{FleetGroup, FleetNode, FleetNodeGroup, HaltInfo};

    const AT: &str = "2026-12-07T10:00:00Z";

    /// Three members `a`, `b`, `c` of `web` (alive as given) seen from `b`, on `d-2` (v2).
    fn fleet(alive: [bool; 3], change: impl FnOnce(&mut FleetGroup)) -> Fleet {
        let mut line = FleetGroup {
            name: "web".into(),
            deployment: Some("d-2".into()),
            target: Some("v2".into()),
            total: 3,
            ..FleetGroup::default()
        };
        change(&mut line);
        Fleet {
            node: "b".into(),
            nodes: ["a", "b", "c"]
                .iter()
                .zip(alive)
                .map(|(id, alive)| FleetNode {
                    id: (*id).into(),
                    alive,
                    duplicate: false,
                    groups: vec![FleetNodeGroup {
                        name: "web".into(),
                        phase: "waiting".into(),
                        ..FleetNodeGroup::default()
                    }],
                })
                .collect(),
            groups: vec![line],
        }
    }

    fn kinds(events: &[FleetEvent]) -> Vec<EventKind> {
        events.iter().map(|e| e.event).collect()
    }

    fn halt(host: &str) -> HaltInfo {
        HaltInfo {
            host: host.into(),
            reason: format!("{host} failed: ValidateService exit 1"),
            output: vec!["HTTP 500".into()],
            ..HaltInfo::default()
        }
    }

    #[test]
    fn a_new_release_is_seen_then_each_change_is_told_once() {
        let seen = fleet([true; 3], |_| {});
        let first = events("web", &Seen::default(), &seen, AT);
        assert_eq!(kinds(&first), [EventKind::ReleaseSeen]);
        assert_eq!(
            (first[0].revision.as_str(), first[0].node.as_str()),
            ("v2", "b")
        );
        let before = Seen::of(&seen, "web");
        assert!(events("web", &before, &seen, AT).is_empty(), "nothing new");

        let mut failed = fleet([true; 3], |g| {
            g.running = 1;
            g.failed = 1;
            g.halted = Some(halt("c"));
        });
        failed.nodes[2].groups[0].failure = Some("ValidateService exit 1".into());
        let told = events("web", &before, &failed, AT);
        assert_eq!(
            kinds(&told),
            [
                EventKind::RolloutStarted,
                EventKind::HostFailed,
                EventKind::Halted
            ]
        );
        assert_eq!(told[1].host.as_deref(), Some("c"));
        assert_eq!(told[1].output, ["HTTP 500"]);
        assert_eq!(
            told[2].reason.as_deref(),
            Some("c failed: ValidateService exit 1")
        );
        let before = Seen::of(&failed, "web");

        let resumed = fleet([true; 3], |g| {
            g.running = 1;
            g.resumed_by = Some("alice@a".into());
        });
        let told = events("web", &before, &resumed, AT);
        assert_eq!(kinds(&told), [EventKind::Resumed]);
        assert_eq!(told[0].by.as_deref(), Some("alice@a"));

        let done = fleet([true; 3], |g| {
            g.done = 3;
            g.promoted_by = Some("bob@c".into());
        });
        let told = events("web", &Seen::of(&resumed, "web"), &done, AT);
        assert_eq!(kinds(&told), [EventKind::Promoted, EventKind::Completed]);
    }

    #[test]
    fn a_rollback_is_told_as_one_with_who_ordered_and_signed_it() {
        let rollback = |g: &mut FleetGroup| {
            g.rollback = Some(crate::status::RollbackInfo {
                from: "v3".into(),
                by: "alice@a".into(),
                signer: "ops@example.com".into(),
                issued: AT.into(),
            });
        };
        let view = fleet([true; 3], rollback);
        let told = events("web", &Seen::default(), &view, AT);
        assert_eq!(kinds(&told), [EventKind::RolledBack]);
        assert_eq!(told[0].by.as_deref(), Some("alice@a"));
        assert_eq!(
            told[0].reason.as_deref(),
            Some("back from v3 (order signed by ops@example.com)")
        );
        assert_eq!(sender(&told[0], &view).as_deref(), Some("a"));
        assert!(events("web", &Seen::of(&view, "web"), &view, AT).is_empty());
        // The order reached this view after the deployment it starts: told once it shows.
        let before = Seen::of(&fleet([true; 3], |_| {}), "web");
        let told = events("web", &before, &view, AT);
        assert_eq!(kinds(&told), [EventKind::RolledBack]);
    }

    #[test]
    fn a_look_after_a_restart_tells_what_happened_meanwhile_and_not_again() {
        // The last look before the restart: v2 halted.
        let halted = fleet([true; 3], |g| {
            g.failed = 1;
            g.halted = Some(halt("c"));
        });
        let kept = Seen::of(&halted, "web");
        let text = serde_json::to_string(&kept).expect("json");
        let kept: Seen = serde_json::from_str(&text).expect("read back");
        // Meanwhile a newer release came and finished.
        let next = fleet([true; 3], |g| {
            g.deployment = Some("d-3".into());
            g.target = Some("v3".into());
            g.done = 3;
        });
        let told = events("web", &kept, &next, AT);
        assert_eq!(
            kinds(&told),
            [
                EventKind::ReleaseSeen,
                EventKind::RolloutStarted,
                EventKind::Completed
            ]
        );
        assert!(events("web", &Seen::of(&next, "web"), &next, AT).is_empty());
    }

    #[test]
    fn each_event_has_one_sender_the_host_it_is_about_or_the_first_live_member() {
        let view = fleet([true; 3], |g| g.halted = Some(halt("c")));
        let told = events("web", &Seen::default(), &view, AT);
        let halted = told
            .iter()
            .find(|e| e.event == EventKind::Halted)
            .expect("halted");
        assert_eq!(sender(halted, &view).as_deref(), Some("c"));
        let seen = &told[0];
        assert_eq!(sender(seen, &view).as_deref(), Some("a"));
        assert!(!coordinated(halted, &view) && coordinated(seen, &view));
        // Others seeing the halting host dead do not tell it too; the first live member tells
        // what no one host did.
        let view = fleet([false, true, false], |g| g.halted = Some(halt("c")));
        assert_eq!(sender(halted, &view).as_deref(), Some("c"));
        assert_eq!(sender(seen, &view).as_deref(), Some("b"));
        // A host that is no member: the first live member.
        let stranger = FleetEvent {
            host: Some("z".into()),
            ..halted.clone()
        };
        assert_eq!(sender(&stranger, &view).as_deref(), Some("b"));
        assert!(coordinated(&stranger, &view));
        // An operator's command: the host that took it.
        let promoted = FleetEvent {
            event: EventKind::Promoted,
            by: Some("alice@c".into()),
            ..seen.clone()
        };
        assert_eq!(
            sender(&promoted, &fleet([true; 3], |_| {})).as_deref(),
            Some("c")
        );
        // Nobody seen alive: the member who took it, still.
        assert_eq!(
            sender(&promoted, &fleet([false; 3], |_| {})).as_deref(),
            Some("c")
        );
        assert_eq!(sender(seen, &fleet([false; 3], |_| {})), None);
    }

    #[test]
    fn a_history_keeps_releases_newest_first_with_their_results() {
        let mut history = History::new("web");
        let view = fleet([true; 3], |g| g.halted = Some(halt("c")));
        for event in events("web", &Seen::default(), &view, AT) {
            history.record(&event);
        }
        history.signed("v2", "release@example.com");
        assert_eq!(history.entries.len(), 1);
        assert_eq!(history.entries[0].result, "halted");
        assert_eq!(
            history.entries[0].signer.as_deref(),
            Some("release@example.com")
        );
        let next = fleet([true; 3], |g| {
            g.deployment = Some("d-3".into());
            g.target = Some("v3".into());
        });
        for event in events(
            "web",
            &Seen::of(&view, "web"),
            &next,
            "2026-12-07T11:00:00Z",
        ) {
            history.record(&event);
        }
        let results: Vec<(&str, &str)> = history
            .entries
            .iter()
            .map(|e| (e.revision.as_str(), e.result.as_str()))
            .collect();
        assert_eq!(results, [("v3", "in-progress"), ("v2", "halted")]);
        for i in 0..(MAX_ENTRIES + 5) {
            history.record(&FleetEvent {
                deployment: format!("d-x{i}"),
                ..history.entries[0].events[0].clone()
            });
        }
        assert_eq!(history.entries.len(), MAX_ENTRIES);
        assert_eq!(history.entries[1].result, "superseded");
    }
}
