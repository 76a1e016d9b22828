#!/usr/bin/env bash
# How many locks one request takes, and how often they are contended, under a
# saturating load: the gateway runs with tests/bench/lockstat.c preloaded
# (it counts every pthread mutex and rwlock taken through the dynamic linker)
# while wrk sends non-streamed and then streamed chat requests, first with no
# key, then with a key that has rpm/tpm/in-flight limits (the limiter's lock).
#
#   bash tests/bench/locks.sh [BINARY]      (default: build/ollama-gateway)
#
# Knobs: DURATION=10 CONNECTIONS=64 WORKERS=2 TOKENS=32. Loopback only.
# Needs wrk, node, curl, cc.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${1:-$ROOT/build/ollama-gateway}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WORKERS=${WORKERS:-2}
TOKENS=${TOKENS:-32}
for t in wrk node curl cc; do command -v "$t" >/dev/null || { echo "locks.sh: needs $t" >&2; exit 1; }; done

WORK=$(mktemp -d)
FAKE_PID=
GW_PID=
cleanup() {
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cc -O2 -shared -fPIC -o "$WORK/lockstat.so" "$HERE/lockstat.c" -ldl -lpthread

node "$ROOT/tests/fake_ollama/fake.mjs" --port 0 --tokens "$TOKENS" --delay-ms 0 >"$WORK/fake.out" &
FAKE_PID=$!
for _ in $(seq 100); do grep -q port "$WORK/fake.out" 2>/dev/null && break; sleep 0.1; done
FAKE_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WORK/fake.out")
[ -n "$FAKE_PORT" ] || { echo "locks.sh: the fake did not start" >&2; exit 1; }

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# run AUTH STREAM -> prints "requests locks contended wait_us"
run() {
    local auth=$1 stream=$2 port key=
    port=$(free_port)
    cat >"$WORK/gateway.json" <<EOF
{ "listen": ["127.0.0.1:$port"], "workers": $WORKERS, "auth": "$auth", "keys_file": "keys.json",
  "backends": [{ "name": "fake", "url": "http://127.0.0.1:$FAKE_PORT" }],
  "limits": { "auth_failures_per_minute": 0 },
  "log": { "level": "warn", "access": "off" } }
EOF
    rm -f "$WORK/keys.json"
    if [ "$auth" = keys ]; then
        key=$("$BIN" key create bench --rpm 1000000000 --tpm 1000000000 --max-inflight 100000 \
            -c "$WORK/gateway.json" 2>/dev/null)
    fi
    LD_PRELOAD="$WORK/lockstat.so" "$BIN" serve -c "$WORK/gateway.json" 2>"$WORK/gw.err" &
    GW_PID=$!
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    local out
    out=$(BENCH_STREAM=$stream BENCH_TOKENS=$TOKENS BENCH_KEY=$key wrk -t2 -c"$CONNECTIONS" \
        -d"${DURATION}s" -s "$HERE/chat.lua" "http://127.0.0.1:$port" 2>&1)
    kill -TERM "$GW_PID"
    wait "$GW_PID" || true
    GW_PID=
    grep '^lockstat: caller' "$WORK/gw.err" | sed "s/^/  [auth $auth, stream $stream] /" >&2
    local reqs
    reqs=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
    echo "$reqs $(sed -n 's/^lockstat: locks \([0-9]*\) contended \([0-9]*\) wait_us \([0-9]*\)$/\1 \2 \3/p' "$WORK/gw.err")"
}

printf '%-28s %10s %12s %12s %14s %14s\n' load requests locks/req contended/req "contended %" "wait us/req"
for auth in none keys; do
    for stream in 0 1; do
        read -r reqs locks cont wait < <(run "$auth" "$stream")
        [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { echo "locks.sh: no requests measured" >&2; exit 1; }
        label="$([ "$stream" = 1 ] && echo streamed || echo non-streamed), auth $auth"
        awk -v l="$label" -v r="$reqs" -v k="$locks" -v c="$cont" -v w="$wait" 'BEGIN {
            printf "%-28s %10d %12.2f %12.4f %14.3f %14.3f\n", l, r, k / r, c / r, k ? 100 * c / k : 0, w / r }'
    done
done
