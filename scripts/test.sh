#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian machine with a Rust toolchain.
# Installs the Debian packages the tests need (prometheus + promtool for the scrape test) when
# they are missing, then checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts a prometheus service on install; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
# CI=true makes tests that need an external binary fail instead of skipping.
CI="${CI:-true}" cargo test --workspace --locked
