// Many concurrent slow streams, for tests/bench/run.sh scenario (c).
//
//   node tests/bench/slow_streams.mjs --port N [--host 127.0.0.1]
//       [--path /v1/chat/completions] [--format sse|ndjson] [--streams 2000]
//       [--tokens 64] [--model llama3.2] [--ramp-ms 1000] [--timeout-s 120]
//
// Opens --streams streamed chat requests (one connection each, an Agent with
// maxSockets = streams), spread over --ramp-ms so the listen queue is not
// flooded, and checks that every stream got exactly --tokens content deltas
// " w0" ... " w<N-1>" in order and its end marker (data: [DONE] for SSE,
// "done":true for NDJSON). Prints progress on stderr and one JSON line on
// stdout:
//   {"streams":2000,"complete":2000,"failed":0,"tokens":128000,
//    "peak_open":2000,"ttft_ms":{"p50":..,"p99":..},"duration_ms":{"p50":..,"p99":..},
//    "wall_ms":..,"errors":{"<reason>":count}}
// Exit status: 0 when every stream was complete, 1 otherwise, 2 on bad usage.

import http from 'node:http';
import { performance } from 'node:perf_hooks';

function parseArgs(argv) {
  const o = {
    host: '127.0.0.1', port: 0, path: '/v1/chat/completions', format: 'sse',
    streams: 2000, tokens: 64, model: 'llama3.2', rampMs: 1000, timeoutS: 120,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--host') o.host = v();
    else if (a === '--port') o.port = Number(v());
    else if (a === '--path') o.path = v();
    else if (a === '--format') o.format = v();
    else if (a === '--streams') o.streams = Number(v());
    else if (a === '--tokens') o.tokens = Number(v());
    else if (a === '--model') o.model = v();
    else if (a === '--ramp-ms') o.rampMs = Number(v());
    else if (a === '--timeout-s') o.timeoutS = Number(v());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.port > 0) || !(o.streams > 0) || !(o.tokens > 0)) throw new Error('--port, --streams and --tokens must be positive');
  if (o.format !== 'sse' && o.format !== 'ndjson') throw new Error('--format is sse or ndjson');
  return o;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i] * 10) / 10;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`slow_streams.mjs: ${e.message}\n`);
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: false, maxSockets: opts.streams, maxTotalSockets: opts.streams });
const body = JSON.stringify({
  model: opts.model, stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }],
});
const results = [];
let open = 0;
let peakOpen = 0;
let finished = 0;
const t0 = performance.now();

// One stream: resolves with {ok, reason, tokens, ttft, duration}.
function oneStream() {
  return new Promise((resolve) => {
    const start = performance.now();
    let ttft = null;
    let got = 0;
    let ended = false;
    let buf = '';
    let counted = false;
    let settled = false;
    const finish = (ok, reason) => {
      if (settled) return;
      settled = true;
      if (counted) open--;
      resolve({ ok, reason, tokens: got, ttft, duration: performance.now() - start });
    };
    // One event (SSE "data: ..." payload or one NDJSON line).
    const onEvent = (text) => {
      if (opts.format === 'sse' && text === '[DONE]') {
        ended = true;
        return;
      }
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        throw new Error('unparsable event');
      }
      if (obj.error) throw new Error(`error event: ${JSON.stringify(obj.error).slice(0, 120)}`);
      const content = opts.format === 'sse' ? obj.choices?.[0]?.delta?.content : obj.message?.content;
      if (content) {
        if (content !== ` w${got}`) throw new Error(`token ${got} was ${JSON.stringify(content)}`);
        if (ttft === null) ttft = performance.now() - start;
        got++;
      }
      if (opts.format === 'ndjson' && obj.done === true) ended = true;
    };
    const req = http.request({
      host: opts.host, port: opts.port, path: opts.path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(false, `status ${res.statusCode}`);
        return;
      }
      open++;
      counted = true;
      if (open > peakOpen) peakOpen = open;
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        try {
          if (opts.format === 'sse') {
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const frame = buf.slice(0, i);
              buf = buf.slice(i + 2);
              for (const line of frame.split('\n')) {
                if (line.startsWith('data: ')) onEvent(line.slice(6));
                else if (line.startsWith('data:')) onEvent(line.slice(5));
                // ": keep-alive" comments and other fields are ignored
              }
            }
          } else {
            let i;
            while ((i = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, i).trim();
              buf = buf.slice(i + 1);
              if (line) onEvent(line);
            }
          }
        } catch (e) {
          req.destroy();
          finish(false, e.message.replace(/\d+/g, 'N'));
        }
      });
      res.on('end', () => {
        if (got !== opts.tokens) finish(false, `${got < opts.tokens ? 'missing' : 'extra'} tokens`);
        else if (!ended) finish(false, 'no end marker');
        else finish(true, null);
      });
      res.on('error', (e) => finish(false, `response ${e.code ?? e.message}`));
      res.on('close', () => finish(false, 'closed early'));
    });
    req.on('error', (e) => finish(false, `request ${e.code ?? e.message}`));
    req.setTimeout(opts.timeoutS * 1000, () => {
      req.destroy();
      finish(false, 'timeout');
    });
    req.end(body);
  });
}

const progress = setInterval(() => {
  process.stderr.write(`  slow streams: ${finished}/${opts.streams} finished, ${open} open\n`);
}, 2000);
const hardStop = setTimeout(() => {
  process.stderr.write('slow_streams.mjs: overall timeout\n');
  process.exit(1);
}, (opts.timeoutS + 30) * 1000);

const pending = [];
for (let i = 0; i < opts.streams; i++) {
  const at = opts.rampMs > 0 ? (i * opts.rampMs) / opts.streams : 0;
  pending.push(new Promise((r) => setTimeout(r, at)).then(oneStream).then((x) => {
    finished++;
    results.push(x);
  }));
}
await Promise.all(pending);
clearInterval(progress);
clearTimeout(hardStop);

const ok = results.filter((r) => r.ok);
const errors = {};
for (const r of results) if (!r.ok) errors[r.reason] = (errors[r.reason] ?? 0) + 1;
const ttfts = results.filter((r) => r.ttft !== null).map((r) => r.ttft).sort((a, b) => a - b);
const durs = ok.map((r) => r.duration).sort((a, b) => a - b);
const out = {
  streams: opts.streams,
  complete: ok.length,
  failed: results.length - ok.length,
  tokens: results.reduce((s, r) => s + r.tokens, 0),
  expected_tokens: opts.streams * opts.tokens,
  peak_open: peakOpen,
  ttft_ms: { p50: pct(ttfts, 50), p99: pct(ttfts, 99) },
  duration_ms: { p50: pct(durs, 50), p99: pct(durs, 99) },
  wall_ms: Math.round(performance.now() - t0),
  errors,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(out.failed === 0 ? 0 : 1);
