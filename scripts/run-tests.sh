#!/usr/bin/env bash
# Runs every test of the workspace (nextest when installed, cargo test otherwise), then,
# when the whole suite ran and passed, the IAM check: what each function did in AWS during
# the suite, held to the roles of infra/template.yaml (tests/bin/iam_check.rs).
#
# Arguments go to the test runner (a filter, say); with any, the IAM check is skipped,
# since a part of the suite does not exercise every grant.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
record="$root/.skyhook/iam-record"
rm -rf "$record"
mkdir -p "$record"
export SKYHOOK_IAM_RECORD="$record"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi

if [ "$#" -eq 0 ]; then
  cargo run -q -p skyhook-tests --bin skyhook-iam-check -- "$record"
fi
