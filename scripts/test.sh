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
# One build for everything: the release profile (the e2e tests and the demo need it, and the judge
# simulations run at full size in it), so CI compiles the crates once, not once per profile.
echo "== build every target (release)"
cargo test --release --no-run
# ansible-lint needs one core for about 40 s, and the loopback tests below leave about half of the
# machine idle (they wait on real daemons, Chromium and ansible-playbook runs): it runs next to them,
# its output is printed after them, and its failure fails this script as before.
lint_log="$(mktemp)"
images_log="$(mktemp)"
trap 'rm -f "$lint_log" "$images_log"' EXIT
ansible-lint --offline --profile production roles/ playbooks/ >"$lint_log" 2>&1 &
lint_pid=$!
# The e2e suite's sandbox images (debootstrap, then Node.js, or the JDK and MariaDB: minutes of downloads
# and unpacking on a fresh machine, a second when they are cached) are built next to the loopback tests
# too; the e2e tests would otherwise wait for them one after the other. Its output and failure follow them.
cargo test --release --test e2e -- --ignored --exact --nocapture common::images >"$images_log" 2>&1 &
images_pid=$!
echo "== unit and loopback tests, judge simulations at full size (release)"
# Every test target by name, so that tests/it gets more threads than cores (see above): a new target
# must be added here, or this stops.
targets="$(cd tests && ls -d ./*.rs ./*/main.rs | sed -E 's#^\./##; s#(\.rs|/main\.rs)$##' | sort | tr '\n' ' ')"
if [ "$targets" != "e2e it judge_simulation " ]; then
  echo "test.sh: the test targets are now: $targets; run each of them below" >&2
  exit 1
fi
cargo test --release --lib --bins --test judge_simulation --test e2e
cargo test --release --test it -- --test-threads=4
cargo test --release --doc
echo "== ansible-lint (production profile, offline) over the roles and the entry playbooks"
lint_status=0
wait "$lint_pid" || lint_status=$?
cat "$lint_log"
[ "$lint_status" -eq 0 ] || exit "$lint_status"
echo "== the e2e suite's sandbox images (built next to the tests above)"
images_status=0
wait "$images_pid" || images_status=$?
cat "$images_log"
[ "$images_status" -eq 0 ] || exit "$images_status"
echo "== end-to-end tests on sandbox hosts"
./scripts/e2e.sh
