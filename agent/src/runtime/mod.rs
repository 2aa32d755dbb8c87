//! The long-running agent: one task per group (watch the channel → verify → execute →
//! record), the journal that makes it crash-safe, health checks, signals and shutdown.
//!
//! The decisions live here as pure functions of the journal and the deployment record; the
//! group task ([`group`]) carries them out.

pub mod agent;
mod channel;
mod deploying;
mod group;
pub mod health;
pub mod journal;
mod observer;
pub mod orphans;
mod rollout;
mod settle;
pub mod signals;

pub(crate) use observer::HEALTH_CHECK;
pub(crate) use rollout::lock;
pub use rollout::{CommandFailed, GroupControl};

use shoal_shared::appspec::lifecycle;

use crate::execute::deployment::{DeploymentRecord, Status};
use journal::{InFlight, Installed, Journal};

/// A revert cut short is tried again this many times in all, then left to the operator.
pub const MAX_REVERT_ATTEMPTS: u32 = 3;

/// What to do once a deployment has failed or was cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing on the host changed: stay as is.
    Stay,
    /// Cut short before it changed anything: deploy the same release again.
    Again,
    /// Reinstall the last known good revision.
    Revert {
        /// The revision to go back to.
        to: Installed,
        /// The deployment that failed.
        failed: String,
        /// Which attempt of the revert this is (1 for the first).
        attempt: u32,
    },
    /// The host changed and cannot go back by itself: say why, in status.
    Failed {
        /// Why nothing is reverted.
        why: String,
    },
}

/// Whether a deployment touched the host: any event past DownloadBundle ran (the previous
/// revision's ApplicationStop included). A deployment refused at its AppSpec changed nothing.
pub fn changed_host(record: &DeploymentRecord) -> bool {
    record.events.iter().any(|event| {
        event.name != lifecycle::DOWNLOAD_BUNDLE && !matches!(event.status, Status::Skipped)
    })
}

/// After the deployment `in_flight` failed (or was cut short): revert to the last known good
/// revision when the policy says so and the host changed; a revert that failed is tried again
/// only when it was cut short, up to [`MAX_REVERT_ATTEMPTS`].
pub fn after_failure(
    journal: &Journal,
    in_flight: &InFlight,
    changed_host: bool,
    cut_short: bool,
) -> Next {
    let unchanged = if cut_short && in_flight.reverts.is_none() {
        Next::Again
    } else {
        Next::Stay
    };
    let Some(lkg) = &journal.last_known_good else {
        return if changed_host {
            Next::Failed {
                why: "there is no last known good revision on this host to go back to".into(),
            }
        } else {
            unchanged
        };
    };
    if let Some(failed) = &in_flight.reverts {
        let attempt = in_flight.attempt.max(1) + 1;
        if cut_short && attempt <= MAX_REVERT_ATTEMPTS {
            return Next::Revert {
                to: lkg.clone(),
                failed: failed.clone(),
                attempt,
            };
        }
        return Next::Failed {
            why: format!(
                "the revert to {} failed{}; fix the host and deploy a new release",
                lkg.revision,
                if cut_short {
                    format!(" {MAX_REVERT_ATTEMPTS} times")
                } else {
                    String::new()
                }
            ),
        };
    }
    if !changed_host {
        return unchanged;
    }
    if !in_flight.auto_revert {
        return Next::Failed {
            why: format!(
                "auto_revert is off; {} stays installed as it is",
                in_flight.revision
            ),
        };
    }
    Next::Revert {
        to: lkg.clone(),
        failed: in_flight.deployment_id.clone(),
        attempt: 1,
    }
}

/// Marks the record of a deployment the agent did not see end: the step it was at becomes
/// an interrupted event and the deployment is `interrupted`.
pub fn mark_interrupted(record: &mut DeploymentRecord, step: &str, now_ms: u64) {
    // Hooks that all passed leave the record `succeeded` while the health window runs.
    let in_health_window = step == HEALTH_CHECK && record.status == Status::Succeeded;
    if record.status == Status::InProgress || in_health_window {
        record.status = Status::Interrupted;
        record.error = Some(format!("interrupted by agent restart during {step}"));
        if !record.events.iter().any(|e| e.name == step) {
            record.events.push(crate::execute::deployment::EventRecord {
                name: step.to_owned(),
                status: Status::Interrupted,
                duration_ms: now_ms.saturating_sub(record.started_at_ms),
                scripts: Vec::new(),
                message: Some("the agent stopped while this step ran".to_owned()),
            });
        }
    }
    record.finished_at_ms.get_or_insert(now_ms);
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::execute::deployment::EventRecord;

    fn installed(revision: &str) -> Installed {
        Installed {
            revision: revision.into(),
            digest: format!("git:{revision}"),
            dir: PathBuf::from(format!("/root/web/d-{revision}")),
        }
    }

    fn in_flight(reverts: Option<&str>, auto_revert: bool) -> InFlight {
        InFlight {
            deployment_id: "d-2".into(),
            revision: "v2".into(),
            digest: "git:v2".into(),
            bundle: "/cache/v2".into(),
            reverts: reverts.map(str::to_owned),
            auto_revert,
            dir: None,
            step: "ValidateService".into(),
            started_ms: 0,
            attempt: u32::from(reverts.is_some()),
        }
    }

    fn journal(lkg: Option<&str>) -> Journal {
        Journal {
            last_known_good: lkg.map(installed),
            ..Journal::default()
        }
    }

    #[test]
    fn a_failed_deployment_goes_back_to_the_last_known_good_revision() {
        let next = after_failure(&journal(Some("v1")), &in_flight(None, true), true, false);
        assert_eq!(
            next,
            Next::Revert {
                to: installed("v1"),
                failed: "d-2".into(),
                attempt: 1
            }
        );
    }

    #[test]
    fn nothing_to_go_back_to_or_not_allowed_is_a_visible_failure() {
        let none = after_failure(&journal(None), &in_flight(None, true), true, false);
        assert!(matches!(none, Next::Failed { why } if why.contains("no last known good")));
        let off = after_failure(&journal(Some("v1")), &in_flight(None, false), true, false);
        assert!(matches!(off, Next::Failed { why } if why.contains("auto_revert is off")));
    }

    #[test]
    fn a_deployment_that_changed_nothing_is_not_reverted() {
        let next = after_failure(&journal(Some("v1")), &in_flight(None, true), false, false);
        assert_eq!(next, Next::Stay);
    }

    #[test]
    fn a_deployment_cut_short_before_it_changed_anything_runs_again() {
        for lkg in [None, Some("v1")] {
            let next = after_failure(&journal(lkg), &in_flight(None, true), false, true);
            assert_eq!(next, Next::Again, "last known good: {lkg:?}");
        }
    }

    #[test]
    fn a_revert_cut_short_is_retried_a_few_times_and_a_failed_one_is_not() {
        let mut revert = in_flight(Some("d-2"), true);
        let next = after_failure(&journal(Some("v1")), &revert, true, true);
        assert!(matches!(next, Next::Revert { attempt: 2, .. }), "{next:?}");
        revert.attempt = MAX_REVERT_ATTEMPTS;
        let next = after_failure(&journal(Some("v1")), &revert, true, true);
        assert!(matches!(next, Next::Failed { .. }), "{next:?}");
        revert.attempt = 1;
        let next = after_failure(&journal(Some("v1")), &revert, true, false);
        assert!(matches!(next, Next::Failed { why } if why.contains("revert to v1 failed")));
    }

    fn record(events: &[(&str, Status)]) -> DeploymentRecord {
        DeploymentRecord {
            deployment_id: "d-2".into(),
            group: "web".into(),
            application: "shop".into(),
            revision: "v2".into(),
            previous_revision: Some("v1".into()),
            reverts: None,
            bundle: "/cache/v2".into(),
            status: Status::InProgress,
            started_at_ms: 1_000,
            finished_at_ms: None,
            events: events
                .iter()
                .map(|(name, status)| EventRecord {
                    name: (*name).into(),
                    status: *status,
                    duration_ms: 1,
                    scripts: Vec::new(),
                    message: None,
                })
                .collect(),
            warnings: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn only_events_past_the_download_change_the_host() {
        assert!(!changed_host(&record(&[(
            "DownloadBundle",
            Status::Failed
        )])));
        assert!(changed_host(&record(&[
            ("DownloadBundle", Status::Succeeded),
            ("ApplicationStop", Status::Succeeded)
        ])));
    }

    #[test]
    fn an_interrupted_record_names_the_step_it_was_at() {
        let mut cut = record(&[("DownloadBundle", Status::Succeeded)]);
        mark_interrupted(&mut cut, "BeforeInstall", 4_000);
        assert_eq!(cut.status, Status::Interrupted);
        assert_eq!(
            cut.error.as_deref(),
            Some("interrupted by agent restart during BeforeInstall")
        );
        let last = cut.events.last().expect("event");
        assert_eq!(
            (last.name.as_str(), last.status),
            ("BeforeInstall", Status::Interrupted)
        );
        assert_eq!(cut.finished_at_ms, Some(4_000));
    }

    #[test]
    fn a_deployment_cut_short_in_its_health_window_is_interrupted_not_succeeded() {
        let mut cut = record(&[("ValidateService", Status::Succeeded)]);
        cut.status = Status::Succeeded;
        mark_interrupted(&mut cut, "HealthCheck", 4_000);
        assert_eq!(cut.status, Status::Interrupted);
        assert_eq!(
            cut.error.as_deref(),
            Some("interrupted by agent restart during HealthCheck")
        );
        let mut done = record(&[("ValidateService", Status::Succeeded)]);
        done.status = Status::Succeeded;
        mark_interrupted(&mut done, "ValidateService", 4_000);
        assert_eq!(
            done.status,
            Status::Succeeded,
            "only the health window reopens a result"
        );
    }
}
