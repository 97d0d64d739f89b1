#!/usr/bin/env bash
# Installs the build and deploy tools (cargo-lambda, the SAM CLI, cfn-lint) into the project's
# .venv when they are missing, so `make build`, `make deploy`, `make lint-infra` and
# `make smoke` need nothing installed by hand. Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

"$root/scripts/ensure-venv.sh"
for tool in cargo-lambda sam cfn-lint; do
  if [ ! -x "$venv/bin/$tool" ]; then
    echo "venv: installing build and deploy tools"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements-deploy.txt"
    break
  fi
done
