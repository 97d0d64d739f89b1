#!/usr/bin/env bash
# make test-stress: `make test` several times in a row (STRESS_RUNS, default 5) while a CPU
# hog keeps both cores busy, to flush out tests that only pass on an idle machine. The hog
# processes are stopped by PID however the runs end; the first failing run stops the loop.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${STRESS_RUNS:-5}"
hogs="${STRESS_HOGS:-$(nproc)}"
pids=()
stop() {
  for pid in "${pids[@]}"; do
    "$root/scripts/stop-pid.sh" "$pid" || true
  done
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
for _ in $(seq 1 "$hogs"); do
  # A busy loop that ends by itself after two hours at the latest.
  timeout 7200 sh -c 'while :; do :; done' &
  pids+=("$!")
done
echo "stress: $hogs CPU hogs running (pids ${pids[*]}); $runs runs of make test"
for i in $(seq 1 "$runs"); do
  started=$(date +%s)
  if make -C "$root" test; then
    echo "stress: run $i of $runs passed in $(( $(date +%s) - started )) s"
  else
    echo "stress: run $i of $runs FAILED after $(( $(date +%s) - started )) s"
    exit 1
  fi
done
echo "stress: all $runs runs passed"
