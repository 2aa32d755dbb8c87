#!/usr/bin/env bash
# Benchmark (not a test): a model of how a 1 GB release reaches every host of a fleet, fetched
# from the peers that already hold it (the agent's own Fetch, with 2, 1 and 4 copies served at
# once and 3 hosts polling the origin) against every host fetching it from the origin. 1 Gbit/s
# host links, a 10 Gbit/s origin, 30 s polls, 3 s of gossip; links shared max-min fairly.
# Runs the release build of the ignored `bench` test of tests/tests/spread.rs.
# Usage: scripts/bench-spread.sh [hosts, default 2000] [seed, default 1]
set -euo pipefail
cd "$(dirname "$0")/.."
export SHOAL_SPREAD_HOSTS=${1:-2000} SHOAL_SPREAD_SEED=${2:-1}
cargo build -q --release -p shoal-tests --tests
cargo test -q --release -p shoal-tests --test spread -- --ignored --exact bench --nocapture 2>&1 |
  grep -E '^(spread:|\|)|panicked'
