#!/usr/bin/env bash
# End-to-end tests on local sandbox hosts (needs root). Run by scripts/test.sh after the unit tests.
# The shared `e2e` hosts (itrust, checkbox, monitor) are built once by the first test that needs them
# (tests/e2e/common.rs) and torn down here at the end, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
teardown() {
  echo "== e2e teardown: pipeline prod down (environment e2e)"
  cargo test --release --test e2e -- --ignored --exact common::teardown
}
trap teardown EXIT
cargo test --release --test e2e -- --ignored --test-threads=1 --skip common::teardown
