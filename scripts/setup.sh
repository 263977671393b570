#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (as root) for pipeline: the system packages the local sandbox,
# the tests and the benchmarks use, Ansible from PyPI in its own virtualenv, and a Rust toolchain if missing.
# Safe to run again: every step checks before it installs.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs packages and the sandbox needs root)" >&2
  exit 1
fi

ANSIBLE_VERSION="${PIPELINE_ANSIBLE_VERSION:-12.3.0}"
ANSIBLE_LINT_VERSION="${PIPELINE_ANSIBLE_LINT_VERSION:-26.10.1}"
VENV=/opt/pipeline/venv

packages=(
  ca-certificates curl git openssh-client iproute2 nftables
  systemd-container debootstrap          # the local sandbox: nspawn hosts built from a Debian base
  nginx wrk                              # loopback load-test target and the wrk comparison
  nodejs npm                             # runs the preview-service stand-in in its loopback test
  chromium                               # headless checks of the HTML report and the dashboard
  prometheus prometheus-node-exporter prometheus-blackbox-exporter  # real Prometheus for the dashboard test
  prometheus-alertmanager prometheus-pushgateway  # alerts and deploy events in the dashboard test
  python3 python3-venv
  default-jdk-headless libmariadb-java libtomcat10-java  # builds the iTrust stand-in WAR (examples/itrust-standin)
)
# A package counts as present when dpkg has it, or, for the ones below, when its command is already on
# PATH from elsewhere: a Node.js from NodeSource (or nvm) ships its own npm, and Debian's npm package
# cannot be installed next to it ("held broken packages").
declare -A provides_command=([nodejs]=node [npm]=npm [chromium]=chromium [wrk]=wrk)
missing=()
for p in "${packages[@]}"; do
  if [ -n "${provides_command[$p]:-}" ] && command -v "${provides_command[$p]}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [[ " ${missing[*]} " == *" npm "* ]] && dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q nodesource; then
  echo "setup.sh: nodejs $(dpkg-query -W -f='${Version}' nodejs) comes from NodeSource but has no npm on PATH;" >&2
  echo "setup.sh: Debian's npm cannot be installed next to it. Reinstall NodeSource's nodejs (it bundles npm) or remove it and run setup.sh again." >&2
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The local sandbox mounts an overlay per host: make sure the kernel has overlayfs loaded.
if ! grep -qw overlay /proc/filesystems; then
  modprobe overlay 2>/dev/null || echo "setup.sh: warning: this kernel has no overlayfs; the local sandbox (--provider local) needs it" >&2
fi
# nginx is only a test fixture here: do not leave the distribution's default site running.
# The same for the monitoring daemons: the tests start their own instances on free loopback ports.
for s in nginx prometheus prometheus-node-exporter prometheus-blackbox-exporter prometheus-alertmanager prometheus-pushgateway; do
  if systemctl is-active --quiet "$s" 2>/dev/null; then systemctl disable --now "$s" >/dev/null 2>&1 || true; fi
done

if [ ! -x "$VENV/bin/ansible-playbook" ] || ! "$VENV/bin/python" -m pip show ansible 2>/dev/null | grep -q "^Version: $ANSIBLE_VERSION$"; then
  echo "setup.sh: installing ansible $ANSIBLE_VERSION and ansible-lint $ANSIBLE_LINT_VERSION into $VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "ansible==$ANSIBLE_VERSION" "ansible-lint==$ANSIBLE_LINT_VERSION"
fi
for tool in ansible ansible-playbook ansible-galaxy ansible-lint ansible-inventory; do
  ln -sf "$VENV/bin/$tool" "/usr/local/bin/$tool"
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: installing a Rust toolchain with rustup"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
echo "setup.sh: ready"
