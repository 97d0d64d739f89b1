#!/usr/bin/env bash
# Stops a process by PID: SIGTERM, up to 10 s to exit, then SIGKILL.
#   scripts/stop-pid.sh PID
pid="${1:-}"
[ -n "$pid" ] || exit 0
kill -0 "$pid" 2>/dev/null || exit 0
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null || true
