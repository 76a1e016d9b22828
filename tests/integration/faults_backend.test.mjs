// The backend side of the fault matrix (issue 12), table-driven: for each
// way a backend can fail, the affected client gets a clear OpenAI-shaped
// error (an HTTP status and a JSON error before its first byte, an SSE error
// frame after), a steady client streaming beside it keeps being served, and
// nothing leaks: the gateway's open fds (less its upstream connections), the
// fake's requests in progress and the gateway's RSS come back to where they
// were before the fault. The behaviour of each fault on its own is asserted
// in errors.test.mjs, timers.test.mjs and memory.test.mjs; this file is
// about what the fault leaves behind and who else it hurts.
// Then the memory budget: spent by one slow stream, new requests get 503
// server_overloaded with Retry-After while that stream completes.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  needGateway, startFake, startGateway, runGateway, httpRequest, readSSE, waitFor, rssKiB, GATEWAY_BIN,
} from './harness.mjs';

const STEADY = Array.from({ length: 20 }, (_, i) => ` s${i}`);
// Raw NDJSON lines, built (and flattened) once: the fake must not spend
// seconds of its event loop, which is the test's too, making 50 MB of JSON
// while the gateway's clocks run.
function nativeLine(content) {
  const [pre, post] = JSON.stringify({ model: 'llama3.2', created_at: '2026-01-01T00:00:00Z', message: { role: 'assistant', content: '@' }, done: false }).split('@');
  const body = typeof content === 'number' ? Buffer.alloc(content, 'b') : Buffer.from(content);
  return Buffer.concat([Buffer.from(pre), body, Buffer.from(`${post}\n`)]).toString('latin1');
}
const BIG_LINES = [nativeLine('one'), nativeLine(50 << 20)]; // 50 MB of 'b', over the 16 MiB line limit

function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function chatBody(content, { stream = true, model = 'llama3.2' } = {}) {
  return { model, stream, messages: [{ role: 'user', content }] };
}

/** POST /v1/chat/completions on a connection of its own, closed after the answer. */
function ask(gw, content, opts = {}) {
  return httpRequest(gw.url, '/v1/chat/completions', {
    method: 'POST', body: chatBody(content, opts), timeoutMs: opts.timeoutMs ?? 20000,
  });
}

/** The SSE of a whole text answer (readSSE takes any iterable of strings). */
function sseOf(text) {
  return readSSE([text]);
}

/**
 * Streams from a steady client, one after the other, until halted (or for
 * at most a minute): every one must be whole (all tokens, then [DONE]).
 * stop() waits for at least one to have ended, halts, and asserts they were
 * all served; halt() just ends the loop (for a test that failed earlier).
 */
function steadyClient(gw) {
  let stopped = false;
  let served = 0;
  const failures = [];
  const until = performance.now() + 60000;
  const run = (async () => {
    while (!stopped && performance.now() < until) {
      try {
        const r = await ask(gw, 'steady');
        const sse = await sseOf(r.text);
        if (r.status !== 200 || sse.content !== STEADY.join('') || !sse.done) {
          failures.push(`status ${r.status}, content ${JSON.stringify(sse.content)}, done ${sse.done}`);
        } else {
          served++;
        }
      } catch (e) {
        failures.push(String(e));
      }
    }
  })();
  const halt = async () => {
    stopped = true;
    await run;
  };
  return {
    halt,
    async stop() {
      // at least one whole stream ran beside the fault
      await waitFor(() => served + failures.length > 0, 10000, 20, 'a steady stream ended');
      await halt();
      assert.deepEqual(failures, [], 'every steady stream was served whole');
      return served;
    },
  };
}

let sanitized = false;
let fake;
let dead;
let gw;

before(async () => {
  if (!GATEWAY_BIN) return;
  sanitized = /sanitizers/.test((await runGateway(['--version'])).stdout);
  // Idle upstream connections stay open through the file: the fd balance
  // below pairs the gateway's upstream sockets with the fake's connections.
  fake = await startFake({ keepAliveTimeoutMs: 600000 });
  dead = await startFake({});
  fake.script((body) => {
    const what = body?.messages?.[0]?.content;
    if (what === 'steady') return { tokens: STEADY, delayMs: 40 };
    return current?.scenario ?? null;
  });
  gw = await startGateway({
    backends: [{ name: 'fake0', url: fake.url }, { name: 'dead', url: dead.url }],
    config: {
      // discovery must not notice the dead backend while the file runs
      discovery_interval_s: 3600,
      aliases: { 'dead-model': { model: 'llama3.2', backends: ['dead'] } },
      limits: { first_token_timeout_s: 3, idle_stream_timeout_s: 3, keepalive_interval_s: 60 },
    },
  });
  await dead.close(); // a port that refuses connections from now on
});

after(async () => {
  const code = gw ? await gw.stop() : null;
  if (fake) await fake.close();
  if (code !== null && code !== 0) throw new Error(`gateway exited with ${code}\nstderr:\n${gw.stderr}`);
});

/** What is open now, and what must come back. */
function snapshot() {
  return {
    // the gateway's fds besides its upstream connections (each of which the
    // fake counts too): listeners, epoll, timers, client connections
    own: fdCount(gw.proc.pid) - fake.openConnections,
    upstream: fake.openConnections,
    rss: rssKiB(gw.proc.pid),
  };
}

/** Wait (bounded) until nothing is left of the fault. */
async function settled(base, what) {
  let now;
  try {
    await waitFor(() => {
      now = snapshot();
      return fake.inflight === 0 && now.own <= base.own &&
        (sanitized || now.rss <= base.rss + 8 * 1024);
    }, 5000, 20, what);
  } catch (e) {
    const open = fake.requests.filter((q) => !q.finished && q.closedAt === null)
      .map((q) => `${q.path} ${JSON.stringify(q.body?.messages?.[0]?.content)} lines ${q.linesWritten} since ${Math.round(performance.now() - q.receivedAt)} ms`);
    assert.fail(`${what}: before ${JSON.stringify(base)}, now ${JSON.stringify(now)}, fake answering ${fake.inflight}: ${open.join('; ')}`);
  }
  // kept-alive upstream connections are reused, not piled up: at most one
  // per request that was running at once (the fault, a steady stream)
  assert.ok(now.upstream <= base.upstream + 2, `upstream connections ${base.upstream} → ${now.upstream}`);
  return now;
}

let current = null;

// name, the request (stream, model), the fake's scenario, what the client gets:
// status + code before the first byte, or content + an error frame's code after it
const FAULTS = [
  { name: 'refuses connections', model: 'dead-model', stream: false,
    status: [502, 503], code: ['upstream_error', 'backend_unavailable'] },
  { name: 'hangs before the headers', scenario: { hang: true }, status: [504], code: ['upstream_timeout'] },
  { name: 'hangs mid-stream', scenario: { tokens: ['one', ' two', ' three'], stallAfter: 1 },
    content: 'one', frame: 'upstream_timeout' },
  { name: 'resets before answering (non-streamed)', stream: false, scenario: { tokens: ['a'], dropAfter: 0 },
    status: [502], code: ['upstream_error'] },
  { name: 'resets mid-stream', scenario: { tokens: ['one', ' two', ' three', ' four'], dropAfter: 2 },
    content: 'one two', frame: 'upstream_error' },
  { name: 'sends garbage (non-JSON lines)', scenario: { tokens: ['one', ' two', ' three'], garbageAfter: 1 },
    content: 'one', frame: 'upstream_error' },
  { name: 'sends garbage (non-streamed)', stream: false, scenario: { tokens: ['a'], garbageAfter: 0 },
    status: [502], code: ['upstream_error'] },
  { name: 'sends a 50 MB line', scenario: { lines: BIG_LINES, delayMs: 100 },
    content: 'one', frame: 'upstream_error', message: /longer than/ },
  { name: 'sends an error line', scenario: { tokens: ['one', ' two'], errorAfter: 1, errorMessage: 'CUDA out of memory' },
    content: 'one', frame: 'upstream_error', message: /CUDA out of memory/ },
  { name: 'closes without done', scenario: { lines: [{ model: 'llama3.2', created_at: '', message: { role: 'assistant', content: 'cut' }, done: false }] },
    content: 'cut', frame: 'upstream_error' },
  { name: 'dribbles bytes', scenario: { tokens: ['one', ' two', ' three'], dribbleMs: 100, dribbleFrom: 1 },
    content: 'one', frame: 'upstream_timeout' },
];

for (const f of FAULTS) {
  test(`backend ${f.name}: a clear error, the steady client served, nothing left behind`, needGateway, async (t) => {
    current = f;
    const base = snapshot();
    const logged = gw.accessLog('/v1/chat/completions').length;
    const steady = steadyClient(gw);
    let served;
    try {
      const r = await ask(gw, 'fault', { stream: f.stream ?? true, model: f.model });
      if (f.status) {
        // before the first byte: an HTTP error status and an OpenAI error body
        assert.ok(f.status.includes(r.status), `status ${r.status}: ${r.text.slice(0, 300)}`);
        assert.match(r.headers['content-type'] ?? '', /^application\/json/);
        assert.equal(r.json?.error?.type, 'api_error', r.text.slice(0, 300));
        assert.ok(f.code.includes(r.json.error.code), r.text.slice(0, 300));
        assert.ok(r.json.error.message.length > 0);
      } else {
        // after it: what came, then one error frame and no [DONE]
        assert.equal(r.status, 200, r.text.slice(0, 300));
        const sse = await sseOf(r.text);
        assert.equal(sse.content, f.content);
        assert.equal(sse.done, false, 'no [DONE] after an error');
        assert.equal(sse.errors.length, 1, `one error frame: ${r.text.slice(-400)}`);
        const e = sse.errors[0].error;
        assert.equal(e.type, 'api_error');
        assert.equal(e.code, f.frame);
        if (f.message) assert.match(e.message, f.message);
      }
      served = await steady.stop();
    } finally {
      await steady.halt(); // a failed assertion must not leave it running
    }
    // the fault's request has ended in the gateway (its access-log line) ...
    await waitFor(() => gw.accessLog('/v1/chat/completions').slice(logged).some((l) => l.error),
      5000, 20, 'the fault\'s access-log line');
    // ... and nothing of it is left
    const now = await settled(base, f.name);
    t.diagnostic(`${f.name}: before ${JSON.stringify(base)}, after ${JSON.stringify(now)}, steady streams ${served}`);
    current = null;
  });
}

// The memory budget: one stream holds a 15 MB frame its client does not
// read, which spends a 16 MiB budget; a new request is refused while the
// gateway's own answers go on, and the stream completes once read.
test('memory budget spent: 503 server_overloaded with Retry-After for a new request while the in-flight one completes', needGateway, async () => {
  const f2 = await startFake({});
  const line = 'm'.repeat(15 << 20);
  f2.script((body) => (body?.messages?.[0]?.content === 'long' ? { tokens: ['start', line] } : { tokens: ['ok'] }));
  const g2 = await startGateway({
    backends: [f2.url],
    config: { limits: { max_body_bytes: 1 << 20, max_buffered_bytes: 16 << 20 } },
  });
  try {
    const base = fdCount(g2.proc.pid) - f2.openConnections;
    const rss0 = rssKiB(g2.proc.pid);
    // the slow reader: reads the first bytes, then stops reading
    let received = 0;
    let resume;
    const slow = new Promise((resolve, reject) => {
      const data = JSON.stringify(chatBody('long'));
      const req = http.request({
        host: '127.0.0.1', port: g2.port, path: '/v1/chat/completions', method: 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      }, (res) => {
        const parts = [];
        res.on('data', (d) => {
          parts.push(d);
          received += d.length;
          if (!resume) {
            res.pause();
            resume = () => res.resume();
          }
        });
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
    const from = g2.stderr.length;
    // the fake has sent the long line: once the gateway holds it, the budget
    // is spent and new requests are refused (polled, with a deadline)
    const rec = await f2.waitForRequest((c) => c.path === '/api/chat' && c.body?.messages?.[0]?.content === 'long', 5000);
    await waitFor(() => rec.linesWritten >= 2, 10000, 20, 'the fake wrote the long line');
    let refused;
    let n = 0;
    await waitFor(async () => {
      refused = await ask(g2, `new${++n}`, { stream: false });
      return refused.status === 503;
    }, 10000, 50, 'a new request refused for the budget');
    // in OpenAI's shape, with Retry-After, and never sent to the backend
    assert.equal(refused.json?.error?.type, 'api_error', refused.text);
    assert.equal(refused.json.error.code, 'server_overloaded');
    assert.match(refused.json.error.message, /max_buffered_bytes/);
    assert.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After');
    assert.equal(f2.chats().filter((c) => c.body?.messages?.[0]?.content === `new${n}`).length, 0,
      'the refused request never reached the backend');
    await g2.waitForStderr(/memory budget spent: \d+ bytes held/, 2000, from);
    // the gateway's own routes are still answered
    const health = await httpRequest(g2.url, '/healthz');
    assert.equal(health.status, 200);
    const models = await httpRequest(g2.url, '/v1/models');
    assert.equal(models.status, 200);
    // the in-flight stream completes, whole
    assert.ok(resume, 'the stream had started');
    resume();
    const done = await slow;
    assert.equal(done.status, 200);
    const sse = await sseOf(done.text);
    assert.equal(sse.content, `start${line}`);
    assert.ok(sse.done, 'the in-flight stream ended with [DONE]');
    // once it has, requests are admitted again
    const again = await ask(g2, 'after', { stream: false });
    assert.equal(again.status, 200, again.text);
    await g2.waitForStderr(/memory budget: \d+ bytes held .*admitted again/, 2000, from);
    const accessed = g2.accessLog('/v1/chat/completions');
    assert.ok(accessed.some((l) => l.status === 503 && l.error === 'server_overloaded'), 'the access log says why');
    // and nothing is left of it
    let now;
    await waitFor(() => {
      now = { own: fdCount(g2.proc.pid) - f2.openConnections, rss: rssKiB(g2.proc.pid) };
      return f2.inflight === 0 && now.own <= base && (sanitized || now.rss <= rss0 + 8 * 1024);
    }, 5000, 20, 'nothing left').catch(() => assert.fail(`before ${base} fds, ${rss0} KiB; now ${JSON.stringify(now)}`));
    assert.ok(received > 0);
  } finally {
    const code = await g2.stop();
    await f2.close();
    assert.equal(code, 0, `gateway exit: ${g2.stderr}`);
  }
});
