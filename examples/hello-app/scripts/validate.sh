#!/bin/bash
# ValidateService: GET /health must answer "ok". Only a refused connection is tried again (the
# server may still be starting); any other answer fails the deployment at once.
set -u
run="${SHOAL_FILES_ROOT:-}/run/hello-app"
port=$(cat "$run/port" 2>/dev/null) || { echo "no $run/port: is hello-app running?" >&2; exit 1; }
for _ in $(seq 1 50); do
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    response=$(cat <&3)
    exec 3<&-
    body=${response#*$'\r\n\r\n'}
    if [ "$body" = ok ]; then
      echo "healthy: GET /health answered ok"
      exit 0
    fi
    echo "unhealthy: GET /health answered '${body}'" >&2
    exit 1
  fi
  sleep 0.1
done
echo "unhealthy: nothing answers on 127.0.0.1:$port" >&2
exit 1
