#!/usr/bin/env bash
# Builds shoal's .deb and .rpm from one release build and prints their paths:
#
#   scripts/package.sh          ->  target/packages/shoal_<version>-1_<arch>.deb
#                                   target/packages/shoal-<version>-1.<arch>.rpm
#
# What goes into the packages is declared in agent/Cargo.toml ([package.metadata.deb] for
# cargo-deb, [package.metadata.generate-rpm] for cargo-generate-rpm); this script makes the
# generated assets they name (the stripped binary, the man page, the shell completions, the
# Debian changelog) in target/release/package-assets/ from the release binary itself.
# cargo-deb and cargo-generate-rpm are installed (pinned, `cargo install --locked`) when missing.
# Honours CARGO_TARGET_DIR. Progress goes to stderr; stdout is the two paths.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

say() { echo "package: $*" >&2; }

# `cargo install --locked cargo-NAME@VERSION` unless `cargo NAME --version` prints VERSION.
ensure_tool() {
  local name=$1 version=$2
  if cargo "$name" --version 2>/dev/null | grep -qw "$version"; then
    return
  fi
  say "installing cargo-$name $version (once)"
  cargo install --locked --quiet "cargo-$name@$version" >&2
}
ensure_tool deb "$CARGO_DEB_VERSION"
ensure_tool generate-rpm "$CARGO_GENERATE_RPM_VERSION"

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
target=$(cd "$target" && pwd)

say "release build"
cargo build --release --locked -p shoal-agent --bin shoal >&2
bin=$target/release/shoal

# The assets agent/Cargo.toml names under target/release/package-assets/ (both tools read
# `target/release/` as the real target directory).
assets=$target/release/package-assets
rm -rf "$assets"
mkdir -p "$assets"
cp "$bin" "$assets/shoal"
strip --strip-all "$assets/shoal"
mkdir "$assets/man"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/shoal.bash"
"$bin" completions zsh > "$assets/_shoal"
# The Debian changelog (lintian wants one): an entry for this version, dated by the commit.
version=$("$bin" --version | cut -d' ' -f2)
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")
{
  echo "shoal ($version-1) unstable; urgency=medium"
  echo
  echo "  * Package of shoal $version, built from $commit."
  echo
  echo " -- shoal maintainers <shoal@example.invalid>  $date"
} | gzip -9n > "$assets/changelog.Debian.gz"

out=$target/packages
rm -rf "$out"
mkdir -p "$out"
say "cargo deb"
cargo deb -p shoal-agent --no-build --no-strip --output "$out" >&2
say "cargo generate-rpm"
cargo generate-rpm -p agent --target-dir "$target" --output "$out/" >&2
ls "$out"/*.deb "$out"/*.rpm
