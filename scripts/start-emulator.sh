#!/usr/bin/env bash
# Starts moto server from the project's .venv on 127.0.0.1:PORT in the background and waits
# until it answers. Prints its PID; the caller stops it by that PID.
#   scripts/start-emulator.sh PORT LOGFILE
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="$1"
log="$2"
"$root/scripts/ensure-venv.sh" >&2
if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 || \
   (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "emulator: port $port on 127.0.0.1 is already in use; stop what runs there, or set AWS_ENDPOINT_URL to use it" >&2
  exit 1
fi
# In a session of its own, so a Ctrl-C at the terminal reaches skyhook (which drains its
# deliveries) but not the emulator those deliveries still need; the caller stops it by PID.
# scripts/moto_server.py is moto_server with two per-request costs taken out (see there).
setsid "$root/.venv/bin/python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" \
  >"$log" 2>&1 < /dev/null &
pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "emulator: moto server exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done
kill "$pid" 2>/dev/null || true
echo "emulator: moto server did not answer on 127.0.0.1:$port within 20 s" >&2
exit 1
