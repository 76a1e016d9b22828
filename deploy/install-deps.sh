#!/usr/bin/env bash
# Install what ollama-gateway needs from Debian 12 (bookworm) packages.
#   bash deploy/install-deps.sh          build and run
#   bash deploy/install-deps.sh --test   also what the test suite needs
# Packages already installed are left alone, so this is quick the second time.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev
      libsodium-dev libhiredis-dev ca-certificates)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(libcmocka-dev clang libclang-rt-14-dev clang-format redis-server)
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
