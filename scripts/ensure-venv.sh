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
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "venv: installing moto server"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
fi
