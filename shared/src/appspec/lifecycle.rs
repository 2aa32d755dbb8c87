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

/// One event a deployment runs: a lifecycle event, or a custom one asked for by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The event's name, as an AppSpec writes it.
    pub name: String,
    /// How it is carried out.
    pub kind: EventKind,
    /// Whether it only runs when the AppSpec defines it.
    pub optional: bool,
}

/// The events a deployment runs, in order: CodeDeploy's in-place order, or a list given as
/// codedeploy-local's `--events` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrder {
    steps: Vec<Step>,
}

impl Default for RunOrder {
    fn default() -> Self {
        let steps = IN_PLACE
            .iter()
            .map(|e| Step {
                name: e.name.to_owned(),
                kind: e.kind,
                optional: e.optional,
            })
            .collect();
        Self { steps }
    }
}

/// Events that run the new revision's scripts and so cannot come before it is unpacked and
/// installed (BeforeInstall aside, which may come before Install).
const AFTER_INSTALL: [&str; 5] = [
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

impl RunOrder {
    /// The events of `list`, in its order, as codedeploy-local runs them: DownloadBundle and
    /// Install run first when the list leaves them out; a name that is no lifecycle event is a
    /// custom event, whose scripts come from the new revision. Every event listed runs, the
    /// traffic ones too. Refused, in one sentence: an empty name, a step of the CodeDeploy
    /// service, and the orders codedeploy-local refuses.
    pub fn from_list(list: &[String]) -> Result<Self, String> {
        let known = |name: &str| format!("`{name}`");
        if let Some(name) = list.iter().find(|n| n.trim().is_empty()) {
            return Err(format!(
                "--events has an empty name ({}); separate event names with single commas",
                known(name)
            ));
        }
        if let Some(name) = list.iter().find(|n| {
            RESERVED.contains(&n.as_str()) && !matches!(n.as_str(), DOWNLOAD_BUNDLE | INSTALL)
        }) {
            return Err(format!(
                "--events names {}, a step of the CodeDeploy service that no agent runs; \
                 leave it out",
                known(name)
            ));
        }
        let before = |stop: &'static str| list.iter().take_while(move |n| n.as_str() != stop);
        if list.iter().any(|n| n == DOWNLOAD_BUNDLE)
            && let Some(name) = before(DOWNLOAD_BUNDLE)
                .find(|n| n.as_str() == INSTALL || AFTER_INSTALL.contains(&n.as_str()))
        {
            return Err(format!(
                "--events puts {} before DownloadBundle; only BeforeBlockTraffic, \
                 AfterBlockTraffic and ApplicationStop (the previous revision's) can come before it",
                known(name)
            ));
        }
        if list.iter().any(|n| n == INSTALL)
            && let Some(name) = before(INSTALL).find(|n| AFTER_INSTALL.contains(&n.as_str()))
        {
            return Err(format!(
                "--events puts {} before Install; only BeforeBlockTraffic, AfterBlockTraffic, \
                 ApplicationStop, DownloadBundle and BeforeInstall can come before it",
                known(name)
            ));
        }
        let mut names: Vec<&str> = [DOWNLOAD_BUNDLE, INSTALL]
            .into_iter()
            .filter(|required| !list.iter().any(|n| n == required))
            .collect();
        names.extend(list.iter().map(String::as_str));
        let steps = names
            .into_iter()
            .map(|name| Step {
                name: name.to_owned(),
                kind: find(name).map_or(EventKind::Scripts, |e| e.kind),
                optional: false,
            })
            .collect();
        Ok(Self { steps })
    }

    /// The events, in the order they run.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether `event` is a custom event this order runs.
    pub fn is_custom(&self, event: &str) -> bool {
        find(event).is_none() && self.steps.iter().any(|s| s.name == event)
    }

    /// Whether an AppSpec warning at `key` is about hooks for a custom event this order runs,
    /// which are no mistake here.
    pub fn expects(&self, key: &str) -> bool {
        key.strip_prefix("hooks.")
            .is_some_and(|event| self.is_custom(event))
    }
}

/// Why a deployment refuses `spec`: hooks for events an in-place deployment never runs (agent
/// actions, load balancer steps, misspellings, custom events `order` does not run), as the
/// CodeDeploy agent refuses them at its Install step. `None` when every hook is for an event
/// it runs. `shoal appspec check` and a deployment give this same sentence.
pub fn refused_hooks(spec: &super::AppSpec, order: &RunOrder) -> Option<String> {
    let refused: Vec<&str> = spec
        .hooks
        .iter()
        .map(|h| h.event.as_str())
        .filter(|e| !order.is_custom(e))
        .filter(|e| find(e).is_none_or(|ev| ev.kind == EventKind::Agent))
        .collect();
    (!refused.is_empty()).then(|| {
        format!(
            "hooks for {} are not lifecycle events of an in-place deployment; rename them to one \
             of ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService \
             or a traffic event (or run a custom event by name with --events)",
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

    fn order(list: &str) -> Result<Vec<(String, EventKind)>, String> {
        let list: Vec<String> = list.split(',').map(str::to_owned).collect();
        RunOrder::from_list(&list)
            .map(|o| o.steps().iter().map(|s| (s.name.clone(), s.kind)).collect())
    }

    fn names(list: &str) -> Vec<String> {
        order(list)
            .expect(list)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn a_list_runs_as_codedeploy_local_runs_it() {
        assert_eq!(
            names("ApplicationStart"),
            ["DownloadBundle", "Install", "ApplicationStart"]
        );
        assert_eq!(
            names("ApplicationStop,DownloadBundle,Install,ApplicationStart"),
            [
                "ApplicationStop",
                "DownloadBundle",
                "Install",
                "ApplicationStart"
            ]
        );
        assert_eq!(
            names("Install,Warmup"),
            ["DownloadBundle", "Install", "Warmup"]
        );
        assert_eq!(
            order("Warmup").expect("custom")[2],
            ("Warmup".to_owned(), EventKind::Scripts),
            "a custom event runs the new revision's scripts"
        );
        assert_eq!(
            order("ApplicationStop").expect("previous")[2].1,
            EventKind::PreviousScripts
        );
    }

    #[test]
    fn orders_codedeploy_local_refuses_are_refused() {
        for (list, word) in [
            (
                "ApplicationStart,DownloadBundle",
                "`ApplicationStart` before DownloadBundle",
            ),
            ("Install,DownloadBundle", "`Install` before DownloadBundle"),
            (
                "ValidateService,Install",
                "`ValidateService` before Install",
            ),
            (
                "BlockTraffic",
                "`BlockTraffic`, a step of the CodeDeploy service",
            ),
            ("ApplicationStop,,ApplicationStart", "an empty name"),
        ] {
            let error = order(list).expect_err(list);
            assert!(error.contains(word), "{list}: {error}");
        }
        assert!(order("BeforeInstall,DownloadBundle").is_ok());
        assert!(order("ApplicationStop,DownloadBundle,BeforeInstall,Install").is_ok());
    }

    #[test]
    fn only_custom_events_the_order_runs_may_have_hooks() {
        let spec = crate::appspec::parse(
            "version: 0.0\nos: linux\nhooks:\n  Warmup:\n    - location: w.sh\n",
        )
        .expect("valid")
        .spec;
        let refused = refused_hooks(&spec, &RunOrder::default()).expect("refused");
        assert!(refused.contains("Warmup"), "{refused}");
        let order = RunOrder::from_list(&["Warmup".to_owned()]).expect("valid");
        assert_eq!(refused_hooks(&spec, &order), None);
    }
}
