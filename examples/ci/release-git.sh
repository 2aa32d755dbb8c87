#!/usr/bin/env bash
# Releases an application of a git channel: build and check, sign a tag with an SSH key, push.
# Agents deploy the tree of the tagged commit, so the tag must point at what was built here:
# the script refuses a working tree with uncommitted changes. Run it at the repository's top.
#
# Inputs, from the environment:
#   VERSION          the release: semver with an optional leading v, matching the agents'
#                    `tags:` glob (default v*), e.g. v1.4.0. Required.
#   APPLICATION      the application the release is for: the agents' group `application:`
#                    (else the group's name), e.g. web. Required. Signed into the tag as its
#                    `Shoal-Application:` line, so no other application's agents take it.
#   SIGNING_KEY      the ed25519 private key that signs the tag, or its .pub when the private
#                    half is in ssh-agent (default: ~/.ssh/release_ed25519)
#   REMOTE           where the tag is pushed: a remote name, a URL or a path (default: origin)
#   BUILD_COMMAND    the project's build and tests, run first through bash -c (default: none)
#   SHOAL            the shoal binary (default: shoal on PATH); without it the AppSpec check
#                    is skipped, with a note
#   ALLOWED_SIGNERS  if set, the pushed tag is verified against this file, as the agents do
# git takes the tagger's name and email from its config (user.name, user.email) or from
# GIT_COMMITTER_NAME / GIT_COMMITTER_EMAIL. SSH signing needs git 2.34 or later.
set -euo pipefail

: "${VERSION:?set VERSION to the release, e.g. VERSION=v1.4.0}"
: "${APPLICATION:?set APPLICATION to the application the release is for, e.g. APPLICATION=web}"
SIGNING_KEY="${SIGNING_KEY:-$HOME/.ssh/release_ed25519}"
REMOTE="${REMOTE:-origin}"
SHOAL="${SHOAL:-shoal}"

if [ -n "${BUILD_COMMAND:-}" ]; then
  bash -c "$BUILD_COMMAND"
fi
if [ -n "$(git status --porcelain)" ]; then
  echo "error: the working tree has uncommitted changes; commit them, or the release would not be what was built" >&2
  exit 1
fi
appspec=appspec.yml
[ -f "$appspec" ] || appspec=appspec.yaml
if command -v "$SHOAL" >/dev/null; then
  "$SHOAL" appspec check "$appspec"
else
  echo "note: $SHOAL not found; $appspec is not checked" >&2
fi

git -c gpg.format=ssh -c user.signingkey="$SIGNING_KEY" tag -s "$VERSION" \
  -m "release $VERSION" -m "Shoal-Application: $APPLICATION"
git push "$REMOTE" "refs/tags/$VERSION"

if [ -n "${ALLOWED_SIGNERS:-}" ]; then
  url=$(git remote get-url "$REMOTE" 2>/dev/null || printf '%s' "$REMOTE")
  "$SHOAL" verify git --repo "$url" --tag "$VERSION" --application "$APPLICATION" \
    --allowed-signers "$ALLOWED_SIGNERS"
fi
