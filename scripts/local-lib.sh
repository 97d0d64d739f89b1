# Shared by the scripts that run `skyhook local` for a while (demo.sh, demo-inbound.sh,
# browser-test.sh), inside scripts/with-emulator.sh. Source it, then:
#   local_setup NAME   a work directory, a free port, a fresh admin key, the SKYHOOK_* settings
#                      and a trap that stops everything started here and removes the work dir
#   start_local        `skyhook local` in the background, until its API answers
#   start_bg LOG CMD…  any other process in the background, stopped by the same trap
#   wait_for SECONDS WHAT CMD…   polls CMD every 0.2 s
# Every server binds 127.0.0.1 and every wait is bounded.

lib_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started_pids=()

local_setup() {
  script_name="$1"
  work="$(mktemp -d)"
  skyhook="${CARGO_TARGET_DIR:-$lib_root/target}/debug/skyhook"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  export SKYHOOK_LOCAL_ADDR="127.0.0.1:$port"
  export SKYHOOK_LOCAL_PREFIX="skyhook-$script_name-$$"
  export SKYHOOK_ADMIN_KEY="sk_${script_name//-/_}_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  export SKYHOOK_API_URL="http://127.0.0.1:$port" SKYHOOK_API_KEY="$SKYHOOK_ADMIN_KEY"
  trap local_cleanup EXIT
}

local_cleanup() {
  local i
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    "$lib_root/scripts/stop-pid.sh" "${started_pids[$i]}"
  done
  rm -rf "$work"
}

wait_for() {
  local seconds="$1" what="$2"
  shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$script_name: gave up waiting for $what" >&2
  return 1
}

# start_bg LOG CMD…: sets bg_pid.
start_bg() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 &
  bg_pid=$!
  started_pids+=("$bg_pid")
}

start_local() {
  start_bg "$work/local.log" "$skyhook" local
  local_pid=$bg_pid
  if ! wait_for 60 "skyhook local" curl -fsS "$SKYHOOK_API_URL/v1/health"; then
    cat "$work/local.log" >&2
    return 1
  fi
}
