#!/usr/bin/env bash
# A long fuzzing run, one target at a time (README "Soak and fuzzing"):
#
#   tests/fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Each target runs until 10 million executions or SECONDS_PER_TARGET
# (default 3600), whichever comes first, on a copy of its seed corpus in
# $FUZZ_WORK (default /tmp/ogw-fuzz) so the repository's corpus stays small;
# a crash's input lands in $FUZZ_WORK/artifacts-TARGET/ (add it to
# tests/fuzz/corpus/TARGET/ once fixed). Prints executions, exec/s and
# coverage per target. Needs the fuzz build:
#   CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGATEWAY_FUZZ=ON
#   cmake --build build-fuzz -j2
# On a shared machine: nice -n 19 tests/fuzz/campaign.sh 900
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-3600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
work=${FUZZ_WORK:-/tmp/ogw-fuzz}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  dict=()
  if [ -f "tests/fuzz/$name.dict" ]; then
    dict=("-dict=tests/fuzz/$name.dict")
  elif [[ $name == chat_* ]]; then
    dict=("-dict=tests/fuzz/chat.dict")
  fi
  seed=tests/fuzz/corpus/$t
  [ -d "$seed" ] || seed=tests/fuzz/corpus/$name
  mkdir -p "$work/corpus-$t" "$work/artifacts-$t"
  log=$work/$t.log
  rc=0
  "build-fuzz/tests/fuzz/$t" -runs=10000000 -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts-$t/" "${dict[@]}" "$work/corpus-$t" "$seed" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  echo "$t: rc $rc, ${runs:-?} executions, ${speed:-?} exec/s, ${cov:-?}"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
