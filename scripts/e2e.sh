#!/usr/bin/env bash
# End-to-end tests on local sandbox hosts (needs root). Run by scripts/test.sh after the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
cargo test --release --test e2e -- --ignored --test-threads=1
