#!/usr/bin/env bash
# Install what ollama-gateway needs from Debian 12 (bookworm) packages.
#   bash deploy/install-deps.sh          build and run
#   bash deploy/install-deps.sh --test   also what the test suite needs
# Packages already installed are left alone, so this is quick the second time.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev
      libsodium-dev libgnutls28-dev libhiredis-dev ca-certificates)
if [ "${1:-}" = "--test" ]; then
  # prometheus: its promtool checks /metrics (tests/integration/metrics.test.mjs);
  # chromium: the status page in a headless browser (tests/integration/status.test.mjs);
  # redis-server: shared limits across replicas (tests/integration/shared_limits.test.mjs);
  # python3-yaml: the deployment files parsed (tests/integration/deploy.test.mjs)
  pkgs+=(libcmocka-dev clang libclang-rt-14-dev clang-format prometheus chromium openssl curl redis-server
         python3-yaml)
  command -v node >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
