#!/usr/bin/env bash
# Benchmark (not a test): the idle agent's resident memory and CPU. Two groups are configured
# as on a real host: one on a local git repository (watched, signed tag v1.0.0) and one on an
# S3 store (moto_server from .venv, polled every 30 s, release v1.0.0 made by `shoal release`).
# Once both have deployed v1.0.0 the agent is left alone for a window (default 60 s) and its
# CPU ticks and RSS are read from /proc. Usage: scripts/bench-idle.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-60}
[ -x .venv/bin/moto_server ] || { echo "run scripts/test.sh once first (it installs moto_server into .venv)"; exit 2; }

# SHOAL_BIN measures another build of the binary instead.
if [ -z "${SHOAL_BIN:-}" ]; then cargo build --release -q -p shoal-agent; fi
shoal=${SHOAL_BIN:-$PWD/target/release/shoal}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# A signing key and who may sign.
ssh-keygen -q -t ed25519 -N '' -C release@example -f "$work/key"
echo "release@example namespaces=\"git,shoal-release\" $(cut -d' ' -f1,2 "$work/key.pub")" > "$work/allowed_signers"

# A bundle with one file and one hook.
mkdir -p "$work/bundle/app" "$work/bundle/scripts"
echo v1 > "$work/bundle/app/version.txt"
printf '#!/bin/sh\ntrue\n' > "$work/bundle/scripts/validate.sh"
chmod +x "$work/bundle/scripts/validate.sh"
for app in web api; do
  cat > "$work/bundle/appspec-$app.yml" <<YAML
version: 0.0
os: linux
files:
  - source: app
    destination: $work/installed/$app
hooks:
  ValidateService:
    - location: scripts/validate.sh
YAML
done

# Group web: a local git repository with a signed tag.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git init -q -b main "$work/repo"
cp -r "$work/bundle/app" "$work/bundle/scripts" "$work/repo/"
cp "$work/bundle/appspec-web.yml" "$work/repo/appspec.yml"
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=bench -c user.email=bench@example commit -q -m v1
git -C "$work/repo" -c user.name=bench -c user.email=bench@example -c gpg.format=ssh \
  -c user.signingkey="$work/key.pub" tag -s v1.0.0 -m v1.0.0 -m "Shoal-Application: web"

# Group api: a release on moto S3.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; python3 -c 'import time; time.sleep(0.1)'; done
curl -fs -X PUT "http://127.0.0.1:$port/releases" >/dev/null
mkdir -p "$work/api-bundle"
cp -r "$work/bundle/app" "$work/bundle/scripts" "$work/api-bundle/"
cp "$work/bundle/appspec-api.yml" "$work/api-bundle/appspec.yml"
"$shoal" release --store s3://releases/api --application api --version v1.0.0 --bundle "$work/api-bundle" \
  --key "$work/key" --endpoint "http://127.0.0.1:$port" --allow-http >/dev/null

cat > "$work/agent.yaml" <<YAML
node: { id: bench, data_dir: $work/data }
status: { listen: 127.0.0.1:0 }
log: { format: json, level: info }
groups:
  - name: web
    channel: { git: { url: $work/repo } }
    allowed_signers: $work/allowed_signers
    rollout: { min_healthy_time: 0s }
  - name: api
    channel: { store: { url: s3://releases/api, endpoint: "http://127.0.0.1:$port", allow_http: true } }
    allowed_signers: $work/allowed_signers
    rollout: { min_healthy_time: 0s }
YAML
"$shoal" agent --config "$work/agent.yaml" 2>"$work/agent.log" &
agent=$!
pids+=($agent)

for _ in $(seq 300); do
  [ "$(grep -c '"deployment succeeded"' "$work/agent.log" || true)" -ge 2 ] && break
  python3 -c 'import time; time.sleep(0.1)'
done
[ "$(grep -c '"deployment succeeded"' "$work/agent.log" || true)" -ge 2 ] || { echo "the agent did not deploy both groups:"; cat "$work/agent.log"; exit 1; }

# CPU time (user + system) of the process, threads that ended included, in clock ticks: 10 ms
# each, so 0.2 % of 60 s is 12 ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$agent/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
python3 -c "import time; time.sleep($window)"
t1=$(ticks)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$agent/status")
anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$agent/status")
file=$(awk '/^RssFile/ { print $2 }' "/proc/$agent/status")
pss=$(awk '/^Pss:/ { print $2 }' "/proc/$agent/smaps_rollup")
threads=$(awk '/^Threads/ { print $2 }' "/proc/$agent/status")
polls=$(grep -c 'GET /releases' "$work/moto.log" || true)
awk -v t="$((t1 - t0))" -v hz="$hz" -v w="$window" -v rss="$rss" -v hwm="$hwm" -v anon="$anon" -v file="$file" -v pss="$pss" -v th="$threads" -v polls="$polls" 'BEGIN {
  printf "idle %d s, 2 groups (git watched, S3 polled every 30 s):\n", w
  printf "  CPU %.3f %% (%d ms of CPU time)\n", 100 * t / hz / w, 1000 * t / hz
  printf "  RSS %.1f MiB (peak %.1f MiB) = %.1f MiB private anonymous + %.1f MiB file-backed (code of the binary and shared libraries); PSS %.1f MiB\n",
    rss / 1024, hwm / 1024, anon / 1024, file / 1024, pss / 1024
  printf "  %d threads, %d S3 LISTs in all\n", th, polls }'
echo "  largest file-backed mappings (KiB resident):"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{rss[name]+=$2} END{for(n in rss) if (n != "" && rss[n] > 400) print "   ", rss[n], n}' "/proc/$agent/smaps" | sort -k1 -rn
