#!/usr/bin/env bash
# End-to-end tests on local sandbox hosts (needs root). Run by scripts/test.sh after the unit tests.
# The shared `e2e` hosts (itrust, checkbox, monitor) are built once by the first test that needs them
# (tests/e2e/common.rs) and torn down here at the end, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binary as the test build makes it (with the features dev-dependencies unify; a plain `cargo build
# --release` would compile some crates and the tool a second time for nothing after `cargo test --release`).
cargo test --release --test e2e --no-run
teardown() {
  echo "== e2e teardown: pipeline prod down (environment e2e)"
  cargo test --release --test e2e -- --ignored --exact common::teardown
}
trap teardown EXIT
# rollout_itrust:: is opt-in (an iTrust rollout on the sandbox costs minutes the CI budget does not have):
# run it by name, see tests/e2e/rollout_itrust.rs.
cargo test --release --test e2e -- --ignored --test-threads=1 --skip common::teardown --skip rollout_itrust::

# The README's first command, `pipeline demo` (prod hosts, both apps, a canary of the bundled preview service),
# in target/e2e-work/demo; its prod hosts are destroyed afterwards, its canary hosts by the demo itself.
echo "== pipeline demo"
demo_dir="$PWD/target/e2e-work/demo"
bin="$PWD/target/release/pipeline"
rm -rf "$demo_dir" && mkdir -p "$demo_dir"
demo_status=0
(cd "$demo_dir" && "$bin" --state-dir .pipeline demo --duration 30s) || demo_status=$?
if ! (cd "$demo_dir" && "$bin" --state-dir .pipeline prod down --provider local --env prod); then
  [ "$demo_status" -ne 0 ] || demo_status=1
fi
exit "$demo_status"
