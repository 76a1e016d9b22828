#!/usr/bin/env bash
# The gateway's benchmark (DESIGN.md "Performance"): the same fake Ollama
# (by default the C one in tests/bench/cfake, which outruns both proxies),
# measured side by side in one run
#   direct        the fake itself (native /api/chat, and its OpenAI /v1 layer)
#   nginx         nginx proxy_pass to the fake's /v1/chat/completions (translates nothing)
#   gateway       ollama-gateway (OpenAI in, Ollama /api/chat out, translated both ways)
#   floor         tests/bench/floor/floor_proxy.c: libmicrohttpd and libcurl driven as the
#                 gateway drives them, translating nothing (a proxy to the fake's /v1, as
#                 nginx): what the two libraries cost by themselves ((a), (b), (c), (e)); in (a)
#                 also with its own minimal upstream client instead of libcurl
# in five scenarios
#   (a) non-streamed 32-token chat requests, wrk, 64 connections, DURATION s
#   (b) streamed 32-token chat requests (SSE / NDJSON), same load
#   (c) 2,000 concurrent slow streams (64 tokens, 50 ms apart), every token checked
#   (d) added time to first token at 1,000 streamed requests/s, open loop (paced.c:
#       requests leave on a fixed schedule, latency counted from the scheduled send)
#   (e) 10,000 concurrent slow streams (20 tokens, 1 s apart; paced.c hold mode)
#   (f) non-streamed requests with a limited key (rpm, tpm, max_inflight), the
#       limits local and then shared in a redis-server the script starts on
#       loopback: the CPU and latency that "shared" adds (one Redis round trip
#       per request, the token charge after it)
# ((d), (e) and (f) only when asked for: SCENARIOS="a b c d e f", or "f")
# and prints one table: requests/s, p50/p99 latency, CPU time per request of the
# proxy (nginx: master + workers; gateway: the process), peak RSS, the fake's
# own CPU per request; then, from a short separate run of (a) and (b) under
# strace -c -f, the system calls per request of nginx and of the gateway.
#
# Run by hand, never in CI: bash tests/bench/run.sh
# Needs nginx, wrk, node, curl, strace (Debian: apt-get install nginx wrk nodejs curl strace) and,
# unless GATEWAY_BIN names a built binary, cmake and the build dependencies.
# Everything listens on 127.0.0.1 only. Knobs (environment):
#   GATEWAY_BIN=path     use this binary (default: Release build in build-bench/)
#   FAKE=c               the fake Ollama: c (tests/bench/cfake/fake_ollama.c, built in
#                        build-bench/ unless FAKE_BIN names it) or node (tests/fake_ollama/fake.mjs)
#   FLOOR=1              also measure tests/bench/floor/floor_proxy in (a), (b), (c), (e) (FLOOR_BIN=path,
#                        default: built in build-bench/): the two libraries without the gateway
#   STRACE=1             count system calls per request in (a) and (b) (needs strace);
#                        STRACE_DURATION=3 s of wrk per proxy under strace (counts only:
#                        strace slows the traced process)
#   DURATION=10          seconds of each measured wrk run (after WARMUP=2 s unmeasured)
#   CONNECTIONS=64       wrk connections;  WRK_THREADS=2
#   TOKENS=32            tokens per answer in (a) and (b)
#   WORKERS=2            gateway workers = nginx worker_processes
#   SLOW_STREAMS=2000 SLOW_TOKENS=64 SLOW_DELAY_MS=50 SLOW_RAMP_MS=1000   scenario (c)
#   PACED_RATE=1000 PACED_DURATION=10 PACED_WARMUP=2 PACED_TOKENS=8 PACED_DELAY_MS=5
#   PACED_CONNECTIONS=1000                                                scenario (d)
#   SLOW_STREAMS_E=10000 SLOW_TOKENS_E=20 SLOW_DELAY_MS_E=1000 SLOW_RAMP_MS_E=5000   scenario (e)
#   PACED_BIN=path       the load generator of (d) and (e) (default: built in build-bench/)
#   F_CONNECTIONS=1      wrk connections in (f): 1 = sequential requests, so the p50
#                        difference is the latency one Redis round trip adds
#   REDIS_SERVER=redis-server   scenario (f)'s Redis (or valkey-server)
#   SCENARIOS="a b c"    which scenarios to run (of a b c d e f)
#   AUTH_BENCH=1         (a) and (b) also through a gateway with API keys in force
#                        (a key without limits, and one with rpm/tpm/inflight limits)
#   GATEWAY_ACCESS_LOG=off   "off" (default, like nginx's access_log off) or a path,
#                        e.g. /dev/null to include the cost of formatting the log lines
#   OUT_DIR=tests/bench/out  where the run's logs, configs and table are kept
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
TOKENS=${TOKENS:-32}
WORKERS=${WORKERS:-2}
SLOW_STREAMS=${SLOW_STREAMS:-2000}
SLOW_TOKENS=${SLOW_TOKENS:-64}
SLOW_DELAY_MS=${SLOW_DELAY_MS:-50}
SLOW_RAMP_MS=${SLOW_RAMP_MS:-1000}
PACED_RATE=${PACED_RATE:-1000}
PACED_DURATION=${PACED_DURATION:-10}
PACED_WARMUP=${PACED_WARMUP:-2}
PACED_TOKENS=${PACED_TOKENS:-8}
PACED_DELAY_MS=${PACED_DELAY_MS:-5}
PACED_CONNECTIONS=${PACED_CONNECTIONS:-1000}
SLOW_STREAMS_E=${SLOW_STREAMS_E:-10000}
SLOW_TOKENS_E=${SLOW_TOKENS_E:-20}
SLOW_DELAY_MS_E=${SLOW_DELAY_MS_E:-1000}
SLOW_RAMP_MS_E=${SLOW_RAMP_MS_E:-5000}
SCENARIOS=${SCENARIOS:-a b c}
F_CONNECTIONS=${F_CONNECTIONS:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
FAKE=${FAKE:-c}
STRACE=${STRACE:-1}
FLOOR=${FLOOR:-1}
STRACE_DURATION=${STRACE_DURATION:-3}
AUTH_BENCH=${AUTH_BENCH:-1}
MODEL=${MODEL:-llama3.2}
GATEWAY_ACCESS_LOG=${GATEWAY_ACCESS_LOG:-off}
OUT_DIR=${OUT_DIR:-$ROOT/tests/bench/out}

die() {
    echo "bench: $*" >&2
    exit 1
}
note() { echo "bench: $*" >&2; }

for v in DURATION WARMUP CONNECTIONS WRK_THREADS TOKENS WORKERS SLOW_STREAMS SLOW_TOKENS \
    SLOW_DELAY_MS SLOW_RAMP_MS STRACE_DURATION PACED_RATE PACED_DURATION PACED_WARMUP PACED_TOKENS \
    PACED_DELAY_MS PACED_CONNECTIONS SLOW_STREAMS_E SLOW_TOKENS_E SLOW_DELAY_MS_E SLOW_RAMP_MS_E \
    F_CONNECTIONS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (is '${!v}')"
done
for v in PACED_RATE PACED_DURATION PACED_TOKENS PACED_CONNECTIONS SLOW_STREAMS_E SLOW_TOKENS_E F_CONNECTIONS; do
    [ "${!v}" -gt 0 ] || die "$v must be at least 1"
done
for sc in $SCENARIOS; do
    case $sc in
    a | b | c | d | e | f) ;;
    *) die "SCENARIOS names a, b, c, d, e, f (is '$SCENARIOS')" ;;
    esac
done
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# ---- tools: name what is missing, install nothing ----
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; }
missing=()
[ -n "$NGINX" ] || missing+=(nginx)
for t in wrk node curl; do command -v "$t" >/dev/null || missing+=("$t"); done
if want f; then
    command -v "$REDIS_SERVER" >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
fi
case $FAKE in
c | node) ;;
*) die "FAKE is c or node (is '$FAKE')" ;;
esac
if [ -z "${GATEWAY_BIN:-}" ] || { [ "$FAKE" = c ] && [ -z "${FAKE_BIN:-}" ]; } ||
    { { want d || want e; } && [ -z "${PACED_BIN:-}" ]; }; then
    command -v cmake >/dev/null || missing+=(cmake)
fi
if [ "$STRACE" = 1 ] && ! command -v strace >/dev/null; then
    note "strace is missing (Debian: apt-get install strace): no system call counts"
    STRACE=0
fi
if [ ${#missing[@]} -gt 0 ]; then
    die "missing tools: ${missing[*]} (Debian: apt-get install ${missing[*]/node/nodejs})"
fi

# ---- open files: 2 sockets per slow stream in a proxy, plus slack ----
need_fds=$((SLOW_STREAMS * 2 + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
have_fds=$(ulimit -n)
if [ "$have_fds" != unlimited ] && [ "$have_fds" -lt "$need_fds" ]; then
    die "open-files limit is $have_fds, need $need_fds for $SLOW_STREAMS streams (raise the hard limit, or lower SLOW_STREAMS)"
fi
[ "$have_fds" = 65536 ] || note "open-files limit: $have_fds (65536 not allowed; enough for this run)"
# (e): the gateway holds 2 sockets per stream in one process (plus about 20
# of its own), the client and the fake one each. Where the hard limit is lower
# than that (a container without CAP_SYS_RESOURCE), run as many streams as fit,
# the same number on every row, and say so in the table.
E_REQUESTED=$SLOW_STREAMS_E
if want e && [ "$have_fds" != unlimited ] && [ "$have_fds" -lt $((SLOW_STREAMS_E * 2 + 128)) ]; then
    SLOW_STREAMS_E=$(((have_fds - 128) / 2))
    [ "$SLOW_STREAMS_E" -gt 0 ] || die "open-files limit $have_fds is too low for (e)"
    note "(e): open-files limit $have_fds allows $SLOW_STREAMS_E streams through a proxy, not $E_REQUESTED"
fi
# The gateway's max_connections: room for the largest scenario asked for.
GW_MAX_STREAMS=$SLOW_STREAMS
if want e && [ "$SLOW_STREAMS_E" -gt "$GW_MAX_STREAMS" ]; then GW_MAX_STREAMS=$SLOW_STREAMS_E; fi

# ---- the gateway binary and the C fake ----
targets=()
[ -n "${GATEWAY_BIN:-}" ] || targets+=(ollama-gateway)
[ "$FAKE" != c ] || [ -n "${FAKE_BIN:-}" ] || targets+=(fake_ollama_c)
{ want d || want e; } && [ -z "${PACED_BIN:-}" ] && targets+=(paced)
{ want a || want b || want c || want e; } && [ "$FLOOR" = 1 ] && [ -z "${FLOOR_BIN:-}" ] && targets+=(floor_proxy)
if [ ${#targets[@]} -gt 0 ]; then
    note "building ${targets[*]} (Release) in build-bench/"
    mkdir -p "$OUT_DIR"
    if ! { cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DGATEWAY_BENCH=ON &&
        cmake --build "$ROOT/build-bench" -j "$(nproc)" --target "${targets[@]}"; } >"$OUT_DIR/build.log" 2>&1; then
        tail -n 30 "$OUT_DIR/build.log" >&2
        die "build failed (full log: $OUT_DIR/build.log)"
    fi
    [ -n "${GATEWAY_BIN:-}" ] || GATEWAY_BIN=$ROOT/build-bench/ollama-gateway
    [ "$FAKE" != c ] || [ -n "${FAKE_BIN:-}" ] || FAKE_BIN=$ROOT/build-bench/tests/bench/fake_ollama
    { want d || want e; } && [ -z "${PACED_BIN:-}" ] && PACED_BIN=$ROOT/build-bench/tests/bench/paced
    { want a || want b || want c || want e; } && [ "$FLOOR" = 1 ] && [ -z "${FLOOR_BIN:-}" ] &&
        FLOOR_BIN=$ROOT/build-bench/tests/bench/floor_proxy
fi
[ -x "$GATEWAY_BIN" ] || die "GATEWAY_BIN=$GATEWAY_BIN is not an executable"
[ "$FAKE" != c ] || [ -x "$FAKE_BIN" ] || die "FAKE_BIN=$FAKE_BIN is not an executable"
if want d || want e; then
    [ -x "$PACED_BIN" ] || die "PACED_BIN=$PACED_BIN is not an executable"
fi

RUN=$OUT_DIR/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
RESULTS=$RUN/results.tsv
SYSCALLS=$RUN/syscalls.tsv
: >"$RESULTS"
: >"$SYSCALLS"
CLK_TCK=$(getconf CLK_TCK)

# ---- processes: every one we start is in PIDS; all are ended on exit ----
PIDS=()
cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: TERM, wait up to 10 s, then KILL (the gateway drains for up to 30 s;
# nothing is in flight when we stop it).
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        note "process $pid did not stop within 10 s of SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Run a command in the background and wait for it: bash runs a trap only when
# the foreground command ends, and wrk runs for a while.
run() {
    local pid rc=0
    "$@" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget "$pid"
    return $rc
}

slug() { echo "$1" | tr -cs 'a-zA-Z0-9' '-' | sed 's/-$//'; }

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_fake NAME TOKENS DELAY_MS -> FAKE_PID, FAKE_PORT
start_fake() {
    local name=$1
    if [ "$FAKE" = c ]; then
        "$FAKE_BIN" --port 0 --tokens "$2" --delay-ms "$3" >"$RUN/$name.out" 2>"$RUN/$name.err" &
    else
        node "$ROOT/tests/fake_ollama/fake.mjs" --port 0 --tokens "$2" --delay-ms "$3" \
            >"$RUN/$name.out" 2>"$RUN/$name.err" &
    fi
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    FAKE_PORT=
    for _ in $(seq 1 100); do
        FAKE_PORT=$(sed -n 's/^{"port":\([0-9]*\)}$/\1/p' "$RUN/$name.out" | head -n 1)
        [ -n "$FAKE_PORT" ] && return 0
        kill -0 "$FAKE_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$RUN/$name.err" >&2
    die "the fake Ollama ($name, FAKE=$FAKE) did not start"
}

# start_nginx NAME UPSTREAM_PORT -> NGINX_PID, NGINX_PORT
start_nginx() {
    local name=$1
    NGINX_PORT=$(free_port)
    mkdir -p "$RUN/$name"
    sed -e "s#@TMP@#$RUN/$name#g" -e "s#@WORKERS@#$WORKERS#g" -e "s#@PORT@#$NGINX_PORT#g" \
        -e "s#@UPSTREAM_PORT@#$2#g" "$HERE/nginx.conf.in" >"$RUN/$name/nginx.conf"
    "$NGINX" -p "$RUN/$name" -e "$RUN/$name/nginx-error.log" -c "$RUN/$name/nginx.conf" \
        -g 'daemon off;' >"$RUN/$name/stdout.log" 2>"$RUN/$name/stderr.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && return 0
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$RUN/$name/stderr.log" "$RUN/$name/nginx-error.log" >&2 2>/dev/null || true
    die "nginx ($name) did not start"
}

# start_floor NAME UPSTREAM_PORT [CLIENT] -> FLOOR_PID, FLOOR_PORT (tests/bench/floor;
# CLIENT: curl, the default, or raw: its own upstream client instead of libcurl)
start_floor() {
    local name=$1
    FLOOR_PORT=$(free_port)
    mkdir -p "$RUN/$name"
    "$FLOOR_BIN" --port "$FLOOR_PORT" --upstream "http://127.0.0.1:$2" --workers "$WORKERS" \
        --client "${3:-curl}" >"$RUN/$name/stdout.log" 2>"$RUN/$name/stderr.log" &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID")
    for _ in $(seq 1 100); do
        grep -q port "$RUN/$name/stdout.log" 2>/dev/null &&
            curl -s -o /dev/null -d '{}' "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" && return 0
        kill -0 "$FLOOR_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$RUN/$name/stderr.log" >&2
    die "floor_proxy ($name) did not start"
}

# start_gateway NAME BACKEND_PORT [keys] -> GW_PID, GW_PORT (and, with "keys",
# GW_KEY: an API key without limits, GW_KEY_LIMITED: one with rpm, tpm and
# max_inflight limits too high to be reached, so that every check still runs)
start_gateway() {
    local name=$1 code access auth=none shared=
    [ "${3:-}" = keys ] && auth=keys
    # ${4}: a Redis port: the keys' limits shared there
    [ -n "${4:-}" ] && shared=",
  \"shared\": { \"redis\": \"redis://127.0.0.1:$4/0\", \"prefix\": \"bench:\" }"
    GW_PORT=$(free_port)
    mkdir -p "$RUN/$name"
    access=$GATEWAY_ACCESS_LOG
    cat >"$RUN/$name/gateway.json" <<EOF
{
  "listen": ["127.0.0.1:$GW_PORT"],
  "workers": $WORKERS,
  "auth": "$auth",
  "backends": [{ "name": "fake", "url": "http://127.0.0.1:$2" }],
  "limits": { "max_connections": $((GW_MAX_STREAMS * 2 + 1000)), "max_connections_per_address": 0,
              "idle_stream_timeout_s": 120 },
  "log": { "level": "warn", "access": "$access" }$shared
}
EOF
    if [ "$auth" = keys ]; then
        GW_KEY=$("$GATEWAY_BIN" key create bench -c "$RUN/$name/gateway.json" 2>/dev/null) ||
            die "cannot create an API key for $name"
        GW_KEY_LIMITED=$("$GATEWAY_BIN" key create bench-limited --rpm 1000000000 \
            --tpm 1000000000 --max-inflight 1000000 -c "$RUN/$name/gateway.json" 2>/dev/null) ||
            die "cannot create an API key for $name"
    fi
    "$GATEWAY_BIN" serve -c "$RUN/$name/gateway.json" >"$RUN/$name/stdout.log" \
        2>"$RUN/$name/stderr.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    for _ in $(seq 1 150); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/readyz" || true)
        [ "$code" = 200 ] && return 0
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$RUN/$name/stderr.log" >&2
    die "the gateway ($name) did not become ready (/readyz: ${code:-no answer})"
}

# start_redis -> REDIS_PID, REDIS_PORT: no persistence, loopback only.
start_redis() {
    REDIS_PORT=$(free_port)
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$RUN" --loglevel warning >"$RUN/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$RUN/redis.log" >&2
    die "redis-server did not start"
}

# The pids of a process and its children (nginx: master and workers).
family() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

# cpu_ticks PID... : utime+stime of each process and its children, plus what
# they reaped (cutime+cstime), in clock ticks.
cpu_ticks() {
    local total=0 p s rest
    local -a f
    for p in $(for x in "$@"; do family "$x"; done); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${s##*) }
        read -ra f <<<"$rest"
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}

# mem_kb FIELD PID... : sum of a /proc/PID/status field (VmHWM, VmRSS) over the
# processes and their children, in kB.
mem_kb() {
    local field=$1 total=0 p v
    shift
    for p in $(for x in "$@"; do family "$x"; done); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

us_per() { # ticks count -> microseconds per unit, one decimal
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }'
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# One request through a path, checked, before measuring it.
sanity() {
    local label=$1 url=$2 body
    body=$(curl -sS --max-time 10 -H 'Content-Type: application/json' \
        -d "{\"model\":\"$MODEL\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
        "$url" 2>&1) || die "$label: $url: $body"
    case $body in
    *' w0'*) ;;
    *) die "$label: $url answered: ${body:0:400}" ;;
    esac
}

# row SCENARIO LABEL RPS P50 P99 CPU RSS FAKECPU NOTES [FAKE_BUSY_PERCENT]
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10:--}" >>"$RESULTS"; }

# bench_wrk SCENARIO LABEL URL STREAM FORMAT PROXY_PID(or -)
# Warm up, then measure one wrk run; CPU of the proxy and of the fake.
bench_wrk() {
    local sc=$1 label=$2 url=$3 stream=$4 format=$5 proxy=$6 path host log line
    local t0 t1 f0 f1 req p50 p99 ok bad errs cpu rss notes
    host=${url%%/v1/*}
    host=${host%%/api/*}
    path=${url#"$host"}
    log=$RUN/wrk-$sc-$(slug "$label").txt
    export BENCH_KEY=${BENCH_KEY:-} BENCH_PATH=$path BENCH_STREAM=$stream BENCH_FORMAT=$format BENCH_TOKENS=$TOKENS \
        BENCH_MODEL=$MODEL
    note "($sc) $label: $url (stream=$stream) warm-up ${WARMUP}s, run ${DURATION}s"
    if [ "$WARMUP" -gt 0 ]; then
        run timeout $((WARMUP + 30)) wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" \
            --timeout 10s -s "$HERE/chat.lua" "$host" >/dev/null 2>&1 || true
    fi
    t0=0
    [ "$proxy" = - ] || t0=$(cpu_ticks "$proxy")
    f0=$(cpu_ticks "$BENCH_FAKE_PID")
    run timeout $((DURATION + 60)) wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
        --timeout 10s --latency -s "$HERE/chat.lua" "$host" >"$log" 2>&1 ||
        note "wrk exited with an error (see $log)"
    t1=0
    [ "$proxy" = - ] || t1=$(cpu_ticks "$proxy")
    f1=$(cpu_ticks "$BENCH_FAKE_PID")
    line=$(grep '^BENCH ' "$log" | tail -n 1 || true)
    if [ -z "$line" ]; then
        note "no result from wrk:"
        cat "$log" >&2
        row "$sc" "$label" - - - - - - "wrk failed"
        return 0
    fi
    local requests duration_us p50_us p99_us bad_status err_connect err_read err_write err_timeout
    eval "$(echo "${line#BENCH }" | tr ' ' '\n' | sed 's/^/local /')"
    req=$(awk -v n="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    p50=$(awk -v u="$p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
    p99=$(awk -v u="$p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
    cpu=-
    rss=-
    if [ "$proxy" != - ]; then
        cpu=$(us_per $((t1 - t0)) "$requests")
        rss=$(mb "$(mem_kb VmHWM "$proxy")")
    fi
    errs=$((err_connect + err_read + err_write + err_timeout))
    notes="ok $ok/$requests"
    [ "$bad" = 0 ] || notes="$notes, BAD $bad (status $bad_status)"
    [ "$errs" = 0 ] || notes="$notes, socket errors $errs (connect $err_connect read $err_read write $err_write timeout $err_timeout)"
    grep -q '^BENCH_SAMPLE' "$log" && notes="$notes; sample in $(basename "$log")"
    # how busy the fake was: its CPU time over the run's wall time, in % of one CPU
    local busy
    busy=$(awk -v t=$((f1 - f0)) -v hz="$CLK_TCK" -v d="$duration_us" 'BEGIN { printf "%.0f", t / hz * 1e8 / d }')
    row "$sc" "$label" "$req" "$p50" "$p99" "$cpu" "$rss" "$(us_per $((f1 - f0)) "$requests")" "$notes" "$busy"
}

# strace_wrk SCENARIO LABEL URL STREAM FORMAT PROXY_PID
# A short separate wrk run with strace -c -f attached to the proxy (every
# process and thread): system calls per completed request. strace slows the
# traced process, so this run gives counts, never times.
strace_wrk() {
    local sc=$1 label=$2 url=$3 stream=$4 format=$5 proxy=$6 host path log out spid line p per top
    local -a pargs=()
    host=${url%%/v1/*}
    host=${host%%/api/*}
    path=${url#"$host"}
    log=$RUN/strace-wrk-$sc-$(slug "$label").txt
    out=$RUN/strace-$sc-$(slug "$label").txt
    export BENCH_KEY='' BENCH_PATH=$path BENCH_STREAM=$stream BENCH_FORMAT=$format BENCH_TOKENS=$TOKENS \
        BENCH_MODEL=$MODEL
    for p in $(family "$proxy"); do pargs+=(-p "$p"); done
    note "($sc) $label under strace -c -f: ${STRACE_DURATION}s"
    strace -c -f -o "$out" "${pargs[@]}" 2>"$out.err" &
    spid=$!
    PIDS+=("$spid")
    for _ in $(seq 1 50); do
        [ "$(grep -c attached "$out.err" 2>/dev/null)" -ge ${#pargs[@]} ] && break
        sleep 0.1
    done
    run timeout $((STRACE_DURATION + 60)) wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${STRACE_DURATION}s" \
        --timeout 10s -s "$HERE/chat.lua" "$host" >"$log" 2>&1 || true
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    forget "$spid"
    line=$(grep '^BENCH ' "$log" | tail -n 1 || true)
    if [ -z "$line" ] || [ ! -s "$out" ]; then
        note "no system call count for ($sc) $label (see $log, $out.err)"
        return 0
    fi
    local requests ok bad
    requests=$(echo "$line" | sed -n 's/.* requests=\([0-9]*\).*/\1/p')
    ok=$(echo "$line" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
    bad=$(echo "$line" | sed -n 's/.* bad=\([0-9]*\).*/\1/p')
    # strace -c: "% time  seconds  usecs/call  calls  [errors]  syscall"; the calls are field 4
    per=$(awk -v n="$requests" '$NF == "total" && n > 0 { printf "%.2f", $4 / n }' "$out")
    top=$(awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && $NF != "total" && n > 0 {
            e = (NF == 6) ? $5 : 0
            printf "%s\t%.2f\t%.2f\n", $NF, $4 / n, e / n }' "$out" | sort -t$'\t' -k2,2 -gr | head -n 7 |
        awk -F'\t' '{ s = s (NR > 1 ? ", " : "") $1 " " $2; if ($3 > 0) s = s " (" $3 " failed)" } END { print s }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$sc" "$label" "${per:--}" "$requests ($ok ok, $bad bad)" "$top" >>"$SYSCALLS"
}

# bench_slow LABEL PORT PATH FORMAT PROXY_PID(or -)
# SLOW_STREAMS concurrent streams; CPU per stream, peak and per-stream memory.
bench_slow() {
    local label=$1 port=$2 path=$3 format=$4 proxy=$5 log json cpid
    local t0=0 t1=0 f0 f1 base=0 peak=0 cur hwm=- cpu=- per=- notes
    log=$RUN/slow-$(slug "$label").txt
    note "(c) $label: $SLOW_STREAMS streams x $SLOW_TOKENS tokens, ${SLOW_DELAY_MS} ms apart"
    if [ "$proxy" != - ]; then
        t0=$(cpu_ticks "$proxy")
        base=$(mem_kb VmRSS "$proxy")
        peak=$base
    fi
    f0=$(cpu_ticks "$SLOW_FAKE_PID")
    node "$HERE/slow_streams.mjs" --port "$port" --path "$path" --format "$format" \
        --streams "$SLOW_STREAMS" --tokens "$SLOW_TOKENS" --model "$MODEL" \
        --ramp-ms "$SLOW_RAMP_MS" --timeout-s 120 >"$log" 2>"$log.err" &
    cpid=$!
    PIDS+=("$cpid")
    # Sample the proxy's resident memory while the streams are open (bounded: the
    # client stops itself after 150 s).
    while kill -0 "$cpid" 2>/dev/null; do
        if [ "$proxy" != - ]; then
            cur=$(mem_kb VmRSS "$proxy")
            [ "$cur" -gt "$peak" ] && peak=$cur
        fi
        sleep 0.2
    done
    wait "$cpid" || true
    forget "$cpid"
    f1=$(cpu_ticks "$SLOW_FAKE_PID")
    if [ "$proxy" != - ]; then
        t1=$(cpu_ticks "$proxy")
        hwm=$(mb "$(mem_kb VmHWM "$proxy")")
        cpu=$(us_per $((t1 - t0)) "$SLOW_STREAMS")
        per=$(awk -v p="$peak" -v b="$base" -v n="$SLOW_STREAMS" 'BEGIN { printf "%.1f", (p - b) / n }')
    fi
    json=$(tail -n 1 "$log")
    if [ -z "$json" ]; then
        cat "$log.err" >&2
        row c "$label" - - - "$cpu" "$hwm" - "client failed"
        return 0
    fi
    # {"streams":..,"complete":..,"failed":..,"tokens":..,"expected_tokens":..,"peak_open":..,
    #  "ttft_ms":{"p50":..,"p99":..},"duration_ms":{..},"wall_ms":..,"errors":{..}}
    local summary
    # shellcheck disable=SC2016
    summary=$(node -e '
        const r = JSON.parse(process.argv[1]);
        const e = Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`).join(", ");
        console.log([r.complete, r.streams, r.tokens, r.expected_tokens, r.peak_open,
          r.ttft_ms.p50 ?? "-", r.ttft_ms.p99 ?? "-", r.duration_ms.p50 ?? "-",
          r.duration_ms.p99 ?? "-", r.wall_ms, e || "none"].join("\t"));' "$json")
    local complete streams tokens expected popen tt50 tt99 d50 d99 wall errors
    IFS=$'\t' read -r complete streams tokens expected popen tt50 tt99 d50 d99 wall errors <<<"$summary"
    notes="complete $complete/$streams, tokens $tokens/$expected, peak open $popen, stream p50/p99 ${d50}/${d99} ms, wall ${wall} ms"
    [ "$proxy" = - ] || notes="$notes, RSS +${per} kB/stream"
    [ "$errors" = none ] || notes="$notes, FAILURES: $errors"
    if [ "$popen" -lt $((streams * 9 / 10)) ]; then
        notes="$notes, NOT CONCURRENT: at most $popen of $streams streams were open at once"
        SLOW_SATURATED=1
    fi
    # req/s column: streams completed per second of wall time; p50/p99: time to first token.
    local sps
    sps=$(awk -v c="$complete" -v w="$wall" 'BEGIN { printf "%.0f", c / (w / 1000) }')
    local busy
    busy=$(awk -v t=$((f1 - f0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { if (w > 0) printf "%.0f", t / hz * 1e5 / w; else print "-" }')
    row c "$label" "$sps" "$tt50" "$tt99" "$cpu" "$hwm" "$(us_per $((f1 - f0)) "$SLOW_STREAMS")" "$notes" "$busy"
}

# paced_summary JSON: the fields of paced.c's JSON line that the table uses,
# tab-separated, in the order read below.
paced_summary() {
    # shellcheck disable=SC2016
    node -e '
        const r = JSON.parse(process.argv[1]);
        const f = (x) => (x === null || x === undefined ? "-" : String(x));
        const e = Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`).join(", ");
        console.log([r.measured, r.ok, r.failed, r.warmup_failed, r.tokens, r.expected_tokens,
          f(r.ttft_ms.p50), f(r.ttft_ms.p90), f(r.ttft_ms.p99), f(r.ttft_ms["p99.9"]), f(r.ttft_ms.max),
          f(r.total_ms.p50), f(r.total_ms.p99), f(r.send_lag_ms.p99), f(r.send_lag_ms.max),
          r.peak_open, r.peak_connections, r.wall_ms, r.measured_s, e || "none"].join("\t"));' "$1"
}

# bench_paced LABEL PORT PATH FORMAT PROXY_PID(or -)
# Scenario (d): PACED_RATE streamed requests/s on a fixed schedule (paced.c),
# time to first token and total time from each request's scheduled send.
bench_paced() {
    local label=$1 port=$2 path=$3 format=$4 proxy=$5 log json line
    local t0=0 t1=0 f0 f1 cpu=- hwm=- notes rc=0
    log=$RUN/paced-d-$(slug "$label").txt
    note "(d) $label: $PACED_RATE streamed requests/s, warm-up ${PACED_WARMUP}s, run ${PACED_DURATION}s"
    # The warm-up is part of the same run (paced.c does not measure requests
    # scheduled in it), so CPU is read at its end, after a sleep.
    "$PACED_BIN" --port "$port" --path "$path" --format "$format" --tokens "$PACED_TOKENS" \
        --model "$MODEL" --rate "$PACED_RATE" --duration-s "$PACED_DURATION" \
        --warmup-s "$PACED_WARMUP" --connections "$PACED_CONNECTIONS" --timeout-s 30 \
        >"$log" 2>"$log.err" &
    local cpid=$!
    PIDS+=("$cpid")
    sleep "$PACED_WARMUP"
    [ "$proxy" = - ] || t0=$(cpu_ticks "$proxy")
    f0=$(cpu_ticks "$PACED_FAKE_PID")
    wait "$cpid" || rc=$?
    forget "$cpid"
    [ "$proxy" = - ] || t1=$(cpu_ticks "$proxy")
    f1=$(cpu_ticks "$PACED_FAKE_PID")
    json=$(tail -n 1 "$log")
    if [ -z "$json" ] || [ "$rc" -ge 2 ]; then
        cat "$log.err" >&2
        row d "$label" - - - - - - "client failed (exit $rc, see $(basename "$log").err)"
        return 0
    fi
    local measured ok failed wfailed tokens expected tt50 tt90 tt99 tt999 ttmax d50 d99 lag99 lagmax
    local popen pconns wall secs errors
    IFS=$'\t' read -r measured ok failed wfailed tokens expected tt50 tt90 tt99 tt999 ttmax d50 d99 \
        lag99 lagmax popen pconns wall secs errors <<<"$(paced_summary "$json")"
    if [ "$proxy" != - ]; then
        cpu=$(us_per $((t1 - t0)) "$measured")
        hwm=$(mb "$(mem_kb VmHWM "$proxy")")
    fi
    notes="ok $ok/$measured, tokens $tokens/$expected, TTFT p90/p99.9/max $tt90/$tt999/$ttmax ms, total p50/p99 $d50/$d99 ms, connections $pconns"
    [ "$failed" = 0 ] || notes="$notes, FAILED $failed: $errors"
    [ "$wfailed" = 0 ] || notes="$notes, $wfailed failed in warm-up"
    # The client itself late by more than 1 ms at p99: every latency of this row
    # includes that wait (the machine is busy, or the pool was exhausted).
    awk -v l="$lag99" 'BEGIN { exit !(l > 1) }' && notes="$notes, CLIENT LATE: send lag p99/max $lag99/$lagmax ms"
    local rps busy
    rps=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    busy=$(awk -v t=$((f1 - f0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.0f", t / hz * 100 / s }')
    row d "$label" "$rps" "$tt50" "$tt99" "$cpu" "$hwm" "$(us_per $((f1 - f0)) "$measured")" "$notes" "$busy"
    printf '%s\t%s\t%s\t%s\n' "$label" "$tt50" "$tt99" "$failed" >>"$RUN/ttft-d.tsv"
}

# bench_hold LABEL PORT PATH FORMAT PROXY_PID(or -)
# Scenario (e): SLOW_STREAMS_E streams held open at once (paced.c hold mode:
# one connection each, every token counted); CPU per stream, peak and
# per-stream memory, time to first token.
bench_hold() {
    local label=$1 port=$2 path=$3 format=$4 proxy=$5 log json cpid rc=0
    local t0=0 t1=0 f0 f1 base=0 peak=0 cur hwm=- cpu=- per=- notes
    log=$RUN/hold-e-$(slug "$label").txt
    note "(e) $label: $SLOW_STREAMS_E streams x $SLOW_TOKENS_E tokens, ${SLOW_DELAY_MS_E} ms apart, opened over ${SLOW_RAMP_MS_E} ms"
    if [ "$proxy" != - ]; then
        t0=$(cpu_ticks "$proxy")
        base=$(mem_kb VmRSS "$proxy")
        peak=$base
    fi
    f0=$(cpu_ticks "$HOLD_FAKE_PID")
    "$PACED_BIN" --port "$port" --path "$path" --format "$format" --tokens "$SLOW_TOKENS_E" \
        --model "$MODEL" --streams "$SLOW_STREAMS_E" --ramp-ms "$SLOW_RAMP_MS_E" \
        --timeout-s $((SLOW_TOKENS_E * SLOW_DELAY_MS_E / 1000 + SLOW_RAMP_MS_E / 1000 + 60)) \
        --progress >"$log" 2>"$log.err" &
    cpid=$!
    PIDS+=("$cpid")
    # Sample the proxy's resident memory while the streams are open (bounded:
    # paced.c stops itself after its timeout).
    while kill -0 "$cpid" 2>/dev/null; do
        if [ "$proxy" != - ]; then
            cur=$(mem_kb VmRSS "$proxy")
            [ "$cur" -gt "$peak" ] && peak=$cur
        fi
        sleep 0.2
    done
    wait "$cpid" || rc=$?
    forget "$cpid"
    f1=$(cpu_ticks "$HOLD_FAKE_PID")
    if [ "$proxy" != - ]; then
        t1=$(cpu_ticks "$proxy")
        hwm=$(mb "$(mem_kb VmHWM "$proxy")")
        cpu=$(us_per $((t1 - t0)) "$SLOW_STREAMS_E")
        per=$(awk -v p="$peak" -v b="$base" -v n="$SLOW_STREAMS_E" 'BEGIN { printf "%.1f", (p - b) / n }')
    fi
    json=$(tail -n 1 "$log")
    if [ -z "$json" ] || [ "$rc" -ge 2 ]; then
        cat "$log.err" >&2
        row e "$label" - - - "$cpu" "$hwm" - "client failed (exit $rc, see $(basename "$log").err)"
        return 0
    fi
    local measured ok failed wfailed tokens expected tt50 tt90 tt99 tt999 ttmax d50 d99 lag99 lagmax
    local popen pconns wall secs errors
    IFS=$'\t' read -r measured ok failed wfailed tokens expected tt50 tt90 tt99 tt999 ttmax d50 d99 \
        lag99 lagmax popen pconns wall secs errors <<<"$(paced_summary "$json")"
    notes="complete $ok/$measured, tokens $tokens/$expected, peak open $popen, stream p50/p99 ${d50}/${d99} ms, wall ${wall} ms"
    [ "$proxy" = - ] || notes="$notes, RSS +${per} kB/stream"
    # A connection is opened at the stream's scheduled time and the request
    # sent once it is up: a lag here is the listener's accept queue.
    awk -v l="$lag99" 'BEGIN { exit !(l > 100) }' && notes="$notes, SLOW CONNECTS: connect p99/max $lag99/$lagmax ms"
    [ "$failed" = 0 ] || notes="$notes, FAILURES: $errors"
    if [ "$popen" -lt $((measured * 9 / 10)) ]; then
        notes="$notes, NOT CONCURRENT: at most $popen of $measured streams were open at once"
    fi
    [ "$SLOW_STREAMS_E" = "$E_REQUESTED" ] || notes="$notes, REDUCED from $E_REQUESTED (open-files limit)"
    local sps busy
    sps=$(awk -v c="$ok" -v w="$wall" 'BEGIN { printf "%.0f", c / (w / 1000) }')
    busy=$(awk -v t=$((f1 - f0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { if (w > 0) printf "%.0f", t / hz * 1e5 / w; else print "-" }')
    row e "$label" "$sps" "$tt50" "$tt99" "$cpu" "$hwm" "$(us_per $((f1 - f0)) "$SLOW_STREAMS_E")" "$notes" "$busy"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${LOAD0%% *}" 'BEGIN { exit !(l > 0.5) }' &&
    note "load average is $LOAD0: something else is using the CPUs; the numbers will be noisy"
note "gateway: $GATEWAY_BIN ($("$GATEWAY_BIN" --version 2>&1 | head -n 1))"
note "logs: $RUN"

if want a || want b; then
    start_fake fake-fast "$TOKENS" 0
    BENCH_FAKE_PID=$FAKE_PID
    FAST=$FAKE_PORT
    for sc in a b; do
        want $sc || continue
        if [ $sc = a ]; then stream=0 sse=json nd=json; else stream=1 sse=sse nd=ndjson; fi
        start_nginx nginx-$sc "$FAST"
        start_gateway gateway-$sc "$FAST"
        sanity "direct" "http://127.0.0.1:$FAST/v1/chat/completions"
        sanity "nginx" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions"
        sanity "gateway" "http://127.0.0.1:$GW_PORT/v1/chat/completions"
        bench_wrk $sc "direct (native /api/chat)" "http://127.0.0.1:$FAST/api/chat" $stream $nd -
        bench_wrk $sc "direct (OpenAI /v1)" "http://127.0.0.1:$FAST/v1/chat/completions" $stream $sse -
        bench_wrk $sc "nginx" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" $stream $sse "$NGINX_PID"
        bench_wrk $sc "gateway" "http://127.0.0.1:$GW_PORT/v1/chat/completions" $stream $sse "$GW_PID"
        if [ "$FLOOR" = 1 ]; then
            start_floor floor-$sc "$FAST"
            sanity "floor" "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions"
            bench_wrk $sc "floor (libraries only)" "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" \
                $stream $sse "$FLOOR_PID"
            stop "$FLOOR_PID"
            if [ $sc = a ]; then
                # libmicrohttpd alone: the upstream side without libcurl
                start_floor floor-a-raw "$FAST" raw
                bench_wrk a "floor without libcurl" "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" \
                    0 json "$FLOOR_PID"
                stop "$FLOOR_PID"
            fi
        fi
        if [ "$STRACE" = 1 ]; then
            strace_wrk $sc "nginx" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" $stream $sse "$NGINX_PID"
            strace_wrk $sc "gateway" "http://127.0.0.1:$GW_PORT/v1/chat/completions" $stream $sse "$GW_PID"
        fi
        stop "$NGINX_PID"
        stop "$GW_PID"
        if [ "$AUTH_BENCH" = 1 ]; then
            # The same, with API keys in force: what checking a key costs.
            start_gateway gateway-$sc-keys "$FAST" keys
            BENCH_KEY=$GW_KEY bench_wrk $sc "gateway, API key" \
                "http://127.0.0.1:$GW_PORT/v1/chat/completions" $stream $sse "$GW_PID"
            BENCH_KEY=$GW_KEY_LIMITED bench_wrk $sc "gateway, key with limits" \
                "http://127.0.0.1:$GW_PORT/v1/chat/completions" $stream $sse "$GW_PID"
            stop "$GW_PID"
        fi
    done
    stop "$BENCH_FAKE_PID"
fi

if want f; then
    # The same limited key, its limits kept by the gateway and then in Redis.
    start_fake fake-f "$TOKENS" 0
    BENCH_FAKE_PID=$FAKE_PID
    F_THREADS=$((F_CONNECTIONS < WRK_THREADS ? F_CONNECTIONS : WRK_THREADS))
    start_gateway gateway-f-local "$FAKE_PORT" keys
    BENCH_KEY=$GW_KEY_LIMITED CONNECTIONS=$F_CONNECTIONS WRK_THREADS=$F_THREADS bench_wrk f "limited key, local" \
        "http://127.0.0.1:$GW_PORT/v1/chat/completions" 0 json "$GW_PID"
    stop "$GW_PID"
    start_redis
    start_gateway gateway-f-shared "$FAKE_PORT" keys "$REDIS_PORT"
    # every worker's connection is in (the log says so only at level info)
    conns=0
    for _ in $(seq 1 100); do
        conns=$(redis-cli -p "$REDIS_PORT" client list | grep -vc 'cmd=client' || true)
        [ "$conns" -ge "$WORKERS" ] && break
        sleep 0.1
    done
    [ "$conns" -ge "$WORKERS" ] ||
        die "the gateway's workers did not connect to Redis (see $RUN/gateway-f-shared/stderr.log)"
    r0=$(cpu_ticks "$REDIS_PID")
    BENCH_KEY=$GW_KEY_LIMITED CONNECTIONS=$F_CONNECTIONS WRK_THREADS=$F_THREADS bench_wrk f "limited key, shared" \
        "http://127.0.0.1:$GW_PORT/v1/chat/completions" 0 json "$GW_PID"
    r1=$(cpu_ticks "$REDIS_PID")
    # every request asked Redis: the bucket's hash exists and counts
    redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:rl:*' | grep -q . ||
        die "(f) no bucket in Redis: the limits were not shared"
    REDIS_TICKS_F=$((r1 - r0))
    stop "$GW_PID"
    stop "$REDIS_PID"
    stop "$BENCH_FAKE_PID"
fi

if want c; then
    start_fake fake-slow "$SLOW_TOKENS" "$SLOW_DELAY_MS"
    SLOW_FAKE_PID=$FAKE_PID
    SLOW=$FAKE_PORT
    start_nginx nginx-c "$SLOW"
    start_gateway gateway-c "$SLOW"
    bench_slow "direct (OpenAI /v1)" "$SLOW" /v1/chat/completions sse -
    bench_slow "nginx" "$NGINX_PORT" /v1/chat/completions sse "$NGINX_PID"
    bench_slow "gateway" "$GW_PORT" /v1/chat/completions sse "$GW_PID"
    stop "$NGINX_PID"
    stop "$GW_PID"
    if [ "$FLOOR" = 1 ]; then
        start_floor floor-c "$SLOW"
        bench_slow "floor (libraries only)" "$FLOOR_PORT" /v1/chat/completions sse "$FLOOR_PID"
        stop "$FLOOR_PID"
    fi
    stop "$SLOW_FAKE_PID"
fi

if want d; then
    # Short streams (PACED_TOKENS lines PACED_DELAY_MS apart, the first at once)
    # so that at PACED_RATE requests/s some tens overlap, as a model's answers do.
    start_fake fake-paced "$PACED_TOKENS" "$PACED_DELAY_MS"
    PACED_FAKE_PID=$FAKE_PID
    PACED=$FAKE_PORT
    : >"$RUN/ttft-d.tsv"
    start_nginx nginx-d "$PACED"
    start_gateway gateway-d "$PACED"
    sanity "direct" "http://127.0.0.1:$PACED/v1/chat/completions"
    sanity "nginx" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions"
    sanity "gateway" "http://127.0.0.1:$GW_PORT/v1/chat/completions"
    bench_paced "direct (native /api/chat)" "$PACED" /api/chat ndjson -
    bench_paced "direct (OpenAI /v1)" "$PACED" /v1/chat/completions sse -
    bench_paced "nginx" "$NGINX_PORT" /v1/chat/completions sse "$NGINX_PID"
    bench_paced "gateway" "$GW_PORT" /v1/chat/completions sse "$GW_PID"
    stop "$NGINX_PID"
    stop "$GW_PID"
    stop "$PACED_FAKE_PID"
fi

if want e; then
    start_fake fake-hold "$SLOW_TOKENS_E" "$SLOW_DELAY_MS_E"
    HOLD_FAKE_PID=$FAKE_PID
    HOLD=$FAKE_PORT
    start_nginx nginx-e "$HOLD"
    start_gateway gateway-e "$HOLD"
    bench_hold "direct (OpenAI /v1)" "$HOLD" /v1/chat/completions sse -
    bench_hold "nginx" "$NGINX_PORT" /v1/chat/completions sse "$NGINX_PID"
    bench_hold "gateway" "$GW_PORT" /v1/chat/completions sse "$GW_PID"
    stop "$NGINX_PID"
    stop "$GW_PID"
    if [ "$FLOOR" = 1 ]; then
        start_floor floor-e "$HOLD"
        bench_hold "floor (libraries only)" "$FLOOR_PORT" /v1/chat/completions sse "$FLOOR_PID"
        stop "$FLOOR_PID"
    fi
    stop "$HOLD_FAKE_PID"
fi

# ---- the table ----
{
    echo
    echo "ollama-gateway benchmark, scenarios $SCENARIOS, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r)"
    echo "gateway $("$GATEWAY_BIN" --version 2>&1 | head -n 1), workers $WORKERS; nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), worker_processes $WORKERS; wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s; fake: $([ "$FAKE" = c ] && echo "C (tests/bench/cfake)" || echo "node $(node --version)")"
    if want a || want b; then
        echo "(a) non-streamed, (b) streamed: $TOKENS tokens per answer; wrk, closed loop: latency = request sent -> last byte."
    fi
    if want c; then
        echo "(c) $SLOW_STREAMS concurrent streams of $SLOW_TOKENS tokens ${SLOW_DELAY_MS} ms apart (slow_streams.mjs):"
        echo "    req/s = streams completed per second of wall time, p50/p99 = time to first token, CPU = per stream."
    fi
    if want d; then
        echo "(d) $PACED_RATE streamed requests/s for ${PACED_DURATION}s after ${PACED_WARMUP}s, open loop (paced.c), $PACED_TOKENS tokens ${PACED_DELAY_MS} ms apart:"
        echo "    req/s = correct answers per second, p50/p99 = time to first token from the scheduled send, CPU = per request."
    fi
    if want e; then
        echo "(e) $SLOW_STREAMS_E concurrent streams of $SLOW_TOKENS_E tokens ${SLOW_DELAY_MS_E} ms apart, opened over ${SLOW_RAMP_MS_E} ms (paced.c hold mode):"
        echo "    req/s = streams completed per second of wall time, p50/p99 = time to first token, CPU = per stream."
        [ "$SLOW_STREAMS_E" = "$E_REQUESTED" ] ||
            echo "    REDUCED from $E_REQUESTED streams: the open-files hard limit ($have_fds) allows $SLOW_STREAMS_E through a proxy (2 sockets each)."
    fi
    if want f; then
        echo "(f) non-streamed, $TOKENS tokens, a key with rpm/tpm/max_inflight limits never reached, wrk -c$F_CONNECTIONS:"
        echo "    its limits kept by the gateway (local), then in a redis-server on loopback (shared)."
    fi
    echo "load average before the run: $LOAD0 (other processes on the machine distort every number)"
    echo "CPU us/req: user+system CPU of the proxy (nginx master+workers; the gateway process) / completed requests."
    echo "peak RSS: VmHWM (nginx: summed over master and workers). fake us: the fake Ollama's CPU per request."
    echo "gateway access log: $GATEWAY_ACCESS_LOG"
    echo
    awk -F'\t' 'BEGIN {
            printf "%-3s %-26s %8s %9s %9s %11s %9s %9s  %s\n", "", "path", "req/s", "p50 ms", "p99 ms", "CPU us/req", "RSS MB", "fake us", "checks"
        }
        { printf "%-3s %-26s %8s %9s %9s %11s %9s %9s  %s\n", "(" $1 ")", $2, $3, $4, $5, $6, $7, $8, $9 }' "$RESULTS"
    echo
    awk -F'\t' '
        $2 == "nginx" { n[$1] = $6; nr[$1] = $7 }
        $2 == "gateway" { g[$1] = $6; gr[$1] = $7 }
        $2 == "floor (libraries only)" { fl_[$1] = $6; flr[$1] = $7 }
        $2 == "floor without libcurl" { fr_[$1] = $6 }
        $2 == "gateway, API key" { ka[$1] = $6 }
        $2 == "gateway, key with limits" { kl[$1] = $6 }
        $2 == "limited key, local" { fl = $6; fl50 = $4; fl99 = $5 }
        $2 == "limited key, shared" { fs = $6; fs50 = $4; fs99 = $5; fsn = $9 }
        END {
            split("a b", t, " ")
            for (i = 1; i <= 2; i++) {
                x = t[i]
                if ((x in g) && (x in ka) && g[x] != "-" && ka[x] != "-")
                    printf "(%s) API key checked: %+.1f us CPU per request; with limits: %+.1f us\n", x, ka[x] - g[x], (x in kl && kl[x] != "-") ? kl[x] - g[x] : 0
            }
            if (fl != "" && fs != "" && fl != "-" && fs != "-")
                printf "(f) shared limits add %+.1f us of gateway CPU per request, p50 %+.3f ms, p99 %+.3f ms\n", fs - fl, fs50 - fl50, fs99 - fl99
            split("a b c d e", s, " ")
            for (i = 1; i <= 5; i++) {
                k = s[i]
                if ((k in n) && (k in g) && n[k] + 0 > 0 && g[k] != "-")
                    printf "(%s) gateway/nginx CPU per request: %.2f", k, g[k] / n[k]
                else
                    continue
                if (nr[k] + 0 > 0 && gr[k] != "-")
                    printf ", peak RSS: %.2f", gr[k] / nr[k]
                if ((k in fl_) && fl_[k] != "-")
                    printf "; floor/nginx %.2f, gateway/floor %.2f", fl_[k] / n[k], g[k] / fl_[k]
                if ((k in fr_) && fr_[k] != "-")
                    printf "; without libcurl floor/nginx %.2f", fr_[k] / n[k]
                if ((k in flr) && flr[k] != "-" && gr[k] != "-")
                    printf "; peak RSS floor %s MB, gateway %s MB", flr[k], gr[k]
                printf "\n"
            }
        }' "$RESULTS"
    # The fake must not be the bottleneck: its CPU per request below each proxy's.
    awk -F'\t' '
        $2 == "nginx" || $2 == "gateway" || $2 ~ /^floor/ {
            if ($6 == "-" || $8 == "-") next
            printf "(%s) the fake beside %s: %s us/req (busy %s%% of one CPU) against %s us/req: %s\n", $1, $2, $8, $10, $6,
                ($8 + 0 < $6 / 2) ? "well below" : ($8 + 0 < $6 + 0) ? "below, but not by half" : "NOT BELOW: the fake may be the bottleneck"
        }' "$RESULTS"
    if [ -n "${REDIS_TICKS_F:-}" ]; then
        # Redis's own CPU over the shared run (its warm-up included: an upper bound)
        awk -F'\t' -v t="$REDIS_TICKS_F" -v hz="$CLK_TCK" '$2 == "limited key, shared" {
            split($9, a, "[ /]"); n = a[3] + 0
            if (n > 0) printf "(f) redis-server CPU: at most %.1f us per request (its warm-up requests counted too)\n", t * 1e6 / hz / n }' "$RESULTS"
    fi
    if [ -s "$RUN/ttft-d.tsv" ]; then
        # Added time to first token: each proxy against the direct path it
        # forwards to (the gateway asks the fake's native /api/chat; nginx
        # passes /v1 through), percentile by percentile.
        awk -F'\t' -v rate="$PACED_RATE" '
            { p50[$1] = $2; p99[$1] = $3; bad[$1] = $4 }
            function added(proxy, base) {
                if (!(proxy in p50) || !(base in p50) || p50[proxy] == "-" || p50[base] == "-") return
                printf "(d) added time to first token at %s req/s, %s against %s: p50 %+.3f ms, p99 %+.3f ms%s\n",
                    rate, proxy, base, p50[proxy] - p50[base], p99[proxy] - p99[base],
                    (bad[proxy] + 0 > 0 || bad[base] + 0 > 0) ? " (with FAILED requests: see the rows)" : ""
            }
            END {
                added("gateway", "direct (native /api/chat)")
                added("nginx", "direct (OpenAI /v1)")
                added("gateway", "direct (OpenAI /v1)")
            }' "$RUN/ttft-d.tsv"
    fi
    if [ -s "$SYSCALLS" ]; then
        echo
        echo "System calls per request (strace -c -f on every process and thread of the proxy, a separate"
        echo "${STRACE_DURATION} s wrk run each; strace slows the proxy, so these runs give counts only):"
        awk -F'\t' '{ printf "(%s) %-8s %6s  %s; over %s requests\n", $1, $2, $3, $5, $4 }' "$SYSCALLS"
        awk -F'\t' '$2 == "nginx" { n[$1] = $3 } $2 == "gateway" { g[$1] = $3 }
            END { for (k in g) if ((k in n) && n[k] > 0) printf "(%s) gateway/nginx system calls per request: %.2f\n", k, g[k] / n[k] }' "$SYSCALLS" | sort
    fi
    if [ -n "${SLOW_SATURATED:-}" ]; then
        echo "(c) did not hold all $SLOW_STREAMS streams open at once: the machine could not produce"
        echo "    and consume $((SLOW_STREAMS * 1000 / (SLOW_DELAY_MS > 0 ? SLOW_DELAY_MS : 1))) tokens/s (the client is one Node thread, and so is the fake with FAKE=node)."
        echo "    Raise SLOW_DELAY_MS (e.g. 500) and SLOW_RAMP_MS (e.g. 5000) to measure idle streams."
    fi
} | tee "$RUN/table.txt"
note "table saved to $RUN/table.txt"
