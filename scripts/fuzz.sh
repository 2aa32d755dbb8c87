#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers and decoders that read untrusted input (fuzz/, with
# cargo-fuzz and libFuzzer; needs the nightly toolchain and `cargo install cargo-fuzz`).
# Builds every target, writes seed inputs, then runs each target for SECONDS (default 600),
# one after another, and appends one line per target to fuzz/summary.txt (and stdout).
# Exits nonzero if any target crashed, hung or ran out of memory; the input that did it is in
# fuzz/artifacts/<target>/ and the libFuzzer output in fuzz/logs/<target>.log; replay it with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# APPSPEC_CORPUS names a directory of real appspec files to seed the appspec target with
# (default /work/shared/corpus/appspec when it exists); FUZZ_TARGET_DIR the build directory
# (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

all=(appspec allowed_signers signed_tag release_manifest unpack install gossip_values http_route sealed_open)
seconds=600
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "no fuzz target $t (targets: ${all[*]})" >&2; exit 2; }
done
appspec_corpus=${APPSPEC_CORPUS:-/work/shared/corpus/appspec}

# The stable builds' target directory is not for nightly and sanitizer builds.
unset CARGO_TARGET_DIR
build=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then build=(--target-dir "$(realpath -m "$FUZZ_TARGET_DIR")"); fi
mkdir -p fuzz/logs
echo "building the fuzz targets (log: fuzz/logs/build.log)"
if ! cargo +nightly fuzz build ${build[@]+"${build[@]}"} > fuzz/logs/build.log 2>&1; then
  tail -n 40 fuzz/logs/build.log >&2
  echo "the fuzz targets do not build" >&2
  exit 1
fi

# Seeds: small valid inputs of each format, generated here rather than kept in the tree.
seeds=fuzz/seeds
rm -rf "$seeds"
for t in "${all[@]}"; do mkdir -p "$seeds/$t"; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp examples/hello-app/appspec.yml "$seeds/appspec/hello-app.yml"
printf 'version: 0.0\nos: linux\n' > "$seeds/appspec/minimal.yml"

ssh-keygen -q -t ed25519 -N '' -C seed@example -f "$work/key"
public=$(cut -d' ' -f1,2 "$work/key.pub")
printf '%s\n' "release@example.com $public" > "$seeds/allowed_signers/plain"
printf '%s\n' "# ops" "*@example.com,!bot@example.com namespaces=\"git,shoal-release\",valid-after=\"20240101\",valid-before=\"20300101Z\" $public comment" \
  "ci@example.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=" > "$seeds/allowed_signers/options"

# signed_tag: the first byte picks raw tag bytes (even) or a payload the target signs (odd).
tagger="tagger Release Bot <release@example.com> 1795291060 +0000"
printf 'object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1.0.0\n%s\n\nrelease v1.0.0\n' \
  "$tagger" > "$work/payload"
ssh-keygen -q -Y sign -f "$work/key" -n git "$work/payload" 2>/dev/null
{ printf '0'; cat "$work/payload" "$work/payload.sig"; } > "$seeds/signed_tag/raw"
{ printf '1'; cat "$work/payload"; } > "$seeds/signed_tag/payload"
{ printf '0'; cat "$work/payload"; printf -- '-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n'; } \
  > "$seeds/signed_tag/pgp"

sha=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
manifest="version: v1.4.0\ncreated: 2026-11-21T19:57:40Z\nbundle:\n  path: bundle.tar.gz\n  sha256: $sha\n  size: 1234\n"
printf "$manifest" > "$seeds/release_manifest/plain"
printf "${manifest}rollout:\n  strategy: canary\n  canary: 1\n  max_failures: 0\n" > "$seeds/release_manifest/canary"
printf "${manifest}rollout:\n  strategy: linear\n  linear:\n    step: 25%%\n    every: 10m\n" > "$seeds/release_manifest/linear"
printf 'v1.4.0\n2.0.0-rc.1+build.5\n' > "$seeds/release_manifest/versions"

# unpack: one small tree as tar, v7 tar, tar.gz and zip, with a symlink and a hard link.
tree="$work/tree"
mkdir -p "$tree/app/scripts"
printf 'version: 0.0\nos: linux\n' > "$tree/app/appspec.yml"
printf '#!/bin/sh\ntrue\n' > "$tree/app/scripts/start.sh"
chmod 755 "$tree/app/scripts/start.sh"
ln -s scripts/start.sh "$tree/app/start"
ln "$tree/app/appspec.yml" "$tree/app/appspec.yaml"
tar --format=ustar -b1 -cf "$seeds/unpack/bundle.tar" -C "$tree" app
tar --format=v7 -b1 -cf "$seeds/unpack/v7.tar" -C "$tree/app" appspec.yml scripts
tar --format=gnu -b1 -czf "$seeds/unpack/bundle.tar.gz" -C "$tree/app" .
if command -v zip >/dev/null; then
  (cd "$tree/app" && zip -q -r --symlinks "$OLDPWD/$seeds/unpack/bundle.zip" .)
fi

printf '{"v":1,"groups":["web","api"]}' > "$seeds/gossip_values/groups"
printf '%s' '{"v":1,"revision":"v1","digest":"git:abc","target":{"id":"d-0123456789ab","revision":"v2","digest":"sha256:ff"},"step":"running","epoch":1,"failures":0,"reason":"x","health":"healthy","members":"0a1b2c3d"}' \
  > "$seeds/gossip_values/state"
printf '{"v":1,"id":"d-0123456789ab","epoch":2,"host":"a","reason":"ValidateService failed"}' > "$seeds/gossip_values/halt"
printf '{"v":1,"id":"d-0123456789ab","epoch":2}' > "$seeds/gossip_values/resume"
printf '{"v":1,"id":"d-0123456789ab"}' > "$seeds/gossip_values/promote"
printf 'g:web.eu-1:state' > "$seeds/gossip_values/key"

# http_route: the first byte picks the method (below 200: GET, HEAD, POST, ... in turn).
printf '\x00/v1/deployments/d-0123456789ab/log?offset=42' > "$seeds/http_route/log"
printf '\x00/v1/deployments/d-0123456789ab.2' > "$seeds/http_route/deployment"
printf '\x02/v1/groups/web.eu-1/halt' > "$seeds/http_route/halt"
printf '\x01/v1/fleet/' > "$seeds/http_route/fleet"
printf '\xc8BREW /metrics' > "$seeds/http_route/custom"

printf 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n# old\nICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n' \
  > "$seeds/sealed_open/keys"
printf '\x02\x00\x00\x00\x00\x00\x00\x01\x93\x00\x00\x00\x00nonce-nonce-nonce-nonce-ciphertext-and-tag-16' > "$seeds/sealed_open/datagram"

# install: choices, byte by byte (source, destination, mode, ACLs, types, behavior, then ops of
# the bundle and of what `nobody` plants); a few spread over the choices.
printf '\x00\x00\x00\x01\x02\x01\x01\x01\x02\x00\x01\x00\x00\x03\x02\x00\x03\x01\x03\x00\x01\x01\x04\x02\x03\x01\x00\x01\x05\x03\x00\x00\x00' > "$seeds/install/tree"
printf '\x01\x02\x03\x02\x01\x02\x00\x01\x01\x00\x01\x03\x00\x03\x01\x01\x03\x03\x02\x01\x01\x03\x03\x02\x0f\x07\x01\x00\x09' > "$seeds/install/links"

summary=fuzz/summary.txt
header=$(printf '%-18s %7s %12s %8s %7s %6s  %s' target seconds executions exec/s corpus cov findings)
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >> "$summary"
echo "$header" | tee -a "$summary"
failed=()
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus" "$seeds/$t")
  if [ "$t" = appspec ] && [ -d "$appspec_corpus" ]; then dirs+=("$appspec_corpus"); fi
  before=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  log=fuzz/logs/$t.log
  status=0
  started=$SECONDS
  cargo +nightly fuzz run ${build[@]+"${build[@]}"} "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    > "$log" 2>&1 || status=$?
  ran=$((SECONDS - started))
  after=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$stats")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<< "$stats")
  findings=$((after - before))
  verdict="$findings (exit $status)"
  if [ "$status" -ne 0 ] || [ "$findings" -gt 0 ]; then
    failed+=("$t")
    verdict="$verdict: see $log and $artifacts/"
  fi
  printf '%-18s %7s %12s %8s %7s %6s  %s\n' "$t" "$ran" "${execs:-?}" "${rate:-?}" \
    "${corp:-?}" "${cov:-?}" "$verdict" | tee -a "$summary"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
