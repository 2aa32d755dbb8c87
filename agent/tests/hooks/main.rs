//! Hook scripts run for real: shell scripts, process groups, signals, users and scripts.log.

mod basics;
mod helpers;
mod processes;
mod users;
