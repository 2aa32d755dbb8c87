#!/usr/bin/env bash
# Upgrade story (not CI): builds shoal as of an older revision and as of this tree, then runs
# the mesh test that moves five agents from the older build to this one in the middle of a
# rollout, one at a time with SIGTERM as the packages' try-restart does
# (agent/tests/mesh_rollout: an_agent_upgrade_across_the_mesh_mid_rollout_completes_with_no_halt).
#
# Usage: scripts/upgrade-mesh.sh OLD_REV [hook|turn]
#   hook (default)  each host is upgraded in the middle of its hook
#   turn            each host is upgraded once it is done with the release (for builds from
#                   before planned stops were told from failures, whose stop halted the group)
# The older build goes to $CARGO_TARGET_DIR/upgrade-from (default target/upgrade-from) and is
# kept for the next run: a first run builds everything once more (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/upgrade-mesh.sh OLD_REV [hook|turn]"
rev=${1:?$usage}
at=${2:-hook}
case $at in hook|turn) ;; *) echo "$usage (not '$at')"; exit 2 ;; esac
commit=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "$rev is not a revision of this repository; $usage"; exit 2; }
root=${CARGO_TARGET_DIR:-$PWD/target}/upgrade-from
src=$root/src-${commit:0:12}
if [ ! -f "$src/Cargo.toml" ]; then
  rm -rf "$src.part" && mkdir -p "$src.part"
  # Files dated now, not at the commit: cargo would otherwise take another revision's crates
  # in the shared target dir (same names, older sources) for fresh.
  git archive "$commit" | tar -x -m -C "$src.part"
  mv "$src.part" "$src"
fi
echo "building shoal as of ${commit:0:12} ($(git log -1 --format=%s "$commit"))"
CARGO_TARGET_DIR=$root/target cargo build -q --manifest-path "$src/Cargo.toml" -p shoal-agent --bin shoal
SHOAL_UPGRADE_FROM=$root/target/debug/shoal SHOAL_UPGRADE_AT=$at \
  cargo test -q -p shoal-agent --test mesh_rollout an_agent_upgrade_across_the_mesh -- --ignored --nocapture
