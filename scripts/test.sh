#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian machine with a Rust toolchain.
# Installs what the tests need when it is missing — Debian's prometheus + promtool (scrape tests),
# python3 with venv, the official openai and anthropic Python SDKs in target/sdk-venv (SDK
# tests), and curl (the README's quickstart commands are run as written) — then checks
# formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts a prometheus service on install; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi

venv=target/sdk-venv
if ! "$venv/bin/python" -c 'import openai, anthropic' >/dev/null 2>&1; then
  echo "==> installing the openai and anthropic Python SDKs into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openai anthropic
fi
export AGW_PYTHON="$PWD/$venv/bin/python"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
# CI=true makes tests that need an external binary fail instead of skipping.
CI="${CI:-true}" cargo test --workspace --locked
