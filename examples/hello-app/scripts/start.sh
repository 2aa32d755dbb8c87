#!/bin/sh
# ApplicationStart: start the server in its own session (so it outlives this script and the
# agent) and wait until it listens. HELLO_PORT picks the port (0: any free one).
set -eu
root="${SHOAL_FILES_ROOT:-}"
run="$root/run/hello-app"
mkdir -p "$run"
rm -f "$run/port"
setsid shoal hello-server \
  --root "$root/opt/hello-app/www" \
  --listen "127.0.0.1:${HELLO_PORT:-8080}" \
  --port-file "$run/port" \
  --pid-file "$run/pid" \
  </dev/null >>"$run/server.log" 2>&1 &
server=$!
tries=0
until [ -s "$run/port" ]; do
  tries=$((tries + 1))
  if ! kill -0 "$server" 2>/dev/null; then
    echo "hello-app exited before it listened:" >&2
    tail -n 5 "$run/server.log" >&2
    exit 1
  fi
  if [ "$tries" -gt 100 ]; then
    echo "hello-app did not start listening within 10 s:" >&2
    tail -n 5 "$run/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "hello-app ${SHOAL_REVISION} listening on http://127.0.0.1:$(cat "$run/port")/"
