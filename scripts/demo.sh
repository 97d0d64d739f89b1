#!/usr/bin/env bash
# `make demo`: starts the emulator and `skyhook local`, runs `skyhook listen` subscribed to
# order.*, sends one event, shows the verified delivery, then stops everything it started.
# Exits 0 only if the delivery arrived and its signature verified.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" != "--inside" ]; then
  cargo build --quiet -p skyhook-cli --bin skyhook
  exec "$root/scripts/with-emulator.sh" "$0" --inside
fi

work="$(mktemp -d)"
skyhook="${CARGO_TARGET_DIR:-$root/target}/debug/skyhook"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export SKYHOOK_LOCAL_ADDR="127.0.0.1:$port"
export SKYHOOK_LOCAL_PREFIX="skyhook-demo"
export SKYHOOK_ADMIN_KEY="sk_demo_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export SKYHOOK_API_URL="http://127.0.0.1:$port" SKYHOOK_API_KEY="$SKYHOOK_ADMIN_KEY"

local_pid=""
listen_pid=""
cleanup() {
  [ -z "$listen_pid" ] || "$root/scripts/stop-pid.sh" "$listen_pid"
  [ -z "$local_pid" ] || "$root/scripts/stop-pid.sh" "$local_pid"
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds="$1" what="$2"
  shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "demo: gave up waiting for $what" >&2
  return 1
}

echo "==> skyhook local on $SKYHOOK_API_URL"
"$skyhook" local >"$work/local.log" 2>&1 &
local_pid=$!
if ! wait_for 60 "the local API" curl -fsS "$SKYHOOK_API_URL/v1/health"; then
  cat "$work/local.log" >&2
  exit 1
fi

echo "==> skyhook listen --subscribe 'order.*'"
"$skyhook" listen --port 0 --subscribe 'order.*' --exit-after 1 >"$work/listen.log" 2>&1 &
listen_pid=$!
if ! wait_for 20 "the listener to subscribe" grep -q "Listening on" "$work/listen.log"; then
  cat "$work/listen.log" >&2
  exit 1
fi

echo "==> skyhook events send --type order.created"
"$skyhook" events send --type order.created --data '{"id": "ord_demo", "total": 4200}'

set +e
wait_for 30 "the delivery" bash -c "! kill -0 $listen_pid"
set -e
echo "==> what the receiver printed"
cat "$work/listen.log"
listen_pid=""
if grep -q "signature verified" "$work/listen.log"; then
  echo "==> demo passed: one webhook delivered and verified"
else
  echo "demo: no verified delivery" >&2
  tail -20 "$work/local.log" >&2
  exit 1
fi
