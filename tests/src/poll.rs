//! Waiting for a condition in tests: poll it on a short interval until a deadline, never sleep
//! a fixed time and hope.

use std::time::{Duration, SystemTime};

/// How long to wait between two probes.
const INTERVAL: Duration = Duration::from_millis(20);

/// Calls `probe` until it returns `Some`, or `timeout` has passed; `None` means it timed out.
/// The deadline is read from the wall clock (`std::time::Instant` is banned in this workspace so
/// that product code goes through `tokio::time`); a clock step only lengthens or shortens a wait.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = SystemTime::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if SystemTime::now() >= deadline {
            return None;
        }
        pause();
    }
}

/// The one pause between probes. The ban on `std::thread::sleep` is about sleeping *instead of*
/// checking a condition; here the condition is checked before and after, under a deadline.
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(INTERVAL);
}
