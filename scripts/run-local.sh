#!/usr/bin/env bash
# `make run`: Skyhook on this machine. Uses the emulator at AWS_ENDPOINT_URL when set
# (LocalStack, say); otherwise starts moto server on 127.0.0.1:4566 from .venv. Then builds
# and runs `skyhook local` in the foreground. Ctrl-C stops skyhook (which lets in-flight
# deliveries finish) and then the emulator it started, by PID.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.skyhook"
mkdir -p "$state"

export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

cargo build --quiet -p skyhook-cli --bin skyhook

emulator_pid=""
cleanup() {
  [ -z "$emulator_pid" ] || "$root/scripts/stop-pid.sh" "$emulator_pid"
  rm -f "$state/run-emulator.pid"
}
trap cleanup EXIT

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  port="${SKYHOOK_EMULATOR_PORT:-4566}"
  emulator_pid="$("$root/scripts/start-emulator.sh" "$port" "$state/moto-run.log")"
  echo "$emulator_pid" >"$state/run-emulator.pid"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  echo "emulator: moto server (pid $emulator_pid) at $AWS_ENDPOINT_URL"
else
  echo "emulator: using AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
fi

# skyhook handles Ctrl-C itself (draining deliveries); the shell waits for it, then cleans up.
trap '' INT
set +e
"${CARGO_TARGET_DIR:-$root/target}/debug/skyhook" local &
skyhook_pid=$!
trap 'kill -INT $skyhook_pid 2>/dev/null' INT TERM
wait "$skyhook_pid"
status=$?
# A signal interrupts `wait`; wait again for skyhook to finish draining.
while kill -0 "$skyhook_pid" 2>/dev/null; do
  wait "$skyhook_pid"
  status=$?
done
exit "$status"
