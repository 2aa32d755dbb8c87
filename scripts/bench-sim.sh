#!/usr/bin/env bash
# Benchmark (not a test): the deterministic simulator's throughput in simulated host-steps
# (planner steps) per second over mixed seeds on every core and over one 2,000-host rollout,
# the coordination overhead runs expected to progress measured against the progress bound,
# and how many gossip rounds a halt takes to reach every host of 100 and of 500.
# Runs the release build of the ignored `bench` test of tests/tests/simulator.rs.
# Usage: scripts/bench-sim.sh [mixed seeds, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
export SHOAL_SIM_BENCH_SEEDS=${1:-2000}
cargo build -q --release -p shoal-tests --tests
cargo test -q --release -p shoal-tests --test simulator -- --ignored --exact bench --nocapture 2>&1 |
  grep -E '^(mixed seeds|2,000 hosts|progress|halt propagation)|panicked|simulator:'
