// Prometheus /metrics on its own listener (issue 11, DESIGN.md "Observability"):
// exact counts after known traffic through two fake backends, two keys and
// an alias (successes, a 401, a 404 for an unknown model, a stream the client
// abandons, a failover), tokens by model, key and kind, histogram counts
// equal to request counts, reloads (SIGHUP, good and broken), the brute-force
// guard behind a trusted proxy (failures, blocks, refusals), in-flight back
// to 0, and `promtool check metrics` on what was served.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  needGateway, startGateway, startFake, freePort, chat, jsonOf, readSSE, sseRecords, simpleChat,
  waitFor, bearer, get, httpRequest, runGateway,
} from './harness.mjs';

const T = (ms) => ({ ...needGateway, timeout: ms });
const BUSY = 'server busy, please try again.  maximum pending requests exceeded';
const CHAT = '/v1/chat/completions';
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

let A; let B; let gw; let murl;

before(async () => {
  if (!needGateway.skip) {
    // A has llama3.2 loaded, B only installed: A is chosen first (loaded wins),
    // so a failure scripted on A fails over to B every time.
    A = await startFake({ models: ['llama3.2'], loaded: ['llama3.2'] });
    B = await startFake({ models: ['llama3.2'], loaded: [] });
    const mport = await freePort();
    murl = `http://127.0.0.1:${mport}`;
    gw = await startGateway({
      backends: [{ name: 'A', url: A.url }, { name: 'B', url: B.url }],
      keys: [{ name: 'alice' }, { name: 'bob "the builder"' }, { name: 'carol' }],
      config: {
        workers: 2,
        aliases: { fast: 'llama3.2' },
        metrics: { listen: `127.0.0.1:${mport}` },
        limits: { auth_failures_per_minute: 0, keepalive_interval_s: 1 },
      },
    });
  }
});

after(async () => {
  const code = gw ? await gw.stop() : null;
  await A?.close();
  await B?.close();
  if (code !== null && code !== 0) throw new Error(`gateway exited with ${code}\n${gw.stderr}`);
});

/** A label value as the exposition escapes it, read back. */
function unescape(v) {
  return v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

/**
 * Parse the text format into {samples: Map("name{a=\"x\",b=\"y\"}" (labels
 * sorted) → number), types: Map(name → type), text}.
 */
function parse(text) {
  const samples = new Map();
  const types = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const t = line.match(/^# TYPE (\S+) (\S+)$/);
    if (t) { types.set(t[1], t[2]); continue; }
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `an exposition line: ${line}`);
    const labels = [];
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;
    let lm;
    while (m[2] && (lm = re.exec(m[2]))) labels.push([lm[1], unescape(lm[2])]);
    samples.set(key(m[1], Object.fromEntries(labels)), Number(m[3]));
  }
  return { samples, types, text };
}

function key(name, labels = {}) {
  const l = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',');
  return `${name}{${l}}`;
}

async function scrape() {
  const r = await get(`${murl}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parse(await r.text());
}

/**
 * A scrape once every request so far is counted whole. A client can have
 * its whole answer before the completion callback counts the request, so a
 * scrape right after it could see it half counted; a request's last count is
 * its "finished", which in-flight subtracts, so in flight 0 means settled.
 */
async function settled() {
  return waitFor(async () => {
    const p = await scrape();
    return val(p, 'ollama_gateway_inflight_requests') === 0 ? p : null;
  }, 10000, 20, 'every request counted (in flight 0)');
}

/** The value of a series (0 when absent). */
function val(p, name, labels = {}) {
  return p.samples.get(key(name, labels)) ?? 0;
}

const req = (route, model, status) => ['ollama_gateway_requests_total', { route, model, status: String(status) }];
const tok = (model, k, kind) => ['ollama_gateway_tokens_total', { model, key: k, kind }];

/** after - before for each [name, labels] in the list, as an array. */
function deltas(p0, p1, list) {
  return list.map(([n, l]) => val(p1, n, l) - val(p0, n, l));
}

const SCENE = { tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 7, eval_count: 3 } };

test('the listener: /metrics without a key, 404 elsewhere, not on the API port; HELP and TYPE for every family', T(20000), async () => {
  const p = await scrape();
  assert.equal(val(p, 'ollama_gateway_build_info', {
    version: p.text.match(/version="([^"]+)"/)[1],
    libmicrohttpd: p.text.match(/libmicrohttpd="([^"]+)"/)[1],
    libcurl: p.text.match(/libcurl="([^"]+)"/)[1],
    sanitizers: p.text.match(/sanitizers="([^"]*)"/)[1],
  }), 1);
  assert.equal(val(p, 'ollama_gateway_workers'), 2);
  for (const [name, type] of [
    ['ollama_gateway_requests_total', 'counter'], ['ollama_gateway_request_duration_seconds', 'histogram'],
    ['ollama_gateway_time_to_first_token_seconds', 'histogram'], ['ollama_gateway_tokens_total', 'counter'],
    ['ollama_gateway_inflight_requests', 'gauge'], ['ollama_gateway_backend_up', 'gauge'],
    ['ollama_gateway_backend_inflight', 'gauge'], ['ollama_gateway_backend_queue_length', 'gauge'],
    ['ollama_gateway_backend_loaded_models', 'gauge'], ['ollama_gateway_backend_failovers_total', 'counter'],
    ['ollama_gateway_upstream_cancels_total', 'counter'], ['ollama_gateway_auth_failures_total', 'counter'],
    ['ollama_gateway_auth_guard_blocks_total', 'counter'], ['ollama_gateway_reloads_total', 'counter'],
    ['process_open_fds', 'gauge'], ['process_resident_memory_bytes', 'gauge'],
  ]) assert.equal(p.types.get(name), type, name);
  assert.equal(val(p, 'ollama_gateway_backend_up', { backend: 'A' }), 1);
  assert.equal(val(p, 'ollama_gateway_backend_up', { backend: 'B' }), 1);
  assert.equal(val(p, 'ollama_gateway_backend_loaded_models', { backend: 'A' }), 1);
  assert.equal(val(p, 'ollama_gateway_backend_loaded_models', { backend: 'B' }), 0);
  assert.equal(val(p, 'ollama_gateway_backend_models', { backend: 'B' }), 1);
  assert.ok(val(p, 'process_open_fds') > 5);
  assert.ok(val(p, 'process_resident_memory_bytes') > 1e6);
  const other = await get(`${murl}/v1/models`);
  assert.equal(other.status, 404);
  await other.text();
  const post = await httpRequest(murl, '/metrics', { method: 'POST', body: {} });
  assert.equal(post.status, 405);
  const api = await get(`${gw.url}/metrics`, { headers: bearer(gw.secret('alice')) });
  assert.equal(api.status, 404, 'the API port does not serve metrics');
  await api.text();
});

test('successes, an alias, a 401, a 404 model: exact requests and tokens by model, key and kind', T(30000), async () => {
  A.script(SCENE);
  const p0 = await settled();
  for (let i = 0; i < 3; i++) {
    const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(gw.secret('alice')) }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.usage.prompt_tokens, r.json.usage.completion_tokens], [7, 3]);
  }
  const s = await readSSE(await chat(gw.url, simpleChat('fast', { stream: true, stream_options: { include_usage: true } }),
    { headers: bearer(gw.secret('bob "the builder"')) }));
  assert.equal(s.content, 'abc');
  const bad = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer('og-nosuchkey0000-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }));
  assert.equal(bad.status, 401);
  const none = await jsonOf(await chat(gw.url, simpleChat('no-such-model-7f3a'), { headers: bearer(gw.secret('alice')) }));
  assert.equal(none.status, 404, none.text);
  const p1 = await settled();
  assert.deepEqual(deltas(p0, p1, [
    req(CHAT, 'llama3.2', 200), req(CHAT, 'fast', 200), req(CHAT, '', 401), req(CHAT, '', 404),
    tok('llama3.2', 'alice', 'prompt'), tok('llama3.2', 'alice', 'completion'),
    tok('fast', 'bob "the builder"', 'prompt'), tok('fast', 'bob "the builder"', 'completion'),
    ['ollama_gateway_key_requests_total', { key: 'alice' }],
    ['ollama_gateway_key_requests_total', { key: 'bob "the builder"' }],
    ['ollama_gateway_auth_failures_total'],
  ]), [3, 1, 1, 1, 21, 9, 7, 3, 4, 1, 1]);
  // the unknown name is nowhere: labels stay bounded
  assert.ok(!p1.text.includes('no-such-model'), 'an unknown model name never becomes a label');
  // the key name's quote is escaped in the text
  assert.ok(p1.text.includes('key="bob \\"the builder\\""'));
  // the requests reached the backends: three plain and one stream on A
  assert.equal(A.chats().length + B.chats().length, 4);
});

test('a stream the client abandons: the upstream cancel is counted, its tokens charged to the key', T(30000), async () => {
  A.reset();
  A.script({ tokens: Array.from({ length: 400 }, (_, i) => ` t${i}`), delayMs: 20 });
  const p0 = await settled();
  const ac = new AbortController();
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: bearer(gw.secret('carol')), signal: ac.signal });
  assert.equal(res.status, 200);
  let n = 0;
  try {
    for await (const r of sseRecords(res.body)) {
      if (r.data && r.data !== '[DONE]' && ++n === 5) ac.abort();
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  await waitFor(() => A.chats()[0]?.closedAt != null, 5000, 10, 'the backend saw the gateway close');
  const p1 = await settled();
  assert.equal(val(p1, 'ollama_gateway_upstream_cancels_total') - val(p0, 'ollama_gateway_upstream_cancels_total'), 1);
  const log = gw.stdoutLines.filter((l) => l.key_name === 'carol');
  assert.equal(log.length, 1);
  const [r] = deltas(p0, p1, [req(CHAT, 'llama3.2', log[0].status)]);
  assert.equal(r, 1, `counted with the status the access log has (${log[0].status})`);
  const [prompt, completion] = deltas(p0, p1, [tok('llama3.2', 'carol', 'prompt'), tok('llama3.2', 'carol', 'completion')]);
  assert.equal(prompt, 0, 'no done line, so no prompt count');
  assert.ok(completion >= 5 && completion <= A.chats()[0].linesWritten,
    `one token per line received: ${completion} (5 read, ${A.chats()[0].linesWritten} written)`);
});

test('a failover from A (503 busy) to B: counted for A, the request once, as a success', T(30000), async () => {
  A.reset();
  B.reset();
  A.script({ status: 503, error: BUSY });
  B.script(SCENE);
  const p0 = await settled();
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(gw.secret('alice')) }));
  assert.equal(r.status, 200, r.text);
  assert.equal(A.chats().length, 1, 'A was tried');
  assert.equal(B.chats().length, 1, 'B served it');
  const p1 = await settled();
  assert.deepEqual(deltas(p0, p1, [
    ['ollama_gateway_backend_failovers_total', { backend: 'A' }],
    ['ollama_gateway_backend_failovers_total', { backend: 'B' }],
    req(CHAT, 'llama3.2', 200), req(CHAT, 'llama3.2', 503),
    tok('llama3.2', 'alice', 'prompt'),
  ]), [1, 0, 1, 0, 7]);
  A.reset();
});

test('reloads: SIGHUP ok, then a broken configuration refused', T(30000), async () => {
  const p0 = await settled();
  let from = gw.stderr.length;
  gw.proc.kill('SIGHUP');
  await gw.waitForStderr(/reload (\d+) in force: configuration and keys from /, 5000, from);
  const good = readFileSync(gw.configPath, 'utf8');
  writeFileSync(gw.configPath, '{ "backends": [ }\n');
  from = gw.stderr.length;
  gw.proc.kill('SIGHUP');
  await gw.waitForStderr(/reload refused: /, 5000, from);
  writeFileSync(gw.configPath, good);
  const p1 = await settled();
  assert.deepEqual(deltas(p0, p1, [
    ['ollama_gateway_reloads_total', { result: 'ok' }], ['ollama_gateway_reloads_total', { result: 'failed' }],
    ['ollama_gateway_keys_reloads_total', { result: 'ok' }], ['ollama_gateway_keys_reloads_total', { result: 'failed' }],
  ]), [1, 1, 0, 0]);
  assert.equal(val(p1, 'ollama_gateway_last_reload_successful'), 0);
});

test('histogram counts equal request counts; in flight back to 0; promtool accepts the text', T(30000), async () => {
  const p = await settled();
  const byRoute = new Map();
  let chatOk = 0;
  for (const [k, v] of p.samples) {
    const m = k.match(/^ollama_gateway_requests_total\{model=(".*?"),route=(".*?"),status="(\d+)"\}$/);
    if (!m) continue;
    const route = JSON.parse(m[2]);
    byRoute.set(route, (byRoute.get(route) ?? 0) + v);
    if (route === CHAT && m[3] === '200') chatOk += v;
  }
  assert.ok(byRoute.get(CHAT) >= 8, `chat requests counted: ${byRoute.get(CHAT)}`);
  for (const [route, n] of byRoute) {
    assert.equal(val(p, 'ollama_gateway_request_duration_seconds_count', { route }), n, `duration count for ${route}`);
    assert.equal(val(p, 'ollama_gateway_request_duration_seconds_bucket', { route, le: '+Inf' }), n, `+Inf bucket for ${route}`);
  }
  // every chat that a backend answered had a first token; 401 and 404 had none
  assert.equal(val(p, 'ollama_gateway_time_to_first_token_seconds_count', { route: CHAT }), chatOk);
  // the access log and the metrics agree, request for request, on the chat route
  const logged = gw.stdoutLines.filter((l) => l.path === CHAT).length;
  assert.equal(byRoute.get(CHAT), logged);
  if (hasPromtool) {
    const out = spawnSync('promtool', ['check', 'metrics'], { input: p.text, encoding: 'utf8' });
    assert.equal(out.status, 0, `promtool check metrics:\n${out.stdout}${out.stderr}`);
  }
}, );

test('promtool is installed (deploy/install-deps.sh --test)', { ...needGateway, skip: needGateway.skip || (!hasPromtool && 'promtool is not installed') }, () => {
  assert.match(execFileSync('promtool', ['--version'], { encoding: 'utf8' }), /promtool/);
});

test('a metrics port that is taken stops the start, with the reason', T(20000), async () => {
  const taken = net.createServer();
  await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-metrics-'));
  try {
    const cfg = path.join(dir, 'gateway.json');
    writeFileSync(cfg, JSON.stringify({
      listen: `127.0.0.1:${await freePort()}`, auth: 'none', backends: [{ name: 'A', url: A.url }],
      metrics: { listen: `127.0.0.1:${taken.address().port}` },
    }));
    const r = await runGateway(['serve', '-c', cfg], { timeoutMs: 15000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.address().port} \\(metrics\\.listen\\): Address already in use`));
    assert.match(r.stderr, /cannot start the gateway/);
  } finally {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the brute-force guard behind a trusted proxy: failures, the block it starts and the refusal it causes, exactly', T(30000), async () => {
  // its own gateway: the guard on (3 a minute), 127.0.0.1 a trusted proxy,
  // so each X-Forwarded-For address is a client of its own, none exempt
  const mport = await freePort();
  const g = await startGateway({
    backends: [{ name: 'A', url: A.url }],
    keys: [{ name: 'dave' }],
    config: {
      metrics: { listen: `127.0.0.1:${mport}` },
      trusted_proxies: ['127.0.0.1/32'],
      limits: { auth_failures_per_minute: 3, auth_guard_exempt: [] },
    },
  });
  try {
    const gscrape = async () => {
      const r = await get(`http://127.0.0.1:${mport}/metrics`);
      return parse(await r.text());
    };
    const gsettled = () => waitFor(async () => {
      const p = await gscrape();
      return val(p, 'ollama_gateway_inflight_requests') === 0 ? p : null;
    }, 10000, 20, 'every request counted (in flight 0)');
    const from = (addr, secret) => ({ headers: { ...bearer(secret), 'x-forwarded-for': addr } });
    const wrong = `og-${g.keys[0].id}-${'A'.repeat(43)}`;
    A.script(SCENE);
    const p0 = await gsettled();
    for (let i = 0; i < 3; i++) {
      const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), from('198.51.100.7', wrong)));
      assert.equal(r.status, 401, r.text);
    }
    // blocked now, even with the right key; another client is served
    const refused = await jsonOf(await chat(g.url, simpleChat('llama3.2'), from('198.51.100.7', g.secret('dave'))));
    assert.equal(refused.status, 429, refused.text);
    const served = await jsonOf(await chat(g.url, simpleChat('llama3.2'), from('198.51.100.8', g.secret('dave'))));
    assert.equal(served.status, 200, served.text);
    const p1 = await gsettled();
    assert.deepEqual(deltas(p0, p1, [
      ['ollama_gateway_auth_failures_total'],
      ['ollama_gateway_auth_guard_blocks_total'],
      ['ollama_gateway_auth_guard_refusals_total'],
      req(CHAT, '', 401), req(CHAT, '', 429), req(CHAT, 'llama3.2', 200),
    ]), [3, 1, 1, 3, 1, 1]);
  } finally {
    const code = await g.stop();
    assert.equal(code, 0, g.stderr);
  }
});

/** A whole HTTP/1.1 exchange over a socket bound to localAddress: the raw answer. */
function rawGet(url, target, localAddress, ms) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port), localAddress }, () => {
      s.write(`GET ${target} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d) => { text += d; });
    s.on('end', () => resolve(text));
    s.on('error', reject);
    s.setTimeout(ms, () => { s.destroy(); reject(new Error(`no answer from ${localAddress} within ${ms} ms`)); });
  });
}

test('one address holding idle connections does not shut out a scraper at another address', T(40000), async () => {
  // Every slot of the listener (64) held by one client, as a slowloris
  // would: a scraper at another address must still be answered at once.
  const held = [];
  let closed = 0;
  try {
    for (let i = 0; i < 64; i++) {
      const s = net.connect({ host: '127.0.0.1', port: Number(new URL(murl).port), localAddress: '127.0.0.1' });
      s.on('error', () => {});
      s.on('close', () => { closed++; });
      s.write('GET /metrics HTTP/1.1\r\n'); // a head that never ends
      held.push(s);
    }
    await waitFor(() => held.every((s) => !s.connecting), 10000, 10, 'the 64 connections made');
    const r = await rawGet(murl, '/metrics', '127.0.0.2', 10000);
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.match(r, /ollama_gateway_workers 2\n/);
    // the ones past the per-address limit were closed by the listener
    await waitFor(() => closed >= 64 - 16, 10000, 10, 'the connections past 16 from one address closed');
    assert.ok(held.filter((s) => !s.destroyed).length <= 16);
  } finally {
    for (const s of held) s.destroy();
  }
});

test('every spelling of one model (case, tag, namespace, registry, digest) is one series: a client cannot grow labels', T(30000), async () => {
  A.script(SCENE);
  const p0 = await settled();
  // each is routed to llama3.2 (router_model_eq); what the fake backend then
  // answers (it matches names exactly) does not matter here
  const spellings = ['LLAMA3.2', 'llama3.2:latest', 'library/Llama3.2', 'registry.ollama.ai/library/llama3.2:LATEST',
    'https://registry.ollama.ai/library/llama3.2', 'llama3.2@sha256:0123456789abcdef'];
  const statuses = [];
  for (const m of spellings) {
    const r = await jsonOf(await chat(gw.url, simpleChat(m), { headers: bearer(gw.secret('carol')) }));
    assert.ok(r.status === 200 || /Backend \\"A\\" does not have this model/.test(r.text), `${m}: ${r.status} ${r.text}`);
    statuses.push(r.status);
  }
  const p1 = await settled();
  const counted = [...new Set(statuses)].reduce((n, st) => n + val(p1, ...req(CHAT, 'llama3.2', st)) - val(p0, ...req(CHAT, 'llama3.2', st)), 0);
  assert.equal(counted, spellings.length, 'each request counted under model="llama3.2"');
  const models = new Set([...p1.text.matchAll(/\bmodel="([^"]*)"/g)].map((m) => m[1]));
  assert.deepEqual([...models].filter((m) => !['', 'llama3.2', 'fast'].includes(m)), [],
    'no label but the model\'s one name');
});

test('a loopback listener answers only to loopback names: a rebound DNS name cannot read it from a web page', T(20000), async () => {
  const port = new URL(murl).port;
  const ask = (host) => httpRequest(murl, '/status.json', { headers: { host } });
  // a page at http://rebind.example:PORT whose name now points at 127.0.0.1
  for (const host of [`rebind.example:${port}`, 'rebind.example', `localhost.evil.example:${port}`]) {
    const r = await ask(host);
    assert.equal(r.status, 403, `Host: ${host}: ${r.text}`);
    assert.ok(!r.text.includes('"keys"'), 'nothing of the status');
    assert.match(r.text, /Host/);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '127.0.0.1']) {
    const r = await ask(host);
    assert.equal(r.status, 200, `Host: ${host}: ${r.text}`);
    assert.ok(JSON.parse(r.text).keys, 'the status');
  }
  const m = await httpRequest(murl, '/metrics', { headers: { host: `rebind.example:${port}` } });
  assert.equal(m.status, 403);
});
