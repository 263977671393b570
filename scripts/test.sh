#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs every test: formatting, lints, unit and loopback
# integration tests, then the end-to-end tests on local sandbox hosts. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== ansible-lint (production profile, offline) over the roles"
ansible-lint --offline --profile production roles/
# One build for everything: the release profile (the e2e tests and the demo need it, and the judge
# simulations run at full size in it), so CI compiles the crates once, not once per profile.
echo "== unit and loopback tests, judge simulations at full size (release)"
cargo test --release
echo "== end-to-end tests on sandbox hosts"
./scripts/e2e.sh
