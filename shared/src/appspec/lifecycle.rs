//! The lifecycle events of an in-place deployment and the order CodeDeploy runs them in.

/// How an event is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Runs the AppSpec's scripts for the event from the **new** revision.
    Scripts,
    /// Runs the scripts of the **previous successful** revision (nothing on a first deployment).
    PreviousScripts,
    /// An action of the agent itself: unpacking or installing the bundle.
    Agent,
}

/// One lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The name as written in an AppSpec.
    pub name: &'static str,
    /// How the event is carried out.
    pub kind: EventKind,
    /// Whether it only runs when the AppSpec defines it (the traffic events).
    pub optional: bool,
}

const fn event(name: &'static str, kind: EventKind, optional: bool) -> Event {
    Event {
        name,
        kind,
        optional,
    }
}

/// The agent action that unpacks the bundle.
pub const DOWNLOAD_BUNDLE: &str = "DownloadBundle";
/// The agent action that copies files and applies permissions.
pub const INSTALL: &str = "Install";

/// In-place order, with the traffic events where CodeDeploy puts them around a load balancer.
pub const IN_PLACE: [Event; 11] = [
    event("BeforeBlockTraffic", EventKind::PreviousScripts, true),
    event("AfterBlockTraffic", EventKind::PreviousScripts, true),
    event("ApplicationStop", EventKind::PreviousScripts, false),
    event(DOWNLOAD_BUNDLE, EventKind::Agent, false),
    event("BeforeInstall", EventKind::Scripts, false),
    event(INSTALL, EventKind::Agent, false),
    event("AfterInstall", EventKind::Scripts, false),
    event("ApplicationStart", EventKind::Scripts, false),
    event("ValidateService", EventKind::Scripts, false),
    event("BeforeAllowTraffic", EventKind::Scripts, true),
    event("AfterAllowTraffic", EventKind::Scripts, true),
];

/// Events that can never carry scripts: agent actions and the load balancer steps of the service.
pub const RESERVED: [&str; 6] = [
    "Start",
    DOWNLOAD_BUNDLE,
    INSTALL,
    "BlockTraffic",
    "AllowTraffic",
    "End",
];

/// Looks an event up by its AppSpec name.
pub fn find(name: &str) -> Option<&'static Event> {
    IN_PLACE.iter().find(|event| event.name == name)
}

/// Why a deployment refuses `spec`: hooks for events an in-place deployment never runs (agent
/// actions, load balancer steps, misspellings, custom events), as the CodeDeploy agent refuses
/// them at its Install step. `None` when every hook is for an event it runs. `shoal appspec
/// check` and a deployment give this same sentence.
pub fn refused_hooks(spec: &super::AppSpec) -> Option<String> {
    let refused: Vec<&str> = spec
        .hooks
        .iter()
        .map(|h| h.event.as_str())
        .filter(|e| find(e).is_none_or(|ev| ev.kind == EventKind::Agent))
        .collect();
    (!refused.is_empty()).then(|| {
        format!(
            "hooks for {} are not lifecycle events of an in-place deployment; rename them to one \
             of ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService \
             or a traffic event",
            refused.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_revision_events_come_before_the_bundle_is_unpacked() {
        let unpack = IN_PLACE
            .iter()
            .position(|e| e.name == DOWNLOAD_BUNDLE)
            .expect("DownloadBundle is an event");
        for (i, event) in IN_PLACE.iter().enumerate() {
            assert_eq!(
                event.kind == EventKind::PreviousScripts,
                i < unpack,
                "{}",
                event.name
            );
        }
    }

    #[test]
    fn finds_events_by_name() {
        assert_eq!(
            find("ValidateService").map(|e| e.kind),
            Some(EventKind::Scripts)
        );
        assert!(find("CustomEvent").is_none());
    }
}
