//! The wall clock, read in one place. Only the agent's edges read it: the planner, the journal's
//! decisions and the simulator get `now` as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

use shoal_shared::time::format_rfc3339;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    format_rfc3339(unix_now())
}
