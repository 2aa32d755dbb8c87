//! The real `shoal agent` binary on one host: a temp data dir, the status endpoint on port 0,
//! and a real channel (a local git repository with tags signed by `ssh-keygen` keys, or
//! moto_server S3 with releases made by `shoal release`). Each story runs over both channels:
//! a release deployed, a failing one reverted, a refused one shown, `kill -9` mid-hook
//! recovered, SIGTERM mid-hook handled within the grace.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod config;
mod git;
mod groups;
mod journald;
mod lock;
mod reload;
mod restarts;
mod runas;
mod store;
mod story;
mod world;

/// Declares each story (a `fn(Make)` in module `$module`) once per channel.
macro_rules! over_channels {
    ($module:ident: $($story:ident),* $(,)?) => {
        $(
            mod $story {
                #[test]
                fn git() {
                    crate::$module::$story(crate::git::GitChannel::boxed);
                }
                #[test]
                fn store() {
                    crate::$module::$story(crate::store::StoreChannel::boxed);
                }
            }
        )*
    };
}

over_channels!(
    story: deploys_reverts_and_refuses,
    a_failing_health_check_reverts,
    without_a_health_check_min_healthy_time_still_holds,
    a_release_carries_its_own_health_check,
    the_running_release_is_watched_with_its_own_check,
    a_release_can_go_past_a_broken_application_stop,
    an_operator_rolls_back_below_the_floor_and_stays_back,
);
/// The store channel has no copy of a release's manifest and bundle to go back to without its
/// store; a git channel has its mirror.
#[test]
fn a_rollback_goes_ahead_while_the_git_origin_is_down() {
    story::a_rollback_goes_ahead_while_the_git_origin_is_down(git::GitChannel::boxed);
}

over_channels!(
    restarts: kill_9_mid_hook_runs_the_release_again_on_restart,
    sigterm_lets_the_hook_finish_then_exits,
    sigterm_kills_a_hook_that_outlives_the_grace,
    a_release_verified_before_a_crash_is_deployed_after_it,
    a_deployment_cut_short_before_it_changed_anything_runs_again,
    kill_9_in_a_halts_revert_finishes_that_revert_on_restart,
    kill_9_thrice_keeps_the_rollout_in_the_journal,
);
