#!/usr/bin/env bash
# The console's browser test: `skyhook local` and a verifying receiver (`skyhook listen`) on
# 127.0.0.1, then tests/browser/console.mjs drives Debian's Chromium through the console
# with playwright-core. Screenshots land in target/console-screenshots/ and are listed at
# the end. Run by `make test` when Chromium is installed (`.ci/run` installs it), or by
# `make test-browser`. Needs Node 18+ and npm for playwright-core (no browser download).
# Stops everything it started.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$chromium" ]; then
  echo "browser test: no Chromium (apt-get install chromium)" >&2
  exit 1
fi
if [ "${1:-}" != "--inside" ]; then
  cargo build --quiet -p skyhook-cli --bin skyhook
  # playwright-core only: it drives the Chromium above and downloads nothing.
  if [ ! -d tests/browser/node_modules/playwright-core ] \
    || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  fi
  exec "$root/scripts/with-emulator.sh" "$0" --inside
fi

source "$root/scripts/local-lib.sh"
local_setup browser
shots="${CARGO_TARGET_DIR:-$root/target}/console-screenshots"
rm -rf "$shots"
# Two quick attempts, so the test's dead letter is dead within seconds.
export SKYHOOK_RETRY_SCHEDULE="1s"

start_local
start_bg "$work/listen.log" "$skyhook" listen --port 0
wait_for 20 "the receiver" grep -q "Listening on" "$work/listen.log"
receiver="$(sed -n 's/^Listening on \([^ ]*\).*/\1/p' "$work/listen.log" | head -1)"

status=0
BASE_URL="http://127.0.0.1:$port" ADMIN_KEY="$SKYHOOK_ADMIN_KEY" RECEIVER_URL="$receiver" \
  SHOTS_DIR="$shots" CHROMIUM="$chromium" \
  timeout 300 node tests/browser/console.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "browser test: failed; the end of skyhook local's log:" >&2
  tail -30 "$work/local.log" >&2
fi
exit "$status"
