#!/usr/bin/env bash
# Benchmark (not a test): `shoal deploy` against `tar -xf` of the same content, interleaved in one
# run on the same filesystem, `sync` before each timed step. Prints medians and ratios.
#
#   scripts/bench-install.sh [rounds]          the cases below, 5 rounds by default
#   BENCH_DIR=/mnt/xfs/bench scripts/bench-install.sh   on another filesystem
#   BENCH_CASES="large" scripts/bench-install.sh        one group of cases only
#
# Cases ("small": 5,000 files / 50 MiB in 50 directories; "large": 20,000 files / ~330 MiB in
# 400 directories):
#   dir-first   a directory bundle, first deployment     vs  tar -xf into an empty directory
#   dir-again   the same, deployed again over the first  vs  rm -rf DEST; tar -xf
#   tgz-first   a .tar.gz bundle, first deployment       vs  tar -xzf into an empty directory
#   tgz-again   the same, deployed again                 vs  rm -rf DEST; tar -xzf
#   dir-next    the next release over the first, 1 file in 10 rewritten
#                                                        vs  rm -rf DEST; tar -xf of the next
#   dir-all     the same with every file rewritten       vs  rm -rf DEST; tar -xf of it
#   large       a .tar bundle of the large tree, first   vs  tar -xf into an empty directory
# For each, the DownloadBundle (unpack) and Install steps are shown against the same baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
work=${BENCH_DIR:-$PWD/bench-out}
cases=${BENCH_CASES:-"small large"}

cargo build --release -q -p shoal-agent
shoal=$PWD/target/release/shoal
rm -rf "$work" && mkdir -p "$work"

# make_tree DIR FILES SPREAD SIZES: FILES random files, of sizes picked from SIZES (comma-
# separated bytes), over FILES/SPREAD directories.
make_tree() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import os, random, sys
root, count, spread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
sizes = [int(s) for s in sys.argv[4].split(",")]
for i in range(count):
    d = os.path.join(root, f"dir{i // (spread * 20):02d}", f"sub{i // spread:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.choice(sizes)))
PY
}

# make_bundle NAME FILES SPREAD SIZES: $work/NAME/src (a bundle directory), NAME.tar, NAME.tgz.
make_bundle() {
  local name=$1 src=$work/$1/src
  mkdir -p "$src"
  make_tree "$src/data" "$2" "$3" "$4"
  cat > "$src/appspec.yml" <<YAML
version: 0.0
os: linux
files:
  - source: data
    destination: $work/$name/dest
YAML
  tar -cf "$work/$name.tar" -C "$src" .
  gzip -1 -c "$work/$name.tar" > "$work/$name.tgz"
  echo "$name bundle: $(find "$src" -type f | wc -l) files, $(du -sm "$src" | cut -f1) MiB"
}

# make_next NAME FROM EVERY: bundle NAME, FROM's with every EVERY-th file rewritten (same size).
make_next() {
  local name=$1 src=$work/$1/src
  mkdir -p "$work/$name" && cp -a "$work/$2/src" "$src"
  python3 - "$src/data" "$3" <<'PY'
import os, random, sys
root, every = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
files = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names)
for path in files[::every]:
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))
PY
  tar -cf "$work/$name.tar" -C "$src" .
}

now() { date +%s.%N; }
secs() { awk "BEGIN{print $2 - $1}"; }
# event_secs RECORD NAME: the duration of event NAME in a deployment record, in seconds.
event_secs() {
  python3 -c 'import json,sys; e={x["name"]:x["duration_ms"] for x in json.load(open(sys.argv[1]))["events"]}; print(e[sys.argv[2]]/1000)' "$1" "$2"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A samples
add() { samples[$1]="${samples[$1]:-} $2"; }

# Every timed step writes into fresh paths of the round, $run; what a round wrote is removed at
# the start of the next, then synced, so no step pays for another's deletions (the VM's ext4
# is mounted with `discard`, which makes writes right after mass deletions slow).

# baseline CASE NAME ARCHIVE FLAGS AGAIN [BEFORE]: tar into a new directory; when AGAIN, into
# one that already holds the content of BEFORE (default ARCHIVE) (timed: rm -rf and tar).
baseline() {
  local case=$1 out=$run/$1-tar archive=$3 flags=$4 again=$5 before=${6:-$3} t0 t1
  mkdir -p "$out"
  if [ "$again" = again ]; then
    tar "$flags" "$before" -C "$out" && sync
    t0=$(now); rm -rf "$out"; mkdir "$out"; tar "$flags" "$archive" -C "$out"; t1=$(now)
  else
    sync
    t0=$(now); tar "$flags" "$archive" -C "$out"; t1=$(now)
  fi
  add "$case.tar" "$(secs "$t0" "$t1")"
}

# deploy CASE NAME BUNDLE AGAIN [BEFORE]: shoal deploy into a new root; when AGAIN, a first
# deployment of BEFORE (default BUNDLE) is done before the clock.
deploy() {
  local case=$1 bundle=$3 again=$4 before=${5:-$3} root=$run/$1-root t0 t1 record
  local shoal_deploy=("$shoal" deploy --root "$root" --group bench --files-root "$run/$1-files")
  if [ "$again" = again ]; then
    "${shoal_deploy[@]}" --bundle "$before" --revision r1 >/dev/null
  fi
  sync
  t0=$(now); "${shoal_deploy[@]}" --bundle "$bundle" --revision r2 >/dev/null; t1=$(now)
  add "$case.shoal" "$(secs "$t0" "$t1")"
  record=$(ls -t "$root"/bench/*/shoal-deployment.json | head -n 1)
  add "$case.unpack" "$(event_secs "$record" DownloadBundle)"
  add "$case.install" "$(event_secs "$record" Install)"
}

# run_case CASE NAME BUNDLE ARCHIVE FLAGS AGAIN [BEFORE-BUNDLE BEFORE-ARCHIVE]
run_case() {
  local case=$1 name=$2 bundle=$3 archive=$4 flags=$5 again=$6
  baseline "$case" "$name" "$archive" "$flags" "$again" "${8:-$archive}"
  deploy "$case" "$name" "$bundle" "$again" "${7:-$bundle}"
}

for group in $cases; do
  case $group in
    small)
      make_bundle small 5000 100 2000,6000,10000,14000,20000
      make_next small-next small 10
      make_next small-all small 1
      ;;
    large) make_bundle large 20000 50 2000,8000,15000,25000,25000 ;;
  esac
done

run=
for round in $(seq "$rounds"); do
  [ -z "$run" ] || rm -rf "$run"
  run=$work/round-$round && mkdir -p "$run" && sync
  for group in $cases; do
    case $group in
      small)
        run_case dir-first small "$work/small/src" "$work/small.tar" -xf first
        run_case dir-again small "$work/small/src" "$work/small.tar" -xf again
        run_case tgz-first small "$work/small.tgz" "$work/small.tgz" -xzf first
        run_case tgz-again small "$work/small.tgz" "$work/small.tgz" -xzf again
        run_case dir-next small-next "$work/small-next/src" "$work/small-next.tar" -xf again \
          "$work/small/src" "$work/small.tar"
        run_case dir-all small-all "$work/small-all/src" "$work/small-all.tar" -xf again \
          "$work/small/src" "$work/small.tar"
        ;;
      large) run_case large large "$work/large.tar" "$work/large.tar" -xf first ;;
    esac
  done
  echo "round $round done"
done

printf '\n%-10s %9s %9s %7s %9s %7s %9s %7s\n' case baseline deploy ratio unpack ratio install ratio
for group in $cases; do
  case $group in
    small) names="dir-first dir-again tgz-first tgz-again dir-next dir-all" ;;
    large) names="large" ;;
  esac
  for c in $names; do
    # shellcheck disable=SC2086
    base=$(median ${samples[$c.tar]}) whole=$(median ${samples[$c.shoal]})
    # shellcheck disable=SC2086
    unpack=$(median ${samples[$c.unpack]}) install=$(median ${samples[$c.install]})
    ratio() { awk "BEGIN{printf \"%.2f\", $1 / $base}"; }
    printf '%-10s %8.2fs %8.2fs %6sx %8.2fs %6sx %8.2fs %6sx\n' "$c" "$base" "$whole" \
      "$(ratio "$whole")" "$unpack" "$(ratio "$unpack")" "$install" "$(ratio "$install")"
  done
done
rm -rf "$work"
