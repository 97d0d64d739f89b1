#!/usr/bin/env bash
# make fuzz: the property-based fuzz tests (every test named fuzz_…, in <crate>/tests/fuzz.rs)
# round after round, each round with a fresh random seed (PROPTEST_RNG_SEED) and many cases
# per test (PROPTEST_CASES), until FUZZ_SECONDS (default 300) are spent or FUZZ_MAX_ROUNDS
# (default 50) rounds ran. Each round prints its seed and the cases it ran; the first failure
# stops the loop and prints the seed and the command that runs the same cases again.
#
#   FUZZ_CASES        cases per test and round, at most (default: PROPTEST_CASES, else 20000)
#   FUZZ_FIRST_CASES  cases of the first round, which measures how fast this machine goes
#                     (default 1000); later rounds take as many cases as fit in the time
#                     left, up to FUZZ_CASES, so no round is cut off by the deadline
#   FUZZ_SECONDS      the time budget, counted after the build (default 300)
#   FUZZ_MAX_ROUNDS   the most rounds (default 50)
#   FUZZ_FILTER       which tests, as a nextest filterset (default 'test(/fuzz_/)'), e.g.
#                     'test(/fuzz_/) & package(skyhook-domain)'
#   PROPTEST_MAX_SHRINK_TIME  ms a failing test may spend shrinking its input (default 60000)
#
# A round that runs past twice its expected time (plus a minute, and the shrink time) is
# stopped and counted as a failure: a hang is a finding too. No fuzz test needs the AWS
# emulator (the API's are aimed at a closed port), so none is started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-300}"
max_cases="${FUZZ_CASES:-${PROPTEST_CASES:-20000}}"
first_cases="${FUZZ_FIRST_CASES:-1000}"
max_rounds="${FUZZ_MAX_ROUNDS:-50}"
export PROPTEST_MAX_SHRINK_TIME="${PROPTEST_MAX_SHRINK_TIME:-60000}"
# A round smaller than this is not worth starting: the time is up.
min_cases=100
# fuzz_verify_binary (cli/tests/fuzz.rs) starts a process per case, so it runs at most this
# many whatever PROPTEST_CASES says.
binary_runs=24
filter="${FUZZ_FILTER:-test(/fuzz_/)}"

for n in "$seconds" "$max_cases" "$first_cases" "$max_rounds"; do
  case "$n" in
    '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS, FUZZ_CASES, FUZZ_FIRST_CASES and FUZZ_MAX_ROUNDS must be whole numbers" >&2; exit 2 ;;
  esac
done
if [ "$first_cases" -gt "$max_cases" ]; then
  first_cases="$max_cases"
fi

echo "fuzz: building the tests"
cargo nextest run --workspace -E "$filter" --no-run --cargo-quiet
tests="$(cargo nextest list --workspace -E "$filter" --message-format oneline --cargo-quiet)"
test_count="$(grep -c . <<<"$tests" || true)"
capped="$(grep -c ' fuzz_verify_binary$' <<<"$tests" || true)"
if [ "$test_count" -eq 0 ]; then
  echo "fuzz: no test matches $filter" >&2
  exit 1
fi
echo "fuzz: $test_count fuzz tests; ${seconds} s, at most $max_rounds rounds of at most $max_cases cases per test"

cases_in_round() {
  local per_test="$1"
  local capped_runs="$per_test"
  if [ "$capped_runs" -gt "$binary_runs" ]; then
    capped_runs="$binary_runs"
  fi
  echo $(( (test_count - capped) * per_test + capped * capped_runs ))
}

started=$(date +%s)
deadline=$((started + seconds))
total=0
round=0
cases="$first_cases"
# Microseconds a case took in the last round (all tests run side by side), to size the next
# one to 80 % of the time left.
us_per_case=""
while [ "$round" -lt "$max_rounds" ]; do
  now=$(date +%s)
  left=$((deadline - now))
  if [ "$left" -le 0 ]; then
    break
  fi
  if [ -n "$us_per_case" ]; then
    fit=$(( left * 800000 / us_per_case ))
    cases=$(( fit < max_cases ? fit : max_cases ))
    if [ "$cases" -lt "$min_cases" ]; then
      break
    fi
    expected=$(( (cases * us_per_case + 999999) / 1000000 ))
  else
    expected="$left"
  fi
  round=$((round + 1))
  seed="$(od -An -N8 -tu8 /dev/urandom | tr -d ' \n')"
  limit=$(( 2 * expected + 60 + PROPTEST_MAX_SHRINK_TIME / 1000 ))
  echo "fuzz: round $round: seed $seed, $cases cases per test"
  round_start=$(date +%s%N)
  set +e
  PROPTEST_RNG_SEED="$seed" PROPTEST_CASES="$cases" timeout "$limit" \
    cargo nextest run --workspace -E "$filter" --cargo-quiet --show-progress none \
    --status-level fail --final-status-level fail --failure-output final --success-output never
  status=$?
  set -e
  elapsed_ms=$(( ($(date +%s%N) - round_start) / 1000000 ))
  if [ "$status" -ne 0 ]; then
    if [ "$status" -eq 124 ]; then
      echo "fuzz: round $round did not finish within $limit s (a hang, or far slower than the round before)"
    fi
    echo "fuzz: round $round FAILED with seed $seed. The same cases again:"
    echo "  PROPTEST_RNG_SEED=$seed PROPTEST_CASES=$cases cargo nextest run --workspace -E '$filter'"
    echo "fuzz: $total cases passed in $((round - 1)) rounds before it"
    exit 1
  fi
  ran="$(cases_in_round "$cases")"
  total=$((total + ran))
  us_per_case=$(( elapsed_ms * 1000 / cases ))
  if [ "$us_per_case" -lt 1 ]; then
    us_per_case=1
  fi
  echo "fuzz: round $round passed: seed $seed, $ran cases ($cases per test) in $((elapsed_ms / 1000)) s; $total cases so far"
done
echo "fuzz: done: $round rounds, $total cases, $(( $(date +%s) - started )) s, no failure"
