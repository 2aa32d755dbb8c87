//! Hostile input to the agent's own readers: bundles (tar, tar.gz, zip) built from entries
//! that climb out, point out or lie about their size; installs into trees another user filled
//! with links; request lines for the status endpoint;
//! datagrams from the gossip port. Whatever arrives, nothing panics, nothing is written outside
//! the destination, no id or group read from a path could name another directory, and only
//! datagrams sealed under the cluster key open. The same entry points are fuzzed with coverage
//! guidance by `scripts/fuzz.sh` (fuzz/); these properties run on every test run.

mod bundles;
mod install;
mod routes;
mod sealed;
