#!/usr/bin/env bash
# Creates the project's Python virtualenv (.venv, git-ignored) with the tools the tests and
# the local runner use, when they are missing. Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "venv: creating $venv"
  "$python" -m venv "$venv"
fi
# Installs again whenever requirements.txt changed since the last install.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/scripts/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "venv: installing moto server, the OpenAPI validator and Schemathesis"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
  echo "$want" >"$stamp"
fi
