#!/usr/bin/env bash
# The smoke check through the real Lambda runtime: the four function binaries run under
# `cargo lambda watch` (AWS's Runtime API, emulated), each is invoked with its events/ file
# by `cargo lambda invoke`, and the answers are checked, then what reached the receivers and
# the queues. `make smoke` runs it inside scripts/with-emulator.sh, which sets
# AWS_ENDPOINT_URL. Every server binds 127.0.0.1, every wait is bounded, and everything
# started here is stopped by its PID.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="$venv/bin/python"
export PATH="$venv/bin:$PATH"
: "${AWS_ENDPOINT_URL:?run this through scripts/with-emulator.sh, as make smoke does}"

state="$root/.skyhook/smoke"
rm -rf "$state"
mkdir -p "$state"
started=$SECONDS

log() { echo "smoke: $*"; }
fail() {
  echo "smoke: FAILED: $*" >&2
  for f in "$state"/*.log; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

# Runs a check until it passes, for at most $1 seconds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      fail "$what within $limit s"
    fi
    sleep 0.2
  done
}

# Each background job leads its own process group (setsid), so stopping it by its PID also
# stops the function processes `cargo lambda watch` spawned.
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
# On a signal, stop what was started and end here rather than go on against dead servers.
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Debug builds are what `cargo lambda watch` runs; building first keeps the first invoke
# from compiling while its caller waits.
log "building the functions and the fixture (debug)"
build_started=$SECONDS
# The functions as a release build makes them (the workspace's default members, without the
# tests' features); the fixture from the tests crate.
cargo build --bin ingest-http --bin ingest-events --bin delivery --bin stats --bin api
cargo build -p skyhook-tests --bin skyhook-smoke-fixture
log "built in $((SECONDS - build_started)) s"

log "provisioning the emulator and starting the receivers"
setsid "${CARGO_TARGET_DIR:-target}/debug/skyhook-smoke-fixture" "$state/env" "$state/report.json" >"$state/fixture.log" 2>&1 &
fixture=$!
pids+=("$fixture")
wait_until 60 "the fixture to write the functions' environment" test -s "$state/env"

port="$(free_port)"
log "starting cargo lambda watch on 127.0.0.1:$port"
setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
  --env-file "$state/env" >"$state/watch.log" 2>&1 &
pids+=("$!")
wait_until 120 "cargo lambda watch to listen on 127.0.0.1:$port" port_open "$port"

# invoke FUNCTION FILE [NAME]: the answer goes to $state/NAME.json (NAME: the function).
invoke() {
  local function=$1 file=$2 name=${3:-$1}
  log "invoking $function with $file"
  if ! timeout 300 cargo lambda invoke "$function" --data-file "$file" \
    --invoke-address 127.0.0.1 --invoke-port "$port" --output-format json \
    >"$state/$name.json" 2>"$state/$name-invoke.log"; then
    fail "cargo lambda invoke $function"
  fi
  log "$function answered $(cat "$state/$name.json")"
}

# Asserts a Python expression over the JSON document `r` read from file $1.
check() {
  local file=$1 what=$2 expr=$3
  if ! "$python" -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
' "$file" "$expr"; then
    fail "$what: $(cat "$file")"
  fi
}

invoke ingest-http events/apigw-post-event.json
check "$state/ingest-http.json" "ingest-http answers 202 with two subscribers" \
  'r["statusCode"] == 202 and json.loads(r["body"])["subscribers"] == 2 and json.loads(r["body"])["id"].startswith("evt_")'

invoke ingest-http events/apigw-inbound-github.json inbound
check "$state/inbound.json" "ingest-http verifies the GitHub-style webhook and publishes github.push to two subscribers" \
  'r["statusCode"] == 202 and json.loads(r["body"])["type"] == "github.push" and json.loads(r["body"])["subscribers"] == 2'

invoke ingest-events events/eventbridge.json
check "$state/ingest-events.json" "ingest-events publishes order.shipped to two subscribers" \
  'r["type"] == "order.shipped" and r["subscribers"] == 2 and r["id"].startswith("evt_")'

invoke delivery events/sqs-batch.json
check "$state/delivery.json" "delivery reports exactly the failing record" \
  'r == {"batchItemFailures": [{"itemIdentifier": "9c2d1c7e-5b1a-4f0e-8a43-2f7b0d4f0002"}]}'

invoke stats events/dynamodb-stream.json
check "$state/stats.json" "stats folds the batch and answers nothing" 'r is None'

# The fixture reports what its receivers and queues saw when it is stopped.
kill -TERM "$fixture"
wait_until 30 "the fixture's report" test -s "$state/report.json"
log "the fixture saw $(cat "$state/report.json")"
check "$state/report.json" "one signed delivery to each endpoint, the malformed record dead-lettered, six messages queued" \
  'r["ok_requests"] == 1 and r["failing_requests"] == 1 and r["webhook_ids"] == ["evt_sample1"] and r["dlq_depth"] == 1 and r["queue_depth"] == 6'
check "$state/report.json" "the stats consumer counted the sample delivery (and not the directory change)" \
  'r["stats"] == {"success": 1, "failure": 0, "attempts": 1}'

log "passed in $((SECONDS - started)) s"
