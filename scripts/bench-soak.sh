#!/usr/bin/env bash
# Soak (not a test): one `shoal agent` taken through many releases, to show that what it holds
# stays bounded. Two groups share its data directory: `web` on a local git repository (watched)
# and `api` on an S3 store (moto_server from .venv, polled every second). Each round signs and
# publishes one release to each (`git tag -s`, `shoal release`) and waits until the agent runs
# both. Every SOAK_EVERY releases (default 20) it prints the agent's RSS, open fds and the size of
# each directory under its data dir; at the end, the targets of docs/performance.md.
#
# Usage: scripts/bench-soak.sh [RELEASES]    (default 200)
#   SHOAL_BIN=path         measure that binary instead of building the release one
#   SOAK_EVERY=20          sample every that many releases
#   SOAK_GIT_CHURN_KIB=4   new random content in each git release (the rest of the ~1 MiB bundle
#                          stays, as in a real repository); 1024 makes every release all new
#   SOAK_KEEP=1            keep the work directory (its path is printed)
#   SOAK_SMAPS=1           also copy the agent's /proc/PID/smaps to <work>/smaps.N at each
#                          sample (with SOAK_KEEP, to see which mappings grow)
set -euo pipefail
cd "$(dirname "$0")/.."
releases=${1:-200}
every=${SOAK_EVERY:-20}
churn_kib=${SOAK_GIT_CHURN_KIB:-4}
[[ $releases =~ ^[0-9]+$ && $releases -ge 1 ]] || { echo "RELEASES must be a number of releases, e.g. 200"; exit 2; }
[ -x .venv/bin/moto_server ] || { echo "run scripts/test.sh once first (it installs moto_server into .venv)"; exit 2; }

if [ -z "${SHOAL_BIN:-}" ]; then cargo build --release -q -p shoal-agent; fi
shoal=${SHOAL_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/shoal}
work=$(mktemp -d)
data=$work/data
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${SOAK_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# Polls `$@` every 50 ms until it succeeds; fails after $deadline seconds.
wait_for() {
  local deadline=$1; shift
  local end=$((SECONDS + deadline))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    python3 -c 'import time; time.sleep(0.05)'
  done
}

ssh-keygen -q -t ed25519 -N '' -C release@example -f "$work/key"
echo "release@example namespaces=\"git,shoal-release\" $(cut -d' ' -f1,2 "$work/key.pub")" > "$work/allowed_signers"

# One bundle layout for both groups: a 1 MiB payload, a file that changes with every release,
# and one hook.
bundle() { # dir app
  mkdir -p "$1/app" "$1/scripts"
  head -c 1048576 /dev/urandom > "$1/app/payload.bin"
  printf '#!/bin/sh\ntrue\n' > "$1/scripts/validate.sh"
  chmod +x "$1/scripts/validate.sh"
  cat > "$1/appspec.yml" <<YAML
version: 0.0
os: linux
files:
  - source: app
    destination: $work/installed/$2
hooks:
  ValidateService:
    - location: scripts/validate.sh
YAML
}

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git init -q -b main "$work/repo"
bundle "$work/repo" web
git_() { git -C "$work/repo" -c user.name=soak -c user.email=soak@example "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=soak AWS_SECRET_ACCESS_KEY=soak AWS_REGION=us-east-1
wait_for 30 curl -fs "http://127.0.0.1:$port/" -o /dev/null || { echo "moto_server did not start:"; cat "$work/moto.log"; exit 1; }
curl -fs -X PUT "http://127.0.0.1:$port/releases" >/dev/null
bundle "$work/api" api

publish() { # n
  local version=v1.0.$1
  head -c $((churn_kib * 1024)) /dev/urandom > "$work/repo/app/churn.bin"
  echo "$version" > "$work/repo/app/release.txt"
  git_ add -A
  git_ commit -q -m "$version"
  git_ -c gpg.format=ssh -c user.signingkey="$work/key.pub" tag -s "$version" -m "$version" -m "Shoal-Application: web"
  echo "$version" > "$work/api/app/release.txt"
  "$shoal" release --store s3://releases/api --application api --version "$version" --bundle "$work/api" \
    --key "$work/key" --endpoint "http://127.0.0.1:$port" --allow-http >/dev/null
}

cat > "$work/agent.yaml" <<YAML
node: { id: soak, data_dir: $data }
status: { listen: 127.0.0.1:0 }
log: { format: json, level: info }
groups:
  - name: web
    channel: { git: { url: $work/repo } }
    allowed_signers: $work/allowed_signers
    rollout: { min_healthy_time: 0s }
  - name: api
    channel: { store: { url: s3://releases/api, endpoint: "http://127.0.0.1:$port", allow_http: true, poll: 1s } }
    allowed_signers: $work/allowed_signers
    rollout: { min_healthy_time: 0s }
YAML

publish 1
"$shoal" agent --config "$work/agent.yaml" 2>"$work/agent.log" &
agent=$!
pids+=($agent)
# Both groups' deployments of $1 succeeded (the agent logs one line per deployment).
deployed() { [ "$(grep '"deployment succeeded"' "$work/agent.log" | grep -c "\"v$1\"")" -ge 2 ]; }
alive() { kill -0 "$agent" 2>/dev/null || { echo "the agent exited:"; tail -n 50 "$work/agent.log"; exit 1; }; }

kib() { du -sk "$1" 2>/dev/null | cut -f1 || echo 0; }
# RSS, anonymous memory and open fds: each the fewest of 5 reads 0.1 s apart, so a poll or
# download in flight at the moment of a read (a socket, the mirror's lock, a listing being
# parsed) does not count; what leaks stays in all five.
fewest_of_5() { # prints "rss anon fds"
  local rss anon fds r a f
  for _ in 1 2 3 4 5; do
    r=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent/status")
    a=$(awk '/^RssAnon/ { print $2 }' "/proc/$agent/status")
    f=$(find "/proc/$agent/fd" -mindepth 1 -maxdepth 1 | wc -l)
    if [ -z "${rss:-}" ] || [ "$r" -lt "$rss" ]; then rss=$r; fi
    if [ -z "${anon:-}" ] || [ "$a" -lt "$anon" ]; then anon=$a; fi
    if [ -z "${fds:-}" ] || [ "$f" -lt "$fds" ]; then fds=$f; fi
    python3 -c 'import time; time.sleep(0.1)'
  done
  echo "$rss $anon $fds"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
declare -A rss_at fds_at data_at
printf '%8s %8s %8s %5s %6s | %9s %9s %9s %9s %9s %9s | %5s %7s\n' \
  release "RSS MiB" "anon" fds tasks "data MiB" "cache" "trees" "mirrors" "deploy" "state" packs "s/rel"
sample() { # n
  local n=$1
  local rss anon fds tasks total cache trees mirrors deploy state packs
  read -r rss anon fds < <(fewest_of_5)
  tasks=$(awk '/^Threads/ { print $2 }' "/proc/$agent/status")
  total=$(kib "$data")
  cache=$(kib "$data/releases")
  trees=$(find "$data/releases/trees" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  mirrors=$(kib "$data/mirrors")
  deploy=$(kib "$data/deployment-root")
  state=$(( $(kib "$data/journal") + $(kib "$data/channels") ))
  packs=$(find "$data/mirrors" -name '*.pack' 2>/dev/null | wc -l)
  rss_at[$n]=$rss fds_at[$n]=$fds data_at[$n]=$total
  if [ -n "${SOAK_SMAPS:-}" ]; then cp "/proc/$agent/smaps" "$work/smaps.$n"; fi
  printf '%8s %8s %8s %5s %6s | %9s %9s %9s %9s %9s %9s | %5s %7s\n' "$n" "$(mib "$rss")" "$(mib "$anon")" \
    "$fds" "$tasks" "$(mib "$total")" "$(mib "$cache")" "$trees" "$(mib "$mirrors")" "$(mib "$deploy")" \
    "$(mib "$state")" "$packs" "$(awk -v s="$SECONDS" -v t="$started" -v n="$n" 'BEGIN { printf "%.2f", (s - t) / n }')"
}

started=$SECONDS
for n in $(seq 1 "$releases"); do
  [ "$n" -eq 1 ] || publish "$n"
  wait_for 120 deployed "1.0.$n" || { alive; echo "release v1.0.$n was not deployed by both groups within 120 s:"; tail -n 50 "$work/agent.log"; exit 1; }
  alive
  case $n in 20|40|"$releases") sample "$n" ;; *) [ $((n % every)) -ne 0 ] || sample "$n" ;; esac
done
elapsed=$((SECONDS - started))

echo "open fds at the end:"
for fd in /proc/$agent/fd/*; do readlink "$fd"; done | sed -E 's/:\[[0-9]+\]$//; s|^'"$work"'|<work>|' | sort | uniq -c | sed 's/^/  /'
git clone -q --mirror --no-local "$work/repo" "$work/fresh.git"
fresh=$(kib "$work/fresh.git")
mirror=$(kib "$data/mirrors")
last=$releases
echo
echo "$releases releases to each of 2 groups in ${elapsed} s; bundles ~1 MiB (git: ${churn_kib} KiB new a release)"
echo "mirror $(mib "$mirror") MiB; a fresh \`git clone --mirror --no-local\` of the repository $(mib "$fresh") MiB"
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT MET"; fi; }
if [ -n "${rss_at[20]:-}" ] && [ "$last" -gt 20 ]; then
  echo "RSS at $last within 10 % of release 20 ($(mib "${rss_at[20]}") -> $(mib "${rss_at[$last]}") MiB): $(verdict "${rss_at[$last]} <= 1.1 * ${rss_at[20]}")"
  echo "open fds at $last the same as at release 20 (${fds_at[20]} -> ${fds_at[$last]}): $(verdict "${fds_at[$last]} <= ${fds_at[20]}")"
fi
if [ -n "${data_at[40]:-}" ] && [ "$last" -gt 40 ]; then
  echo "data dir at $last within 10 % of release 40 ($(mib "${data_at[40]}") -> $(mib "${data_at[$last]}") MiB): $(verdict "${data_at[$last]} <= 1.1 * ${data_at[40]}")"
fi
echo "mirror no larger than 2 x a fresh mirror clone: $(verdict "$mirror <= 2 * $fresh")"
