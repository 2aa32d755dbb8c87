#!/bin/sh
# ApplicationStop runs the copy of this script from the revision installed *before*: it stops
# that revision's server and waits until it is gone (SIGKILL after 10 s).
run="${SHOAL_FILES_ROOT:-}/run/hello-app"
if [ ! -s "$run/pid" ]; then
  echo "hello-app is not running"
  exit 0
fi
pid=$(cat "$run/pid")
gone() {
  # A process that exited but is not reaped yet (state Z) is gone too.
  ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}
kill "$pid" 2>/dev/null
tries=0
until gone; do
  tries=$((tries + 1))
  if [ "$tries" -eq 100 ]; then
    echo "hello-app (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null
  fi
  sleep 0.1
done
rm -f "$run/pid" "$run/port"
echo "hello-app (pid $pid) stopped"
