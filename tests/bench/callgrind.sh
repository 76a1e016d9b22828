#!/usr/bin/env bash
# Exact cost per request, in user-space instructions, of one or more gateway
# binaries (callgrind counts instructions, not seconds: the same binary and
# load give the same count whatever else the machine is doing).
#
#   bash tests/bench/callgrind.sh [BINARY ...]     (default: build/ollama-gateway)
#
# For each binary: one worker under valgrind --tool=callgrind against the
# fake Ollama (32-token answers), a warm-up of 50 requests, then two runs of
# N1 and N2 sequential keep-alive requests; (Ir(N2) - Ir(N1)) / (N2 - N1) is
# what one more request costs, start-up and warm-up cancelled out. Printed
# for non-streamed and streamed chat completions. Loopback only.
# Knobs: N1=100 N2=300 TOKENS=32 KIND="nonstream stream", FAKE=node (the fake
# Ollama: node = tests/fake_ollama/fake.mjs; c = the C fake, FAKE_BIN or
# build/tests/bench/fake_ollama, built by any build with BUILD_TESTING=ON or
# GATEWAY_BENCH=ON), NGINX=0 (1: also nginx, as a plain proxy to the fake's
# /v1/chat/completions with tests/bench/nginx.conf.in, one process:
# master_process off, one worker; the same load and the same arithmetic),
# FLOOR=0 (1: also tests/bench/floor/floor_proxy, one worker: libmicrohttpd and
# libcurl driven as the gateway drives them, translating nothing; FLOOR_BIN or
# build/tests/bench/floor_proxy; FLOOR_CLIENT=raw: its own upstream client in
# place of libcurl, non-streamed only).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N1=${N1:-100}
N2=${N2:-300}
TOKENS=${TOKENS:-32}
KIND=${KIND:-nonstream stream}
FAKE=${FAKE:-node}
NGINX=${NGINX:-0}
FLOOR=${FLOOR:-0}
FLOOR_CLIENT=${FLOOR_CLIENT:-curl}
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/build/ollama-gateway")
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }

WORK=$(mktemp -d)
FAKE_PID=
GW_PID=
cleanup() {
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

case $FAKE in
c)
    FAKE_BIN=${FAKE_BIN:-$ROOT/build/tests/bench/fake_ollama}
    [ -x "$FAKE_BIN" ] || {
        echo "callgrind.sh: no C fake at $FAKE_BIN (cmake --build build --target fake_ollama_c, or set FAKE_BIN)" >&2
        exit 1
    }
    "$FAKE_BIN" --port 0 --tokens "$TOKENS" --delay-ms 0 >"$WORK/fake.out" &
    ;;
node) node "$ROOT/tests/fake_ollama/fake.mjs" --port 0 --tokens "$TOKENS" --delay-ms 0 >"$WORK/fake.out" & ;;
*)
    echo "callgrind.sh: FAKE is node or c" >&2
    exit 1
    ;;
esac
FAKE_PID=$!
for _ in $(seq 100); do grep -q port "$WORK/fake.out" 2>/dev/null && break; sleep 0.1; done
FAKE_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WORK/fake.out")
[ -n "$FAKE_PORT" ] || { echo "callgrind.sh: the fake did not start" >&2; exit 1; }

# load URL KIND N: N sequential keep-alive requests; exits non-zero unless all were answered whole.
cat >"$WORK/load.mjs" <<'EOF'
import http from 'node:http';
const [url, kind, n] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: kind === 'stream' });
for (let i = 0; i < Number(n); i++) {
  const text = await new Promise((resolve, reject) => {
    const req = http.request(url + '/v1/chat/completions', { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let t = ''; res.setEncoding('utf8'); res.on('data', (d) => { t += d; }); res.on('end', () => resolve(res.statusCode + ' ' + t));
    });
    req.on('error', reject);
    req.end(body);
  });
  if (!text.startsWith('200 ') || (kind === 'stream' ? !text.includes('data: [DONE]') : !text.includes('"finish_reason"')))
    { console.error('bad answer:', text.slice(0, 200)); process.exit(1); }
}
agent.destroy();
EOF

# counted PORT READY SIGNAL KIND N COMMAND... -> total Ir of COMMAND run under
# callgrind, serving 50 + N requests on PORT once `curl -s -o /dev/null READY`
# succeeds (READY: curl's other arguments, the URL last), then stopped by SIGNAL
counted() {
    local port=$1 ready=$2 sig=$3 kind=$4 n=$5
    shift 5
    rm -f "$WORK"/cg.out*
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$@" >/dev/null 2>"$WORK/vg.err" &
    GW_PID=$!
    # shellcheck disable=SC2086 # READY is several arguments
    for _ in $(seq 300); do curl -s -o /dev/null $ready && break; sleep 0.1; done
    node "$WORK/load.mjs" "http://127.0.0.1:$port" "$kind" 50
    node "$WORK/load.mjs" "http://127.0.0.1:$port" "$kind" "$n"
    kill "-$sig" "$GW_PID"
    wait "$GW_PID" || true
    GW_PID=
    # the summary of every thread's file
    cat "$WORK"/cg.out* | awk '/^summary:/ {s += $2} END {print s}'
}

# measure BIN KIND N -> total Ir of one gateway run serving 50 + N requests
measure() {
    local bin=$1 port
    port=$(free_port)
    cat >"$WORK/gateway.json" <<EOF
{ "listen": ["127.0.0.1:$port"], "workers": 1, "auth": "none",
  "backends": [{ "name": "fake", "url": "http://127.0.0.1:$FAKE_PORT" }],
  "discovery_interval_s": 3600, "log": { "level": "warn", "access": "off" } }
EOF
    counted "$port" "-f http://127.0.0.1:$port/readyz" TERM "$2" "$3" "$bin" serve -c "$WORK/gateway.json"
}

# measure_nginx KIND N -> total Ir of one nginx (one process) serving 50 + N requests
measure_nginx() {
    local port
    port=$(free_port)
    mkdir -p "$WORK/nginx"
    sed -e "s#@WORKERS@#1#g" -e "s#@TMP@#$WORK/nginx#g" -e "s#@PORT@#$port#g" \
        -e "s#@UPSTREAM_PORT@#$FAKE_PORT#g" "$HERE/nginx.conf.in" >"$WORK/nginx/nginx.conf"
    counted "$port" "http://127.0.0.1:$port/" QUIT "$1" "$2" "$NGINX_BIN" -p "$WORK/nginx" \
        -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off; master_process off;'
}

# measure_floor KIND N -> total Ir of one floor_proxy (one worker) serving 50 + N requests
measure_floor() {
    local port
    port=$(free_port)
    counted "$port" "-d {} http://127.0.0.1:$port/v1/chat/completions" TERM "$1" "$2" "$FLOOR_BIN" \
        --port "$port" --upstream "http://127.0.0.1:$FAKE_PORT" --workers 1 --client "$FLOOR_CLIENT"
}

printf '%-44s %-10s %14s\n' binary load "Ir/request"
if [ "$FLOOR" = 1 ]; then
    FLOOR_BIN=${FLOOR_BIN:-$ROOT/build/tests/bench/floor_proxy}
    [ -x "$FLOOR_BIN" ] || { echo "callgrind.sh: no floor_proxy at $FLOOR_BIN (cmake --build build --target floor_proxy)" >&2; exit 1; }
    for kind in $KIND; do
        a=$(measure_floor "$kind" "$N1")
        b=$(measure_floor "$kind" "$N2")
        printf '%-44s %-10s %14d\n' "floor_proxy --client $FLOOR_CLIENT (one worker)" "$kind" $(((b - a) / (N2 - N1)))
    done
fi
if [ "$NGINX" = 1 ]; then
    NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$NGINX_BIN" ] || { echo "callgrind.sh: NGINX=1 needs nginx" >&2; exit 1; }
    for kind in $KIND; do
        a=$(measure_nginx "$kind" "$N1")
        b=$(measure_nginx "$kind" "$N2")
        printf '%-44s %-10s %14d\n' "nginx (one process)" "$kind" $(((b - a) / (N2 - N1)))
    done
fi
for bin in "${BINS[@]}"; do
    for kind in $KIND; do
        a=$(measure "$bin" "$kind" "$N1")
        b=$(measure "$bin" "$kind" "$N2")
        printf '%-44s %-10s %14d\n' "$bin" "$kind" $(((b - a) / (N2 - N1)))
    done
done
