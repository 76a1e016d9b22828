// Test harness shared by tests/integration and tests/npm: start the real
// ollama-gateway (process.env.GATEWAY_BIN) against fake Ollama servers, read
// SSE, poll. Every wait here is bounded in time.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, renameSync, chmodSync } from 'node:fs';
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
 * opts.extraListen more "host:port" listen addresses after the default one
 * opts.keys     [{name, models, rpm, tpm, maxInflight, expires, admin,
 *               disabled, revoked}]: the config gets "auth": "keys" (unless
 *               opts.config says otherwise) and these keys are made with
 *               `key create` (then `key disable`/`key revoke`) after the config
 *               is written, before the daemon starts (→ gw.keys)
 * opts.holdStdout: do not read the daemon's stdout until gw.readStdout()
 * opts.editKeys (doc, keys) => void: change the parsed keys file after the
 *               keys were made (e.g. an expiry in the past, which `key create`
 *               refuses); it is written back atomically with mode 0600
 * Returns {url, port, proc, configPath, keysPath, dir, stdoutLines (parsed
 * access-log objects), stdoutRaw (every stdout line), stderr (getter),
 * waitForStderr(re, timeoutMs, from) (a stderr line matching re),
 * keys ([{name, id, secret}], empty without opts.keys), stop(), kill()}.
 */
export async function startGateway(opts = {}) {
  if (!GATEWAY_BIN) throw new Error('GATEWAY_BIN is not set');
  const backends = (opts.backends ?? []).map((b, i) => (typeof b === 'string' ? { name: `fake${i}`, url: b } : b));
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const defaults = {
      listen: [`127.0.0.1:${port}`, ...(opts.extraListen ?? [])],
      workers: 2,
      auth: opts.keys ? 'keys' : 'none',
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
    // owner only, as a deployment keeps them: a TLS key others may read is refused
    writeFileSync(path.join(dir, name), text, { mode: 0o600 });
  }
  const keysFile = config.keys_file ?? 'keys.json';
  const keysPath = path.isAbsolute(keysFile) ? keysFile : path.join(dir, keysFile);
  const keys = [];
  try {
    for (const k of opts.keys ?? []) {
      const secret = await createKey(configPath, k.name, k);
      const id = keyIdOf(secret);
      for (const verb of ['disable', 'revoke']) {
        if (!k[verb === 'disable' ? 'disabled' : 'revoked']) continue;
        const r = await runGateway(['key', verb, id, '-c', configPath]);
        if (r.code !== 0) throw new Error(`key ${verb} ${id} exited ${r.code}\nstderr: ${r.stderr}`);
      }
      keys.push({ name: k.name, id, secret });
    }
    if (opts.editKeys) {
      const doc = JSON.parse(readFileSync(keysPath, 'utf8'));
      opts.editKeys(doc, keys);
      writeFileAtomic(keysPath, `${JSON.stringify(doc, null, 2)}\n`, 0o600);
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
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
  const readStdout = () => createInterface({ input: proc.stdout }).on('line', (line) => {
    stdoutRaw.push(line);
    try {
      stdoutLines.push(JSON.parse(line));
    } catch {
      stdoutLines.push({ __unparsable: line });
    }
  });
  // opts.holdStdout: nobody reads the access log until gw.readStdout() (a
  // stalled reader: the pipe fills up and stays full)
  if (!opts.holdStdout) readStdout();
  proc.stderr.setEncoding('utf8');
  // waitForStderr's waiters: each is checked against every complete line
  const stderrWaiters = new Set();
  const checkStderr = () => {
    for (const w of stderrWaiters) {
      const m = findLine(stderr, w.from, w.re);
      if (m) { stderrWaiters.delete(w); w.resolve(m); }
    }
  };
  proc.stderr.on('data', (d) => { stderr += d; checkStderr(); });

  const url = `http://127.0.0.1:${port}`;
  const gw = {
    url,
    port,
    proc,
    dir,
    configPath,
    keysPath,
    config,
    keys,
    /** The secret of the key named `name` (from opts.keys). */
    secret(name) {
      const k = keys.find((x) => x.name === name);
      if (!k) throw new Error(`no key named ${name}`);
      return k.secret;
    },
    stdoutLines,
    stdoutRaw,
    /** With opts.holdStdout: start reading stdout now. */
    readStdout,
    get stderr() { return stderr; },
    get exitCode() { return exitCode; },
    get exitSignal() { return exitSignal; },
    exited,
    /**
     * Resolve on the first complete stderr line that starts at or after
     * character offset `from` (default 0; pass gw.stderr.length taken before
     * the action to see only what followed it) and matches `re`: resolves
     * {line, match, end (the offset just past that line)}. Rejects after
     * timeoutMs, or at once if the gateway has exited without such a line.
     */
    waitForStderr(re, timeoutMs = 5000, from = 0) {
      const m = findLine(stderr, from, re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const w = { re, from, resolve: null };
        const done = () => { clearTimeout(t); stderrWaiters.delete(w); };
        w.resolve = (v) => { done(); resolve(v); };
        const fail = (why) => {
          done();
          reject(new Error(`waitForStderr ${re}: ${why}\nstderr since offset ${from}:\n${stderr.slice(from)}`));
        };
        const t = setTimeout(() => fail(`no such line within ${timeoutMs} ms`), timeoutMs);
        stderrWaiters.add(w);
        exited.then(() => setImmediate(() => { if (stderrWaiters.has(w)) fail('the gateway exited'); }));
      });
    },
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

/** The first complete line of text starting at or after offset `from` that matches re. */
function findLine(text, from, re) {
  let start = from > 0 ? text.lastIndexOf('\n', from - 1) + 1 : 0;
  if (start < from) start = text.indexOf('\n', from) + 1 || text.length; // from is mid-line: the next line
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return null; // not complete yet
    const line = text.slice(start, nl);
    const match = line.match(re);
    if (match) return { line, match, end: nl + 1 };
    start = nl + 1;
  }
  return null;
}

/** Run the binary to completion (check, --version …): {code, stdout, stderr}. */
export function runGateway(args, { timeoutMs = 10000, env, cwd } = {}) {
  if (!GATEWAY_BIN) throw new Error('GATEWAY_BIN is not set');
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(env ?? {}) }, cwd });
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

// ---------------------------------------------------------------- API keys

/** The format `key create` prints: og-<12 [a-z0-9]>-<43 base64url>. */
export const SECRET_RE = /^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}$/;

/** The public id of a secret: the 12 characters after "og-". */
export function keyIdOf(secret) {
  return secret.slice(3, 15);
}

/** The CLI arguments for `key create NAME …` from {models, rpm, tpm, maxInflight, expires, admin}. */
export function keyCreateArgs(name, opts = {}) {
  const args = ['key', 'create', name];
  if (opts.models !== undefined) args.push('--models', Array.isArray(opts.models) ? opts.models.join(',') : String(opts.models));
  if (opts.rpm !== undefined) args.push('--rpm', String(opts.rpm));
  if (opts.tpm !== undefined) args.push('--tpm', String(opts.tpm));
  if (opts.maxInflight !== undefined) args.push('--max-inflight', String(opts.maxInflight));
  if (opts.expires !== undefined) args.push('--expires', String(opts.expires));
  if (opts.admin) args.push('--admin');
  return args;
}

/**
 * `ollama-gateway key create NAME [options] -c configPath`; asserts exit 0
 * and that stdout is exactly the secret and a newline. Returns the secret.
 */
export async function createKey(configPath, name, opts = {}) {
  const r = await runGateway([...keyCreateArgs(name, opts), '-c', configPath]);
  if (r.code !== 0) {
    throw new Error(`key create ${name} exited ${r.code} (signal ${r.signal})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  if (!/^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}\n$/.test(r.stdout)) {
    throw new Error(`key create ${name}: stdout is not just the secret and a newline: ${JSON.stringify(r.stdout)}\nstderr: ${r.stderr}`);
  }
  return r.stdout.slice(0, -1);
}

/** `Authorization: Bearer <secret>` as a headers object. */
export function bearer(secret) {
  return { authorization: `Bearer ${secret}` };
}

/**
 * Replace a file atomically, as the key commands do: write a temporary file
 * in the same folder with `mode`, then rename it over the target.
 */
export function writeFileAtomic(file, text, mode = 0o600) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.test-${process.pid}-${Date.now()}`);
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode); // the umask may have cut bits off
  renameSync(tmp, file);
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

/**
 * One request on a connection of its own (agent: false), so that concurrent
 * calls really are separate connections. Resolves {status, headers (plain
 * object, lower-case names), text, json}; rejects on a network error or after
 * timeoutMs. localAddress: the loopback address to send from (the gateway
 * sees another client).
 */
export function httpRequest(base, pathname, { method = 'GET', headers = {}, body, timeoutMs = 15000, localAddress } = {}) {
  const u = new URL(base);
  const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port, path: pathname, method, agent: false, localAddress,
      headers: { ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        clearTimeout(t);
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', (e) => { clearTimeout(t); reject(e); });
    });
    const t = setTimeout(() => req.destroy(new Error(`httpRequest ${method} ${pathname}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(t); reject(e); });
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/**
 * Assert an OpenAI error response (a fetch Response): status, JSON content
 * type, exactly {message, type, param, code}, and the given type/code/param.
 * Returns {error, headers, text}.
 */
export async function expectApiError(res, status, { type, code, param } = {}, what = '') {
  const r = await jsonOf(res);
  const tag = what ? `${what}: ` : '';
  if (r.status !== status) throw new assert.AssertionError({ message: `${tag}status ${r.status}, want ${status} (body: ${r.text})`, actual: r.status, expected: status, operator: '===' });
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${tag}content-type`);
  assert.ok(r.json && typeof r.json.error === 'object' && r.json.error !== null, `${tag}OpenAI error body: ${r.text}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], `${tag}error fields: ${r.text}`);
  assert.equal(typeof e.message, 'string', `${tag}message`);
  assert.ok(e.message.length > 0, `${tag}message not empty`);
  if (type !== undefined) assert.equal(e.type, type, `${tag}type: ${r.text}`);
  if (code !== undefined) assert.equal(e.code, code, `${tag}code: ${r.text}`);
  if (param !== undefined) assert.equal(e.param, param, `${tag}param: ${r.text}`);
  return { error: e, headers: r.headers, text: r.text };
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
 * opts.backendExtra: merged into backends[0] (e.g. {headers: {...}});
 * opts.keys: as startGateway's (then env.gw.keys / env.gw.secret(name)).
 */
export function useGateway(hooks, opts = {}) {
  const env = { fake: null, gw: null };
  if (!GATEWAY_BIN) return env;
  hooks.before(async () => {
    env.fake = await startFakeLocal(opts.fake ?? {});
    env.gw = await startGateway({
      backends: [{ name: 'fake0', url: env.fake.url, ...(opts.backendExtra ?? {}) }],
      config: merge({ aliases: TEST_ALIASES }, opts.config ?? {}),
      keys: opts.keys,
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

/**
 * One fake and one gateway for fn(gw, fake), both stopped after it however fn
 * ends. opts: startGateway's (backends default to the fake), and opts.fake:
 * startFake's. The gateway must exit 0 on SIGTERM: a sanitizer build reports
 * what it found (a leak, a bad access) by exiting non-zero.
 */
export async function withGateway(opts, fn) {
  const { fake: fakeOpts = {}, ...gatewayOpts } = opts;
  const fake = await startFake(fakeOpts);
  const gw = await startGateway({ backends: [fake.url], ...gatewayOpts });
  try {
    await fn(gw, fake);
  } finally {
    const code = await gw.stop();
    await fake.close();
    assert.equal(code, 0, `the gateway exits cleanly on SIGTERM\n${gw.stderr}`);
  }
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
