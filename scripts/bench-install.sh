#!/usr/bin/env bash
# Benchmark (not a test): `shoal deploy` of a generated tar bundle of ~20,000 files / ~300 MB,
# against `tar -xf` of the same archive into an empty directory, interleaved on the same run.
# Prints the median of each and their ratio. Usage: scripts/bench-install.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
work=${BENCH_DIR:-$PWD/bench-out}
files=${BENCH_FILES:-20000}

cargo build --release -q -p shoal-agent
shoal=$PWD/target/release/shoal
rm -rf "$work" && mkdir -p "$work/src"

python3 - "$work/src/data" "$files" <<'PY'
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
sizes = [2_000, 8_000, 15_000, 25_000, 25_000]
for i in range(count):
    d = os.path.join(root, f"dir{i // 2000:02d}", f"sub{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.choice(sizes)))
PY
cat > "$work/src/appspec.yml" <<YAML
version: 0.0
os: linux
files:
  - source: data
    destination: $work/dest
YAML
tar -cf "$work/bundle.tar" -C "$work/src" .
echo "bundle: $(find "$work/src" -type f | wc -l) files, $(du -sm "$work/src" | cut -f1) MiB, tar $(du -m "$work/bundle.tar" | cut -f1) MiB"

now() { date +%s.%N; }
tar_times=() shoal_times=() unpack_times=() install_times=()
for round in $(seq "$rounds"); do
  rm -rf "$work/tar-out" && mkdir "$work/tar-out" && sync
  t0=$(now); tar -xf "$work/bundle.tar" -C "$work/tar-out"; t1=$(now)
  tar_times+=("$(awk "BEGIN{print $t1 - $t0}")")

  rm -rf "$work/root" "$work/dest" && sync
  t0=$(now); "$shoal" deploy --bundle "$work/bundle.tar" --root "$work/root" --group bench >/dev/null; t1=$(now)
  shoal_times+=("$(awk "BEGIN{print $t1 - $t0}")")
  record=$(ls "$work"/root/bench/*/shoal-deployment.json)
  unpack_times+=("$(python3 -c 'import json,sys; e={x["name"]:x["duration_ms"] for x in json.load(open(sys.argv[1]))["events"]}; print(e["DownloadBundle"]/1000)' "$record")")
  install_times+=("$(python3 -c 'import json,sys; e={x["name"]:x["duration_ms"] for x in json.load(open(sys.argv[1]))["events"]}; print(e["Install"]/1000)' "$record")")
  echo "round $round: tar -xf ${tar_times[-1]} s, shoal deploy ${shoal_times[-1]} s (unpack ${unpack_times[-1]} s, install ${install_times[-1]} s)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tar_m=$(median "${tar_times[@]}") shoal_m=$(median "${shoal_times[@]}")
unpack_m=$(median "${unpack_times[@]}") install_m=$(median "${install_times[@]}")
ratio() { awk "BEGIN{printf \"%.2f\", $1 / $tar_m}"; }
echo "median tar -xf (baseline):        ${tar_m} s"
echo "median Install event:             ${install_m} s  ($(ratio "$install_m")x tar)"
echo "median DownloadBundle (unpack):   ${unpack_m} s  ($(ratio "$unpack_m")x tar)"
echo "median whole shoal deploy:        ${shoal_m} s  ($(ratio "$shoal_m")x tar)"
rm -rf "$work"
