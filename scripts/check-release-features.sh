#!/usr/bin/env bash
# Fails when a release build at the workspace root (what `make build`, `cargo lambda build`
# and SAM's build run) would compile skyhook-domain's `testing` feature: the in-memory twins,
# the contract suite and a jq runner without a sandbox must never reach a deployed binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
features="$(cargo tree --locked -e normal,features -i skyhook-domain --target all)"
if grep -q 'skyhook-domain feature "testing"' <<<"$features"; then
  echo "check-release-features: a default member turns on skyhook-domain/testing:" >&2
  grep -B2 -A6 'feature "testing"' <<<"$features" >&2
  exit 1
fi
echo "check-release-features: the release build compiles skyhook-domain without 'testing'"
