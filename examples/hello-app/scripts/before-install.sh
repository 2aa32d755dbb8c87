#!/bin/sh
# BeforeInstall: the directory the server keeps its pid and port in.
set -eu
run="${SHOAL_FILES_ROOT:-}/run/hello-app"
mkdir -p "$run"
echo "installing ${SHOAL_REVISION} over '${SHOAL_PREVIOUS_REVISION}' (deployment ${DEPLOYMENT_ID})"
