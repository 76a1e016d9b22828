#!/usr/bin/env bash
# Soak: mixed traffic against one gateway for minutes, then its memory and
# its sanitizer or valgrind verdict (README "Soak and fuzzing"). Not in CI.
#
#   tests/soak/run.sh asan [MINUTES]       ASan+UBSan+LeakSanitizer build (build-asan/), default 10 min
#   tests/soak/run.sh valgrind [MINUTES]   memcheck --leak-check=full on the Release build (build/), default 2 min
#
# Builds first (if missing):
#   cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGATEWAY_SANITIZE=address,undefined && cmake --build build-asan -j2
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON && cmake --build build -j2
# GATEWAY_BIN overrides the binary. SOAK_CONCURRENCY, SOAK_WARMUP_S,
# SOAK_RSS_GROWTH_KB, SOAK_HUP_S: see soak.mjs. SOAK_SUMMARY=FILE writes the
# figures as one JSON line. Exit 0 only when every request got what it should,
# RSS after the warm-up grew less than the bound, and the gateway exited 0
# with nothing reported. On a shared machine: nice -n 10 tests/soak/run.sh ...
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-asan}
case $mode in
asan)
  minutes=${2:-10}
  bin=${GATEWAY_BIN:-build-asan/ollama-gateway}
  # A small quarantine: the default 256 MB fills for minutes and would read
  # as growth; 32 MB still catches a use after free of recent blocks.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:quarantine_size_mb=32:malloc_context_size=20"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  : "${SOAK_CONCURRENCY:=16}" "${SOAK_WARMUP_S:=60}"
  ;;
valgrind)
  minutes=${2:-2}
  real=${GATEWAY_BIN:-build/ollama-gateway}
  # valgrind runs the threads one at a time, about 30x slower: fewer clients,
  # longer waits. Its exit code is 99 on any error, definite or indirect
  # leaks included; the daemon's own exit code otherwise.
  wrapper=$(mktemp /tmp/ogw-valgrind.XXXXXX)
  trap 'rm -f "$wrapper"' EXIT
  cat >"$wrapper" <<WRAP
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no \
  --log-fd=2 "$(realpath "$real")" "\$@"
WRAP
  chmod +x "$wrapper"
  bin=$wrapper
  : "${SOAK_CONCURRENCY:=4}" "${SOAK_WARMUP_S:=30}"
  export SOAK_TIMEOUT_MS=${SOAK_TIMEOUT_MS:-120000} SOAK_START_MS=${SOAK_START_MS:-120000}
  ;;
*)
  echo "usage: $0 asan|valgrind [MINUTES]" >&2
  exit 2
  ;;
esac
if [ ! -x "${bin}" ] && [ "$mode" = asan ]; then
  echo "$bin is missing: build it first (see the top of $0)" >&2
  exit 2
fi
export GATEWAY_BIN=$bin SOAK_CONCURRENCY SOAK_WARMUP_S
export SOAK_SECONDS=$((minutes * 60))
echo "soak: $mode, $minutes min, $SOAK_CONCURRENCY clients, $(date -u +%FT%TZ)"
exec node tests/soak/soak.mjs
