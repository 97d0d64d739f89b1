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

source "$root/scripts/local-lib.sh"
local_setup demo

echo "==> skyhook local on $SKYHOOK_API_URL"
start_local

echo "==> skyhook listen --subscribe 'order.*'"
start_bg "$work/listen.log" "$skyhook" listen --port 0 --subscribe 'order.*' --exit-after 1
listen_pid=$bg_pid
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
if grep -q "signature verified" "$work/listen.log"; then
  echo "==> demo passed: one webhook delivered and verified"
else
  echo "demo: no verified delivery" >&2
  tail -20 "$work/local.log" >&2
  exit 1
fi
