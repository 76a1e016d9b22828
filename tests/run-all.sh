#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. a Release build (gcc, -Werror; the one the README runs) and every ctest test (unit, integration,
#      npm, and agents: Claude Code and Codex CLI end to end);
#   2. the libFuzzer targets built with clang, replaying their corpus (fuzz-smoke);
#   3. an ASan+UBSan build and every ctest test again (the agents' too: about 30 s);
#   4. a ThreadSanitizer build (gcc; TSan and ASan cannot share a build) running
#      the unit tests (the backends' thread test among them) and the integration
#      tests, whose daemon runs its worker and discovery threads under TSan
#      (its summary ends the output; tests/tsan.supp lists what is suppressed).
# Installs missing Debian packages (deploy/install-deps.sh --test) and runs
# `npm ci` in tests/ and in tests/agents/ when their node_modules is missing or stale. Set JOBS to change build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

bash deploy/install-deps.sh --test

if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules ]; then
  (cd tests && npm ci --no-audit --no-fund)
fi
# The real agents (Claude Code, Codex CLI; about 800 MB) have a folder of their own.
if [ ! -d tests/agents/node_modules ] || [ tests/agents/package-lock.json -nt tests/agents/node_modules ]; then
  (cd tests/agents && npm ci --no-audit --no-fund)
fi

echo "== build: gcc, Release (as the README runs it), warnings as errors"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j 2

if command -v clang >/dev/null; then
  echo "== build: clang, fuzz targets; replay the corpus"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGATEWAY_FUZZ=ON \
    -DGATEWAY_NPM_TESTS=OFF -DGATEWAY_AGENT_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j "$JOBS"
  ctest --test-dir build-fuzz --output-on-failure -L fuzz-smoke
fi

echo "== build: gcc, AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGATEWAY_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$JOBS"
ctest --test-dir build-asan --output-on-failure -j 2

echo "== build: gcc, ThreadSanitizer (unit and integration tests)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGATEWAY_SANITIZE=thread \
  -DGATEWAY_NPM_TESTS=OFF -DGATEWAY_AGENT_TESTS=OFF >/dev/null
cmake --build build-tsan -j "$JOBS"
ctest --test-dir build-tsan --output-on-failure -j 2 -L 'unit|integration'
