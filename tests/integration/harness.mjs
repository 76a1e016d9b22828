// Test harness shared by tests/integration and tests/npm: start the real
// ollama-gateway (process.env.GATEWAY_BIN) against fake Ollama servers, read
// SSE, poll. Every wait here is bounded in time.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };
import { startFake } from '../fake_ollama/fake.mjs';
export { startFake };

export const GATEWAY_BIN = process.env.GATEWAY_BIN;

/** Skip option for node:test when the binary is not given. */
export const needGateway = GATEWAY_BIN ? {} : { skip: 'GATEWAY_BIN is not set' };

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/** A loopback TCP port that was free a moment ago. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars from b replace a's. */
export function merge(a, b) {
  if (!isPlainObject(a) || !isPlainObject(b)) return b === undefined ? a : b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v === undefined ? undefined : (isPlainObject(v) && isPlainObject(a[k]) ? merge(a[k], v) : v);
    if (out[k] === undefined) delete out[k];
  }
  return out;
}

/** Poll pred (sync or async) every intervalMs until truthy; returns its value. */
export async function waitFor(pred, timeoutMs = 5000, intervalMs = 20, what = 'condition') {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (performance.now() > end) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Resolve with promise's value, or with `onTimeout` after ms (the timer is cleared either way). */
export async function within(promise, ms, onTimeout = 'timeout') {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(onTimeout), ms); });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** fetch with a timeout (ms) unless a signal is given. */
export async function get(url, opts = {}) {
  return fetch(url, { signal: opts.signal ?? AbortSignal.timeout(opts.timeoutMs ?? 10000), ...opts });
}

/**
 * Start the gateway.
 * opts.config   object deep-merged over the defaults below
 * opts.backends fake URLs (or full backend objects) → config.backends
 *               (names "fake0", "fake1", …)
 * opts.ready    wait for /readyz 200 as well as /healthz (default: when
 *               backends were given)
 * opts.timeoutMs bound on the start (default 10 s)
 * Returns {url, port, proc, configPath, dir, stdoutLines (parsed access-log
 * objects), stdoutRaw (every stdout line), stderr (getter), stop(), kill()}.
 */
export async function startGateway(opts = {}) {
  if (!GATEWAY_BIN) throw new Error('GATEWAY_BIN is not set');
  const backends = (opts.backends ?? []).map((b, i) => (typeof b === 'string' ? { name: `fake${i}`, url: b } : b));
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const defaults = {
      listen: [`127.0.0.1:${port}`],
      workers: 2,
      auth: 'none',
      backends,
      discovery_interval_s: 1,
      log: { level: 'info', access: '-' },
    };
    const config = merge(defaults, opts.config ?? {});
    try {
      return await launch(config, port, opts);
    } catch (e) {
      lastErr = e;
      if (!/address already in use|EADDRINUSE|bind/i.test(e.message)) throw e;
    }
  }
  throw lastErr;
}

async function launch(config, port, opts) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-test-'));
  const configPath = path.join(dir, 'gateway.json');
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  for (const [name, text] of Object.entries(opts.files ?? {})) {
    writeFileSync(path.join(dir, name), text);
  }
  const proc = spawn(GATEWAY_BIN, ['serve', '-c', configPath, ...(opts.extraArgs ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  running.add(proc);
  const stdoutLines = [];
  const stdoutRaw = [];
  let stderr = '';
  let exitCode = null;
  let exitSignal = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      running.delete(proc);
      resolve(code ?? (signal ? `signal ${signal}` : null));
    });
  });
  proc.on('error', (e) => { stderr += `spawn error: ${e.message}\n`; });
  createInterface({ input: proc.stdout }).on('line', (line) => {
    stdoutRaw.push(line);
    try {
      stdoutLines.push(JSON.parse(line));
    } catch {
      stdoutLines.push({ __unparsable: line });
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });

  const url = `http://127.0.0.1:${port}`;
  const gw = {
    url,
    port,
    proc,
    dir,
    configPath,
    config,
    stdoutLines,
    stdoutRaw,
    get stderr() { return stderr; },
    get exitCode() { return exitCode; },
    get exitSignal() { return exitSignal; },
    exited,
    /** Access-log lines (parsed) for a path, optionally after index `from`. */
    accessLog(pathname) { return stdoutLines.filter((l) => l.path === pathname); },
    /** SIGTERM; resolves with the exit code (SIGKILL after graceMs). */
    async stop(graceMs = 15000) {
      if (exitCode === null && exitSignal === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const r = await exited;
        clearTimeout(t);
        rmSync(dir, { recursive: true, force: true });
        return r;
      }
      rmSync(dir, { recursive: true, force: true });
      return exitCode ?? `signal ${exitSignal}`;
    },
    kill() {
      if (exitCode === null && exitSignal === null) proc.kill('SIGKILL');
      return exited;
    },
  };

  const timeoutMs = opts.timeoutMs ?? 10000;
  const end = performance.now() + timeoutMs;
  const probe = async (p) => {
    try {
      const r = await fetch(url + p, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      return r.status;
    } catch {
      return 0;
    }
  };
  const fail = async (why) => {
    await gw.kill();
    throw new Error(`gateway ${why}\nconfig: ${JSON.stringify(config)}\nstderr:\n${stderr}`);
  };
  let healthy = false;
  while (performance.now() < end) {
    if (exitCode !== null || exitSignal !== null) {
      return fail(`exited during start (code ${exitCode}, signal ${exitSignal})`);
    }
    if ((await probe('/healthz')) === 200) { healthy = true; break; }
    await sleep(50);
  }
  if (!healthy) return fail(`did not answer GET /healthz 200 within ${timeoutMs} ms`);
  const wantReady = opts.ready ?? config.backends.length > 0;
  if (wantReady) {
    let ready = false;
    while (performance.now() < end) {
      if ((await probe('/readyz')) === 200) { ready = true; break; }
      await sleep(50);
    }
    if (!ready) return fail(`did not answer GET /readyz 200 within ${timeoutMs} ms`);
  }
  return gw;
}

/** Run the binary to completion (check, --version …): {code, stdout, stderr}. */
export function runGateway(args, { timeoutMs = 10000, env } = {}) {
  if (!GATEWAY_BIN) throw new Error('GATEWAY_BIN is not set');
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(env ?? {}) } });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------- HTTP helpers

/** POST JSON (object or raw string) to gw.url + path. */
export async function post(base, pathname, body, { headers = {}, signal, timeoutMs = 15000 } = {}) {
  return fetch(base + pathname, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(timeoutMs),
  });
}

/** POST /v1/chat/completions. */
export function chat(base, body, opts) {
  return post(base, '/v1/chat/completions', body, opts);
}

/** Response → {status, headers, json, text}. */
export async function jsonOf(res) {
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

// ---------------------------------------------------------------- SSE

/**
 * Parse an SSE byte stream (a fetch body, a Node Readable, or any async
 * iterable of Uint8Array/string) into records, WHATWG style: lines split on
 * \r\n, \r or \n; a blank line ends a record; ':' lines are comments;
 * "data:" lines joined with "\n" (one optional space after the colon dropped).
 * Yields {data (string|null), event, comments [string], at (performance.now)}.
 * A record that has only comments is yielded too (data null).
 * At EOF, a record without its blank line is yielded with partial: true.
 */
export async function* sseRecords(body) {
  const dec = new TextDecoder();
  let buf = '';
  let cur = { data: null, event: null, comments: [], fields: [] };
  let pendingCR = false;
  const flush = () => {
    const r = cur;
    cur = { data: null, event: null, comments: [], fields: [] };
    return r;
  };
  const handleLine = (line) => {
    if (line === '') return flush();
    if (line.startsWith(':')) {
      cur.comments.push(line.slice(1).replace(/^ /, ''));
      return null;
    }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    cur.fields.push(field);
    if (field === 'data') cur.data = cur.data === null ? value : `${cur.data}\n${value}`;
    else if (field === 'event') cur.event = value;
    return null;
  };
  for await (const piece of body) {
    buf += typeof piece === 'string' ? piece : dec.decode(piece, { stream: true });
    for (;;) {
      if (pendingCR && buf.length) {
        if (buf[0] === '\n') buf = buf.slice(1);
        pendingCR = false;
      }
      const m = /\r\n|\r|\n/.exec(buf);
      if (!m) break;
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      // a lone \r at the end may be the first half of \r\n
      if (m[0] === '\r' && buf.length === 0) pendingCR = true;
      const rec = handleLine(line);
      if (rec && (rec.data !== null || rec.comments.length || rec.fields.length)) {
        yield { ...rec, at: performance.now() };
      }
    }
  }
  buf += dec.decode();
  if (buf.length) handleLine(buf);
  if (cur.data !== null || cur.comments.length || cur.fields.length) {
    yield { ...cur, at: performance.now(), partial: true };
  }
}

/**
 * Read a whole SSE response. Returns
 * {records, comments (all comment texts), dataRecords, chunks (parsed JSON of
 *  data records other than [DONE]), errors (chunks with .error), done (a
 *  [DONE] record seen), doneIndex, afterDone (data records after [DONE]),
 *  partial (a record cut at EOF), content (joined delta.content),
 *  reasoning (joined delta.reasoning_content), unparsable [data strings]}.
 */
export async function readSSE(res, { timeoutMs = 30000 } = {}) {
  const body = res.body ?? res;
  const out = {
    records: [], comments: [], dataRecords: [], chunks: [], errors: [], done: false,
    doneIndex: -1, afterDone: [], partial: false, content: '', reasoning: '', reasoningAlt: '', unparsable: [],
  };
  const work = (async () => {
    for await (const r of sseRecords(body)) {
      out.records.push(r);
      out.comments.push(...r.comments);
      if (r.partial) out.partial = true;
      if (r.data === null) continue;
      if (out.done) out.afterDone.push(r.data);
      out.dataRecords.push(r);
      if (r.data === '[DONE]') {
        out.done = true;
        out.doneIndex = out.dataRecords.length - 1;
        continue;
      }
      let j;
      try {
        j = JSON.parse(r.data);
      } catch {
        out.unparsable.push(r.data);
        continue;
      }
      out.chunks.push(j);
      if (j.error) out.errors.push(j);
      for (const c of j.choices ?? []) {
        if (typeof c.delta?.content === 'string') out.content += c.delta.content;
        if (typeof c.delta?.reasoning_content === 'string') out.reasoning += c.delta.reasoning_content;
        if (typeof c.delta?.reasoning === 'string') out.reasoningAlt += c.delta.reasoning;
      }
    }
  })();
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`readSSE: body not finished within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** The chunks that carry choices (everything but usage/error frames). */
export function choiceChunks(sse) {
  return sse.chunks.filter((c) => Array.isArray(c.choices) && c.choices.length > 0);
}

/** Standard simple chat request body. */
export function simpleChat(model = 'llama3.2', extra = {}) {
  return { model, messages: [{ role: 'user', content: 'Say hello' }], ...extra };
}

/** Assert helper: an OpenAI error body. Returns the error object. */
export function errorOf(json) {
  if (!json || typeof json !== 'object' || !json.error || typeof json.error !== 'object') {
    throw new Error(`not an OpenAI error body: ${JSON.stringify(json)}`);
  }
  return json.error;
}

// ---------------------------------------------------------------- per-file setup

/** Aliases most tests use. */
export const TEST_ALIASES = {
  'gpt-3.5-turbo': 'llama3.2',
  'gpt-4o*': { model: 'qwen3', options: { num_ctx: 8192 } },
  'text-embedding-3-small': 'nomic-embed-text',
};

/**
 * Register before/after/beforeEach hooks (node:test) that start one fake and
 * one gateway for the file, and reset the fake before each test. Returns an
 * object whose .fake and .gw are filled in by the before hook.
 * opts.config: merged over {aliases: TEST_ALIASES}; opts.fake: startFake opts;
 * opts.backendExtra: merged into backends[0] (e.g. {headers: {...}}).
 */
export function useGateway(hooks, opts = {}) {
  const env = { fake: null, gw: null };
  if (!GATEWAY_BIN) return env;
  hooks.before(async () => {
    env.fake = await startFakeLocal(opts.fake ?? {});
    env.gw = await startGateway({
      backends: [{ name: 'fake0', url: env.fake.url, ...(opts.backendExtra ?? {}) }],
      config: merge({ aliases: TEST_ALIASES }, opts.config ?? {}),
    });
  });
  hooks.after(async () => {
    const code = env.gw ? await env.gw.stop() : null;
    if (env.fake) await env.fake.close();
    if (opts.expectCleanExit !== false && code !== null && code !== 0) {
      throw new Error(`gateway exited with ${code} on SIGTERM\nstderr:\n${env.gw.stderr}`);
    }
  });
  hooks.beforeEach(() => {
    env.fake?.reset();
  });
  return env;
}

function startFakeLocal(o) {
  return startFake(o);
}

/** Chunks of a readSSE result that carry a choice, with their deltas. */
export function deltas(sse) {
  return choiceChunks(sse).map((c) => c.choices[0].delta);
}

/** Group streamed tool-call deltas by index: {index: {ids:[], types:[], names:[], args:''}}. */
export function toolCallDeltas(sse) {
  const by = new Map();
  for (const d of deltas(sse)) {
    for (const tc of d.tool_calls ?? []) {
      if (!Number.isInteger(tc.index)) throw new Error(`tool call delta without integer index: ${JSON.stringify(tc)}`);
      const e = by.get(tc.index) ?? { ids: [], types: [], names: [], args: '' };
      if (tc.id !== undefined) e.ids.push(tc.id);
      if (tc.type !== undefined) e.types.push(tc.type);
      if (tc.function?.name !== undefined) e.names.push(tc.function.name);
      if (tc.function?.arguments !== undefined) e.args += tc.function.arguments;
      by.set(tc.index, e);
    }
  }
  return by;
}

/** Read /proc/<pid>/status VmRSS in KiB (0 when unavailable). */
export function rssKiB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
