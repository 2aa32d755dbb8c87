#!/usr/bin/env bash
# Checks shoal's packages end to end: builds the .deb and .rpm (scripts/package.sh, one release
# build), lints both (lintian, rpmlint: no errors), checks the systemd unit with
# `systemd-analyze verify`, then installs the .deb into a minimal Debian chroot (debootstrap
# --variant=minbase; the base is cached as a tarball in the target directory) and checks what
# it installs, made and enabled, that a reinstall and a remove keep the config and the secrets,
# and that a purge leaves the chroot as it found it; then runs the rpm's scripts there too.
#
# One line per check; exits 1 naming the checks that failed. Runs as root, or uses sudo for
# what needs root (apt-get, debootstrap, chroot). Called by scripts/test.sh after the tests.
# SHOAL_DEBIAN_MIRROR overrides the Debian mirror the chroot is made from and installs from.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
MIRROR=${SHOAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

started=$SECONDS
failed=()
pass() { echo "ok    $1"; }
fail() {
  echo "FAIL  $1"
  failed+=("$2")
}
# fatal WHAT LOG: a step the rest depends on failed; shows the end of its log and the free disk.
fatal() {
  echo "FAIL  $1; the end of $2:"
  tail -n 20 "$2" | sed 's/^/      /'
  df -h "$(dirname "$2")" | sed 's/^/      /'
  exit 1
}
# check NAME COMMAND...: one line for a command that must succeed (its output shown on failure).
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name" "$name"
    [ -z "$output" ] || indent <<<"$output"
  fi
}
indent() { sed 's/^/      /'; }
# took: seconds since the step began (`step` starts one).
step() { step_started=$SECONDS; }
took() { echo "$((SECONDS - step_started))s"; }
step

# The tools: lintian, rpmlint, rpm (rpm -qp), debootstrap, systemd-analyze (package systemd).
packages=(lintian rpmlint rpm debootstrap systemd binutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing packaging tools: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Build.
step
mapfile -t built < <(scripts/package.sh)
deb=$(printf '%s\n' "${built[@]}" | grep '\.deb$' || true)
rpm=$(printf '%s\n' "${built[@]}" | grep '\.rpm$' || true)
if [ -z "$deb" ] || [ -z "$rpm" ]; then
  echo "FAIL  build: scripts/package.sh failed (see above) or printed no .deb and .rpm"
  exit 1
fi
pass "build, $(took): $deb"
pass "build: $rpm"
target=$(dirname "$(dirname "$deb")")

# Lint. lintian exits non-zero on errors (--fail-on error); rpmlint on errors, with the
# settings in packaging/rpmlint.toml. Warnings are shown, not failures.
step
lint=$(lintian --fail-on error --tag-display-limit 0 "$deb" 2>&1) && lintian_ok=1 || lintian_ok=0
lint=$(grep -v 'running with root privileges' <<<"$lint" || true)
summary="$(grep -c '^E:' <<<"$lint" || true) errors, $(grep -c '^W:' <<<"$lint" || true) warnings"
if [ "$lintian_ok" = 1 ]; then pass "lintian: $summary"; else fail "lintian: $summary" lintian; fi
[ -z "$lint" ] || indent <<<"$lint"
lint=$(rpmlint -c packaging/rpmlint.toml "$rpm" 2>&1) && rpmlint_ok=1 || rpmlint_ok=0
summary=$(grep -E '[0-9]+ errors?, [0-9]+ warnings?' <<<"$lint" | sed 's/.*checked; //; s/; has taken.*//' || true)
if [ "$rpmlint_ok" = 1 ]; then pass "rpmlint: $summary"; else fail "rpmlint: $summary" rpmlint; fi
grep -E '^[^ ]+: [EW]: ' <<<"$lint" | indent || true

# The rpm's metadata, contents and scripts (which also run further down, in the chroot).
requires() {
  local listed
  listed=$(rpm -qp --requires "$rpm")
  for name in ca-certificates git openssh-clients; do grep -qx "$name" <<<"$listed" || return 1; done
  grep -q '^libc.so.6' <<<"$listed"
}
check "rpm: requires ca-certificates, git, openssh-clients and libc" requires
deb_depends() {
  local listed
  listed=$(dpkg-deb -f "$deb" Depends)
  for name in ca-certificates git openssh-client; do grep -qE "(^|, )$name( |,|$)" <<<"$listed" || return 1; done
}
check "deb: depends on ca-certificates, git and openssh-client" deb_depends
noreplace() { rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" | grep -qx '/etc/shoal/agent.yaml cn'; }
check "rpm: /etc/shoal/agent.yaml is %config(noreplace)" noreplace
rpm_contents() {
  local files f
  files=$(rpm -qpl "$rpm")
  for f in /usr/bin/shoal /usr/lib/systemd/system/shoal.service /usr/share/man/man1/shoal.1.gz \
    /usr/share/bash-completion/completions/shoal /usr/share/zsh/site-functions/_shoal \
    /usr/share/doc/shoal/prometheus/alerts.yml /usr/share/doc/shoal/grafana/shoal.json \
    /usr/share/doc/shoal/README.md /usr/share/doc/shoal/docs/configuration.md \
    /usr/share/doc/shoal/examples/config/two-groups.yaml; do
    grep -qx "$f" <<<"$files" || { echo "missing $f"; return 1; }
  done
}
check "rpm: contains the binary, unit, man page, completions, alert rules, dashboard and docs" rpm_contents
for tag in POSTIN PREUN POSTUN; do
  script=$(rpm -qp --qf "%{$tag}" "$rpm")
  check "rpm: %$tag script is POSIX sh" sh -n -c "$script"
done

# The unit, as the .deb ships it, with ExecStart pointed at the built binary (verify requires
# the program to exist; it is not installed on this host).
unit_dir=$(mktemp -d)
cleanup() {
  rm -rf "$unit_dir"
}
trap cleanup EXIT
dpkg-deb -x "$deb" "$unit_dir/deb"
unit=$(find "$unit_dir/deb" -name shoal.service -path '*/systemd/system/*')
sed "s|/usr/bin/shoal|$unit_dir/deb/usr/bin/shoal|" "$unit" > "$unit_dir/shoal.service"
# Quiet when all is well: any message (an unknown key, a bad value) is a failure.
verify_unit() {
  local out
  if out=$(systemd-analyze verify --man=no "$unit_dir/shoal.service" 2>&1) && [ -z "$out" ]; then
    return 0
  fi
  echo "$out"
  return 1
}
check "systemd-analyze verify shoal.service" verify_unit

# The shipped config with its examples uncommented is a valid config: unknown keys are errors,
# so this keeps the sample in step with the agent. (Prose comment lines start "# " and a
# capital; commented-out settings start "#" and a key or two spaces.)
sample_valid() {
  local dir=$unit_dir/sample
  mkdir -p "$dir"
  echo 'release@example.com namespaces="git,shoal-release" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILPr0sWWMSky90XdiCfJEXWhLiqzuTrBI4kbZul1anvE' \
    >"$dir/allowed_signers"
  sed -n '/^#node:/,$p' packaging/agent.yaml | grep -v '^# [A-Z]' | sed -E 's/^#([a-z]|  )/\1/' |
    sed "s|/etc/shoal/allowed_signers|$dir/allowed_signers|; s|/etc/shoal/gossip.key|$dir/gossip.key|; s|/var/lib/shoal|$dir/data|g; s|/etc/shoal/webhook.secret|$dir/webhook.secret|; s|/usr/local/bin/notify-pager|$dir/notify-pager|" >"$dir/agent.yaml"
  # The notify: example's secret (root's, 0600) and command (executable, not writable by others).
  (umask 077 && echo "a webhook secret" >"$dir/webhook.secret")
  printf '#!/bin/sh\ncat >/dev/null\n' >"$dir/notify-pager"
  chmod 0755 "$dir/notify-pager"
  rm -f "$dir/gossip.key"
  "$unit_dir/deb/usr/bin/shoal" keygen --out "$dir/gossip.key"
  "$unit_dir/deb/usr/bin/shoal" agent --config "$dir/agent.yaml" --check-config
}
check "agent.yaml with its examples uncommented is a valid config" sample_valid

# The minimal Debian to install into: debootstrap once, then from the cached tarball.
cache=$target/package-check
base=$cache/$SUITE-minbase.tar
root=$cache/root
mkdir -p "$cache"
$sudo rm -rf --one-file-system "$root"
step
if [ ! -f "$base" ]; then
  echo "making a $SUITE minbase chroot (once; cached as $base)"
  $sudo debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
    fatal "debootstrap of $SUITE from $MIRROR failed" "$cache/debootstrap.log"
  $sudo chroot "$root" apt-get clean
  $sudo tar -C "$root" -cf "$base.tmp" .
  $sudo mv "$base.tmp" "$base"
else
  $sudo mkdir -p "$root"
  $sudo tar -C "$root" -xf "$base"
fi
pass "chroot: $SUITE minbase, $(took)"
in_root() { $sudo chroot "$root" "$@"; }
$sudo cp /etc/resolv.conf "$root/etc/resolv.conf"

# The package's dependencies from the mirror, then a listing to compare with after the purge.
mapfile -t depends < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$')
step
if in_root apt-get update -qq >"$cache/apt.log" 2>&1 &&
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${depends[@]}" >>"$cache/apt.log" 2>&1; then
  pass "chroot: dependencies installed with apt-get, $(took): ${depends[*]}"
else
  fatal "chroot: apt-get could not install ${depends[*]}" "$cache/apt.log"
fi
in_root apt-get clean
listing() {
  # Everything but dpkg's and apt's bookkeeping and their logs.
  (cd "$root" && $sudo find . -xdev \
    \( -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache/apt \
    -o -path ./var/cache/debconf -o -path ./var/log -o -path ./proc -o -path ./dev \) -prune \
    -o -printf '%p %M %u:%g\n' | sort)
}
listing > "$cache/before.txt"

# Install.
$sudo cp "$deb" "$root/tmp/shoal.deb"
if in_root dpkg -i /tmp/shoal.deb >"$cache/dpkg-install.log" 2>&1; then
  pass "dpkg -i $(basename "$deb")"
else
  fail "dpkg -i: see $cache/dpkg-install.log" "dpkg -i"
  indent <"$cache/dpkg-install.log"
fi
if version=$(in_root shoal --version 2>&1); then
  pass "shoal --version: $version"
else
  fail "shoal --version: $version" "shoal --version"
fi
printf 'version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n' |
  $sudo tee "$root/tmp/appspec.yml" >/dev/null
appspec_ok() { [ "$(in_root shoal appspec check /tmp/appspec.yml)" = ok ]; }
check "shoal appspec check" appspec_ok
status=0
refusal=$(in_root shoal agent --check-config 2>&1) || status=$?
if [ "$status" = 2 ] && [ "$(wc -l <<<"$refusal")" = 1 ] && grep -q "no groups" <<<"$refusal"; then
  pass "shipped config refused in one line, exit 2"
else
  fail "shipped config: exit $status, expected 2 with one line: $refusal" "default config"
fi
check "man page, completions, alert rules, dashboard and docs installed" $sudo test \
  -s "$root/usr/share/man/man1/shoal.1.gz" \
  -a -s "$root/usr/share/bash-completion/completions/shoal" \
  -a -s "$root/usr/share/zsh/vendor-completions/_shoal" \
  -a -s "$root/usr/share/doc/shoal/prometheus/alerts.yml" \
  -a -s "$root/usr/share/doc/shoal/grafana/shoal.json" \
  -a -s "$root/usr/share/doc/shoal/README.md" \
  -a -s "$root/usr/share/doc/shoal/docs/configuration.md" \
  -a -s "$root/usr/share/doc/shoal/examples/config/two-groups.yaml"
# shellcheck disable=SC2016 # dpkg-query's own ${Field} syntax
conffile() { in_root dpkg-query -W -f='${Conffiles}' shoal | grep -q ' /etc/shoal/agent.yaml '; }
check "/etc/shoal/agent.yaml is a conffile" conffile
# mode_is PATH "MODE OWNER:GROUP" (octal mode).
mode_is() { [ "$($sudo stat -c '%a %U:%G' "$root$1")" = "$2" ]; }
check "/var/lib/shoal is 0700 root" mode_is /var/lib/shoal "700 root:root"
gossip_key() {
  mode_is /etc/shoal/gossip.key "600 root:root" &&
    [ "$($sudo base64 -d "$root/etc/shoal/gossip.key" | wc -c)" = 32 ]
}
check "/etc/shoal/gossip.key is 0600 root, 32 bytes in base64" gossip_key
admin_token() {
  mode_is /var/lib/shoal/admin.token "600 root:root" &&
    $sudo grep -qxE '[0-9a-f]{64}' "$root/var/lib/shoal/admin.token" &&
    [ "$($sudo wc -c <"$root/var/lib/shoal/admin.token")" = 65 ]
}
check "/var/lib/shoal/admin.token is 0600 root, 64 hex digits" admin_token
wants=/etc/systemd/system/multi-user.target.wants/shoal.service
check "unit enabled ($wants)" $sudo test -L "$root$wants"

# A reinstall (as an upgrade does) keeps an edited config, the key and the token; so does a
# remove, which also takes the binary away.
secrets() { $sudo cat "$root/etc/shoal/gossip.key" "$root/var/lib/shoal/admin.token" | sha256sum; }
kept=$(secrets)
echo "# edited" | $sudo tee -a "$root/etc/shoal/agent.yaml" >/dev/null
all_kept() {
  [ "$($sudo tail -n 1 "$root/etc/shoal/agent.yaml")" = "# edited" ] && [ "$(secrets)" = "$kept" ]
}
in_root dpkg -i /tmp/shoal.deb >>"$cache/dpkg-install.log" 2>&1 || true
check "reinstall keeps the edited config, the key and the token" all_kept
in_root dpkg -r shoal >"$cache/dpkg-remove.log" 2>&1 || true
removed() { all_kept && ! $sudo test -e "$root/usr/bin/shoal"; }
check "remove keeps the config, the key and the token" removed
if in_root dpkg --purge shoal >"$cache/dpkg-purge.log" 2>&1; then
  pass "dpkg --purge shoal"
else
  fail "dpkg --purge shoal: see $cache/dpkg-purge.log" "dpkg --purge"
fi
$sudo rm -f "$root/tmp/shoal.deb" "$root/tmp/appspec.yml"
listing > "$cache/after.txt"
if diff -u "$cache/before.txt" "$cache/after.txt" > "$cache/leftovers.diff"; then
  pass "purge leaves nothing behind"
else
  fail "purge left files behind:" "purge"
  indent <"$cache/leftovers.diff"
fi

# The rpm's scripts, run by the host's rpm in the same chroot (--nodeps: its requires name RPM
# packages): they make the secrets too, and an erase keeps them and says so. No systemctl
# there, so enabling is not exercised.
rpm_scripts() {
  local out
  $sudo rpm --root "$root" --initdb &&
    $sudo rpm --root "$root" -i --nodeps "$rpm" 2>/dev/null &&
    gossip_key && admin_token && mode_is /var/lib/shoal "700 root:root" &&
    out=$($sudo rpm --root "$root" -e shoal 2>/dev/null) &&
    grep -q "kept /etc/shoal and /var/lib/shoal" <<<"$out" &&
    gossip_key && admin_token && ! $sudo test -e "$root/usr/bin/shoal"
}
check "rpm -i makes the key and token, rpm -e keeps them" rpm_scripts

if [ ${#failed[@]} -gt 0 ]; then
  echo "package check failed in $((SECONDS - started))s: ${failed[*]} (the chroot is kept in $root)"
  exit 1
fi
$sudo rm -rf --one-file-system "$root"
echo "packages checked in $((SECONDS - started))s: $deb $rpm"
