#!/usr/bin/env bash
# Runs every test of shoal. On a fresh Debian/Ubuntu machine it first installs what the tests
# need (apt packages, and moto_server into .venv), so this one command is all a new contributor
# or CI types.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests use: a C toolchain for -sys crates, setfacl/getfacl
# for ACL permissions, zip for zip bundles, and the tools the hook tests create users with;
# openssl makes the certificates of the https git servers the credential tests run. The remote
# git tests run a second sshd (openssh-server), nginx with git-http-backend under fcgiwrap,
# each in a mount namespace (util-linux: unshare).
# python3 and python3-venv hold moto_server, the S3 server the release-channel tests talk to.
# The package check (scripts/check-packages.sh) lints with lintian and rpmlint, reads the rpm
# with rpm, installs the .deb into a debootstrap chroot and verifies the unit with systemd.
# chromium (with a font to draw text in) shows the fleet page to the test that drives it;
# groff renders every man page in the tests, which fail on any warning.
packages=(gcc pkg-config libssl-dev zlib1g-dev acl zip unzip passwd git openssh-client python3 python3-venv openssl
  openssh-server nginx fcgiwrap util-linux lintian rpmlint rpm debootstrap systemd binutils
  chromium fonts-dejavu-core groff-base)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing test dependencies: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# moto_server (an in-memory S3) goes into .venv once; shoal-tests' MotoServer starts it from there.
if [ ! -x .venv/bin/moto_server ]; then
  echo "installing moto_server into .venv (once)"
  python=/usr/bin/python3
  [ -x "$python" ] || python=python3
  "$python" -m venv --clear .venv
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]>=5,<6" >/dev/null
fi
# The status endpoint's tests parse /metrics with Prometheus's own OpenMetrics parser.
if ! .venv/bin/python -c 'import prometheus_client' 2>/dev/null; then
  echo "installing prometheus_client into .venv (once)"
  .venv/bin/pip install -q --disable-pip-version-check "prometheus_client>=0.20" >/dev/null
fi

# promtool checks and tests the shipped alert rules: taken from Debian's prometheus package,
# unpacked into .venv/bin, not installed (so no Prometheus server is set up or started).
if [ ! -x .venv/bin/promtool ]; then
  echo "unpacking promtool from Debian's prometheus package into .venv/bin (once)"
  unpack=$(mktemp -d)
  if ! (cd "$unpack" && apt-get download prometheus >/dev/null 2>&1); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    (cd "$unpack" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$unpack"/prometheus_*.deb "$unpack/root"
  cp "$unpack/root/usr/bin/promtool" .venv/bin/promtool
  rm -rf "$unpack"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The full run (no arguments, as CI runs it) also builds the .deb and .rpm and checks them.
if [ $# -eq 0 ]; then
  scripts/check-packages.sh || status=1
else
  echo "package check skipped (arguments given); run scripts/check-packages.sh for it"
fi
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
