#!/usr/bin/env bash
# End-to-end tests on local sandbox hosts (needs root). Run by scripts/test.sh after the unit tests.
#
# The tests run in two groups side by side, each in its own `cargo test` process, one test at a time
# (the tests of a module share hosts and run in their order), on environments no test of the other
# group touches; most of their time is spent waiting (ansible-playbook over SSH, JVM and Node start-ups,
# judged windows), so on two cores the groups take little more than the longer one alone:
#   apps:  canary, canary_signals, demo_signals, deploy, monitor, rollout_itrust, sandbox
#   fleet: fleet, rollout, then `pipeline demo`
# Every line of their output is prefixed with the time and the group; a test's time is the gap to the
# previous line of its group. The shared hosts (`e2e`: itrust, checkbox, monitor; `e2e-fleet`,
# `e2e-canary`, `e2e-itr`) are built by the first test that needs them (tests/e2e/common.rs) and torn
# down here at the end, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binary as the test build makes it (with the features dev-dependencies unify; a plain `cargo build
# --release` would compile some crates and the tool a second time for nothing after `cargo test --release`).
cargo test --release --test e2e --no-run

# Each test module in exactly one group: a new module must be added here, or this stops.
apps_modules="canary canary_signals demo_signals deploy monitor rollout_itrust sandbox"
fleet_modules="fleet rollout"
modules="$(cargo test --release --test e2e -- --ignored --list 2>/dev/null | sed -n 's/::.*: test$//p' | sort -u | grep -vx common | tr '\n' ' ')"
grouped="$(printf '%s\n' $apps_modules $fleet_modules | sort | tr '\n' ' ')"
if [ "$modules" != "$grouped" ]; then
  echo "e2e.sh: the e2e test modules are now: $modules; put each in one group (grouped: $grouped)" >&2
  exit 1
fi
filters() { for m in "$@"; do printf '%s:: ' "$m"; done; }

stamp() {
  local line
  while IFS= read -r line; do printf '%(%H:%M:%S)T [%s] %s\n' -1 "$1" "$line"; done
}
# `--exact` is not used: a filter `rollout::` matches `rollout::rollout_0_…` and not `rollout_itrust::…`.
run_group() {
  local name="$1"
  shift
  echo "== $(date +%T) e2e group $name: $*"
  # shellcheck disable=SC2046 # one filter per word
  cargo test --release --test e2e -- --ignored --test-threads=1 $(filters "$@") 2>&1 | stamp "$name"
}

# The README's first command, `pipeline demo` (prod hosts, both apps, a canary of the bundled preview service),
# in target/e2e-work/demo; its prod hosts are destroyed afterwards, its canary hosts by the demo itself.
demo() {
  echo "== $(date +%T) pipeline demo"
  local demo_dir="$PWD/target/e2e-work/demo" bin="$PWD/target/release/pipeline" status=0
  rm -rf "$demo_dir" && mkdir -p "$demo_dir"
  (cd "$demo_dir" && "$bin" --state-dir .pipeline demo --duration 30s) 2>&1 | stamp demo || status=$?
  if ! (cd "$demo_dir" && "$bin" --state-dir .pipeline prod down --provider local --env prod) 2>&1 | stamp demo; then
    [ "$status" -ne 0 ] || status=1
  fi
  return "$status"
}

# The fleet group, then the demo: the fleet group is the shorter one (26 min against 27 in session 7's CI run).
fleet_lane() {
  local fleet_status=0 demo_status=0
  # shellcheck disable=SC2086 # one module per word
  run_group fleet $fleet_modules || fleet_status=$?
  demo || demo_status=$?
  echo "== e2e: fleet group exit $fleet_status, demo exit $demo_status"
  [ "$fleet_status" -eq 0 ] && [ "$demo_status" -eq 0 ]
}

fleet_pid=""
teardown() {
  [ -z "$fleet_pid" ] || wait "$fleet_pid" 2>/dev/null || true
  echo "== e2e teardown: pipeline prod down (the shared environment and its -fleet, -canary and -itr ones)"
  cargo test --release --test e2e -- --ignored --exact common::teardown
}
trap teardown EXIT

fleet_lane &
fleet_pid=$!
apps_status=0
# shellcheck disable=SC2086 # one module per word
run_group apps $apps_modules || apps_status=$?
echo "== e2e: apps group exit $apps_status"
lane_status=0
wait "$fleet_pid" || lane_status=$?
fleet_pid=""
[ "$apps_status" -ne 0 ] || apps_status="$lane_status"
exit "$apps_status"
