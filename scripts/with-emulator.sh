#!/usr/bin/env bash
# Runs a command with an AWS API emulator at AWS_ENDPOINT_URL.
#
# When AWS_ENDPOINT_URL is already set (LocalStack, say) it is used as is. Otherwise moto
# server is installed into the project's .venv when missing, started on a free loopback
# port, and stopped by PID when the command ends, whether it passed or failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
state="$root/.skyhook"
mkdir -p "$state"

export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  echo "emulator: using AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
  exec "$@"
fi

"$root/scripts/ensure-venv.sh"
port="${SKYHOOK_EMULATOR_PORT:-}"
if [ -z "$port" ]; then
  port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
fi
log="$state/moto-$port.log"
pid="$("$root/scripts/start-emulator.sh" "$port" "$log")"
echo "$pid" >"$state/moto-$port.pid"

stop() {
  "$root/scripts/stop-pid.sh" "$pid"
  rm -f "$state/moto-$port.pid"
}
trap stop EXIT
# On a signal, stop the emulator and end here rather than go on against a dead endpoint.
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
echo "emulator: moto server (pid $pid) at $AWS_ENDPOINT_URL"
set +e
"$@"
status=$?
set -e
exit "$status"
