#!/usr/bin/env bash
# `make demo-inbound`: starts the emulator and `skyhook local`, creates a GitHub-style inbound
# source, runs `skyhook listen` subscribed to github.* with a transform, then posts a webhook
# signed as GitHub signs (X-Hub-Signature-256, HMAC-SHA256 of the body, computed here with
# Python's hmac), and shows it verified, published, transformed and delivered to the
# listener, which verifies Skyhook's own signature. A forged copy is refused on the way.
# Stops everything it started; exits 0 only if all of that happened.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" != "--inside" ]; then
  cargo build --quiet -p skyhook-cli --bin skyhook
  exec "$root/scripts/with-emulator.sh" "$0" --inside
fi

source "$root/scripts/local-lib.sh"
local_setup demo-inbound
github_secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"

echo "==> skyhook local on $SKYHOOK_API_URL"
start_local

echo "==> skyhook sources create --verification github --type-header X-GitHub-Event --type-prefix github."
"$skyhook" --json sources create --name "GitHub: octo-org/shop" --verification github \
  --secret "$github_secret" --type-header X-GitHub-Event --type-prefix github. >"$work/source.json"
source_id="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$work/source.json")"
echo "    source $source_id, inbound URL $SKYHOOK_API_URL/v1/inbound/$source_id"

echo "==> skyhook listen --subscribe 'github.*' --transform '{repo: …, pusher: …, commits: …}'"
start_bg "$work/listen.log" "$skyhook" listen --port 0 --subscribe 'github.*' \
  --transform '{repo: .data.repository.full_name, pusher: .data.pusher.name, commits: (.data.commits | length)}' \
  --exit-after 1
listen_pid=$bg_pid
if ! wait_for 20 "the listener to subscribe" grep -q "Listening on" "$work/listen.log"; then
  cat "$work/listen.log" >&2
  exit 1
fi

body='{"ref":"refs/heads/main","repository":{"full_name":"octo-org/shop"},"pusher":{"name":"octocat"},"commits":[{"id":"7638417d","message":"Fix the checkout total"},{"id":"1f4e0a2b","message":"Add a test"}]}'
signature="sha256=$(printf '%s' "$body" | python3 -c '
import hashlib, hmac, sys
print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())
' "$github_secret")"
post() { # post SIGNATURE: the answer's body and status
  curl -sS -X POST "$SKYHOOK_API_URL/v1/inbound/$source_id" \
    -H 'content-type: application/json' -H 'user-agent: GitHub-Hookshot/demo' \
    -H 'x-github-event: push' -H "x-github-delivery: $(python3 -c 'import uuid; print(uuid.uuid4())')" \
    -H "x-hub-signature-256: $1" --data-binary "$body" -w ' (HTTP %{http_code})\n'
}

echo "==> a forged push (signed with another secret) is refused"
forged="sha256=$(printf '%s' "$body" | python3 -c '
import hashlib, hmac, sys
print(hmac.new(b"not the secret", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())
')"
answer="$(post "$forged")"
echo "    $answer"
case "$answer" in
  *invalid_signature*"(HTTP 401)") ;;
  *) echo "demo-inbound: the forged webhook was not refused" >&2; exit 1 ;;
esac

echo "==> the push as GitHub signs it: POST /v1/inbound/$source_id"
answer="$(post "$signature")"
echo "    $answer"
case "$answer" in
  *'"type":"github.push"'*"(HTTP 202)") ;;
  *) echo "demo-inbound: the signed webhook was not accepted" >&2; tail -20 "$work/local.log" >&2; exit 1 ;;
esac

set +e
wait_for 30 "the delivery" bash -c "! kill -0 $listen_pid"
set -e
echo "==> what the listener printed"
cat "$work/listen.log"
if grep -q "signature verified" "$work/listen.log" && grep -q '"octo-org/shop"' "$work/listen.log"; then
  echo "==> demo-inbound passed: a GitHub-style webhook verified, published, transformed and delivered, its delivery verified"
else
  echo "demo-inbound: no verified, transformed delivery" >&2
  tail -20 "$work/local.log" >&2
  exit 1
fi
