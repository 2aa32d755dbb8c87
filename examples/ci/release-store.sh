#!/usr/bin/env bash
# Releases an application of a store channel: build the bundle, then package, sign and publish
# it with `shoal release`. Releases are immutable: a version that exists is refused before
# anything is signed or uploaded.
#
# Inputs, from the environment:
#   VERSION          the release, semver with an optional leading v, e.g. v1.4.0. Required.
#   APPLICATION      the application the release is for: the agents' group `application:`
#                    (else the group's name), e.g. api. Required; signed into release.yaml.
#   STORE            the channel: s3://bucket/prefix, file:///path, gs://bucket/prefix or
#                    az://container/prefix. Required.
#   BUNDLE           the build's output: a directory, packaged whole as a deterministic .tar.gz
#                    (not the repository itself: its .git would go in too), or a .tar,
#                    .tar.gz/.tgz or .zip archive (default: dist)
#   SIGNING_KEY      the ed25519 private key, or its .pub when the private half is in
#                    ssh-agent (default: ~/.ssh/release_ed25519)
#   ROLLOUT          a file with a `rollout:` block, signed into the manifest (default: none;
#                    the bundle's shoal.yaml applies, else each group's policy)
#   BUILD_COMMAND    the project's build and tests, run first through bash -c (default: none)
#   S3_ENDPOINT      an S3-compatible endpoint instead of AWS; S3_REGION its region
#                    (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1);
#                    S3_ALLOW_HTTP=true for a plain-http endpoint
#   SHOAL            the shoal binary (default: shoal on PATH)
#   ALLOWED_SIGNERS  if set, the published release is verified against this file
# Credentials come from the standard AWS_*, GOOGLE_* or AZURE_* variables.
set -euo pipefail

: "${VERSION:?set VERSION to the release, e.g. VERSION=v1.4.0}"
: "${APPLICATION:?set APPLICATION to the application the release is for, e.g. APPLICATION=api}"
: "${STORE:?set STORE to the channel, e.g. STORE=s3://acme-releases/api}"
BUNDLE="${BUNDLE:-dist}"
SIGNING_KEY="${SIGNING_KEY:-$HOME/.ssh/release_ed25519}"
SHOAL="${SHOAL:-shoal}"

if [ -n "${BUILD_COMMAND:-}" ]; then
  bash -c "$BUILD_COMMAND"
fi
if [ -d "$BUNDLE" ]; then
  appspec="$BUNDLE/appspec.yml"
  [ -f "$appspec" ] || appspec="$BUNDLE/appspec.yaml"
  "$SHOAL" appspec check "$appspec"
fi

where=()
if [ -n "${S3_ENDPOINT:-}" ]; then where+=(--endpoint "$S3_ENDPOINT"); fi
if [ -n "${S3_REGION:-}" ]; then where+=(--region "$S3_REGION"); fi
if [ "${S3_ALLOW_HTTP:-false}" = true ]; then where+=(--allow-http); fi
policy=()
if [ -n "${ROLLOUT:-}" ]; then policy+=(--rollout "$ROLLOUT"); fi

"$SHOAL" release --store "$STORE" --application "$APPLICATION" --version "$VERSION" --bundle "$BUNDLE" \
  --key "$SIGNING_KEY" ${policy[@]+"${policy[@]}"} ${where[@]+"${where[@]}"}

if [ -n "${ALLOWED_SIGNERS:-}" ]; then
  "$SHOAL" verify store --url "$STORE" --version "$VERSION" --application "$APPLICATION" \
    --allowed-signers "$ALLOWED_SIGNERS" ${where[@]+"${where[@]}"}
fi
