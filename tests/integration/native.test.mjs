// Ollama's native API through the gateway (README "Ollama's native API"):
// the same keys, scopes, aliases, routing and cancellation as /v1, answers
// relayed as Ollama wrote them with the client's model name, errors in
// Ollama's shape, model management for admin keys only, blob uploads
// streamed through a bounded window.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, startFake, startGateway, bearer, post, waitFor, TEST_ALIASES,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  keys: [
    { name: 'user' },
    { name: 'scoped', models: ['gpt-3.5-turbo', 'text-embedding-3-small', 'nomic-embed-text*'] },
    { name: 'root', admin: true },
  ],
  config: { limits: { first_token_timeout_s: 30, idle_stream_timeout_s: 30 } },
});

const auth = (name) => bearer(env.gw.secret(name));

/** Split an NDJSON body into parsed lines (a trailing partial line fails the parse). */
function ndjson(text) {
  assert.ok(text.endsWith('\n'), `NDJSON ends with a newline: ${JSON.stringify(text.slice(-80))}`);
  return text.split('\n').slice(0, -1).map((l) => JSON.parse(l));
}

/** Assert an Ollama-shaped error: {"error": "<non-empty text>"} and nothing else. */
async function expectOllamaError(res, status, re, what = '') {
  const text = await res.text();
  assert.equal(res.status, status, `${what} status (body ${text})`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what} content-type`);
  const j = JSON.parse(text);
  assert.deepEqual(Object.keys(j), ['error'], `${what} body is {"error": …}: ${text}`);
  assert.equal(typeof j.error, 'string');
  assert.ok(j.error.length > 0);
  if (re) assert.match(j.error, re, what);
  return j.error;
}

const chatBody = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

test('POST /api/chat streams NDJSON as Ollama wrote it, under the alias the client asked for', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Hel', 'lo', '!'] });
  const res = await post(gw.url, '/api/chat', chatBody('gpt-3.5-turbo'), { headers: auth('user') });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
  const lines = ndjson(await res.text());
  assert.deepEqual(lines.map((l) => l.message?.content), ['Hel', 'lo', '!', '']);
  for (const l of lines) assert.equal(l.model, 'gpt-3.5-turbo', 'every line names the model as asked');
  const last = lines.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'stop');
  assert.equal(typeof last.eval_count, 'number');
  const rec = fake.chats()[0];
  assert.equal(rec.body.model, 'llama3.2', 'the backend is asked for the aliased model');
  assert.equal(rec.body.stream, undefined, 'the client\'s body passes as it is ("stream" absent = true)');
  assert.deepEqual(rec.body.messages, [{ role: 'user', content: 'hi' }]);
  assert.equal(rec.headers.authorization, undefined, 'the client\'s key never reaches a backend');
  const log = await waitFor(() => gw.accessLog('/api/chat').at(-1), 2000, 10, 'access log line');
  assert.equal(log.model, 'gpt-3.5-turbo');
  assert.equal(log.upstream_model, 'llama3.2');
  assert.equal(log.stream, true);
  assert.equal(log.completion_tokens, last.eval_count);
  assert.equal(log.prompt_tokens, last.prompt_eval_count);
});

test('POST /api/chat with "stream": false answers one object; alias options go under the client\'s', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['one ', 'two'] });
  const res = await post(gw.url, '/api/chat', chatBody('gpt-4o-mini', { stream: false, options: { temperature: 0.2, num_ctx: 4096 } }), { headers: auth('user') });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const j = await res.json();
  assert.equal(j.model, 'gpt-4o-mini');
  assert.equal(j.message.content, 'one two');
  assert.equal(j.done, true);
  const rec = fake.chats()[0];
  assert.equal(rec.body.model, 'qwen3');
  assert.equal(rec.body.stream, false);
  assert.deepEqual(rec.body.options, { temperature: 0.2, num_ctx: 4096 }, 'the client\'s num_ctx wins over the alias\'s');
  fake.reset();
  const res2 = await post(gw.url, '/api/chat', chatBody('gpt-4o-mini', { stream: false }), { headers: auth('user') });
  assert.equal(res2.status, 200);
  assert.deepEqual(fake.chats()[0].body.options, TEST_ALIASES['gpt-4o*'].options, 'the alias\'s options when the client sent none');
});

test('POST /api/generate streams "response" lines and ends with the done line', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b'] });
  const res = await post(gw.url, '/api/generate', { model: 'gpt-3.5-turbo', prompt: 'say ab' }, { headers: auth('user') });
  assert.equal(res.status, 200);
  const lines = ndjson(await res.text());
  assert.deepEqual(lines.map((l) => l.response), ['a', 'b', '']);
  assert.ok(lines.every((l) => l.model === 'gpt-3.5-turbo'));
  assert.equal(lines.at(-1).done, true);
  assert.ok(Array.isArray(lines.at(-1).context));
  const rec = fake.requestsTo('/api/generate')[0];
  assert.equal(rec.body.model, 'llama3.2');
  assert.equal(rec.body.prompt, 'say ab');
});

test('POST /api/embed and /api/embeddings reach the model behind the alias', needGateway, async () => {
  const { fake, gw } = env;
  const res = await post(gw.url, '/api/embed', { model: 'text-embedding-3-small', input: ['a', 'b'] }, { headers: auth('scoped') });
  assert.equal(res.status, 200);
  const j = await res.json();
  assert.equal(j.model, 'text-embedding-3-small');
  assert.equal(j.embeddings.length, 2);
  assert.ok(j.embeddings.every((v) => v.length > 0 && v.every((x) => typeof x === 'number')));
  assert.equal(fake.requestsTo('/api/embed')[0].body.model, 'nomic-embed-text');
  const legacy = await post(gw.url, '/api/embeddings', { model: 'nomic-embed-text', prompt: 'a' }, { headers: auth('scoped') });
  assert.equal(legacy.status, 200);
  const l = await legacy.json();
  assert.ok(Array.isArray(l.embedding) && l.embedding.length > 0);
  assert.equal(fake.requestsTo('/api/embeddings')[0].body.prompt, 'a');
});

test('POST /api/show: the model renamed on the way in, the answer as Ollama sent it; "name" works too', needGateway, async () => {
  const { fake, gw } = env;
  // Discovery asks /api/show too (for capabilities, with {"model"} only):
  // the test's own requests are the ones that carry its "verbose".
  const ours = () => fake.requestsTo('/api/show').filter((r) => r.body?.verbose === false);
  const res = await post(gw.url, '/api/show', { model: 'gpt-3.5-turbo', verbose: false }, { headers: auth('user') });
  assert.equal(res.status, 200);
  const j = await res.json();
  assert.ok(Array.isArray(j.capabilities));
  assert.equal(typeof j.model_info, 'object');
  assert.equal(ours()[0].body.model, 'llama3.2');
  const byName = await post(gw.url, '/api/show', { name: 'llama3.2', verbose: false }, { headers: auth('user') });
  assert.equal(byName.status, 200);
  await byName.arrayBuffer();
  assert.equal(ours()[1].body.name, 'llama3.2');
  assert.equal(ours().length, 2);
});

test('GET /api/tags lists what the key may use, aliases under their own names with their model\'s details', needGateway, async () => {
  const { fake, gw } = env;
  const all = await (await fetch(`${gw.url}/api/tags`, { headers: auth('user') })).json();
  const names = all.models.map((m) => m.name);
  for (const n of fake.modelNames()) assert.ok(names.includes(n), `backend model ${n} listed`);
  assert.ok(names.includes('gpt-3.5-turbo') && names.includes('text-embedding-3-small'), 'exact aliases listed');
  assert.ok(!names.some((n) => n.includes('*')), 'glob aliases are patterns, not models');
  const alias = all.models.find((m) => m.name === 'gpt-3.5-turbo');
  const target = all.models.find((m) => m.name === 'llama3.2' || m.name === 'llama3.2:latest');
  assert.equal(alias.model, 'gpt-3.5-turbo');
  assert.equal(alias.digest, target.digest, 'the alias carries its model\'s details');
  assert.deepEqual(alias.details, target.details);
  const scoped = await (await fetch(`${gw.url}/api/tags`, { headers: auth('scoped') })).json();
  assert.deepEqual(scoped.models.map((m) => m.name).sort(),
    ['gpt-3.5-turbo', 'nomic-embed-text:latest', 'text-embedding-3-small'], 'only what the scoped key may use');
  assert.equal(fake.requestsTo('/api/tags').filter((r) => r.headers.authorization).length, 0);
});

test('GET /api/ps lists the loaded models (and the aliases that point at them); /api/version and / answer', needGateway, async () => {
  const { fake, gw } = env;
  fake.setLoaded(['llama3.2']);
  const ps = await waitFor(async () => {
    const j = await (await fetch(`${gw.url}/api/ps`, { headers: auth('user') })).json();
    return j.models.length ? j : null;
  }, 5000, 50, 'discovery saw the loaded model');
  const names = ps.models.map((m) => m.name).sort();
  assert.ok(names.includes('gpt-3.5-turbo'));
  assert.ok(names.some((n) => n.startsWith('llama3.2')));
  fake.setLoaded([]);
  const v = await fetch(`${gw.url}/api/version`, { headers: auth('user') });
  assert.deepEqual(await v.json(), { version: '0.33.0' });
  const root = await fetch(`${gw.url}/`, { headers: auth('user') });
  assert.equal(root.status, 200);
  assert.match(root.headers.get('content-type'), /^text\/plain/);
  assert.equal(await root.text(), 'Ollama is running');
  const head = await fetch(`${gw.url}/`, { method: 'HEAD', headers: auth('user') });
  assert.equal(head.status, 200);
});

test('errors come in Ollama\'s shape: no key, wrong scope, unknown model, bad body, wrong method, unknown route', needGateway, async () => {
  const { fake, gw } = env;
  await expectOllamaError(await post(gw.url, '/api/chat', chatBody('llama3.2')), 401, /key/i, 'no key');
  await expectOllamaError(await fetch(`${gw.url}/api/tags`), 401, null, 'no key on tags');
  await expectOllamaError(await post(gw.url, '/api/chat', chatBody('qwen3'), { headers: auth('scoped') }), 403, /qwen3/, 'scope');
  await expectOllamaError(await post(gw.url, '/api/chat', chatBody('no-such-model'), { headers: auth('user') }), 404, /no-such-model/, 'unknown model');
  await expectOllamaError(await post(gw.url, '/api/chat', '{"model":', { headers: auth('user') }), 400, /JSON/, 'malformed JSON');
  await expectOllamaError(await post(gw.url, '/api/chat', { messages: [] }, { headers: auth('user') }), 400, /model is required/, 'no model');
  await expectOllamaError(await post(gw.url, '/api/chat', chatBody('llama3.2', { stream: 'yes' }), { headers: auth('user') }), 400, /stream/, 'stream not a bool');
  const wrongMethod = await fetch(`${gw.url}/api/chat`, { headers: auth('user') });
  assert.equal(wrongMethod.headers.get('allow'), 'POST', 'a 405 says what is allowed');
  await expectOllamaError(wrongMethod, 405, /POST/, 'GET /api/chat');
  await expectOllamaError(await fetch(`${gw.url}/api/nope`, { headers: auth('user') }), 404, /api\/nope/, 'unknown route');
  assert.equal(fake.chats().length, 0, 'none of these reached a backend');
});

test('a NUL escaped in a string is refused whole (cJSON would cut "m\\u0000x" to "m" and serve another model)', needGateway, async () => {
  const { fake, gw } = env;
  const body = '{"model":"llama3.2\\u0000evil","messages":[{"role":"user","content":"hi"}]}';
  await expectOllamaError(await post(gw.url, '/api/chat', body, { headers: auth('user') }), 400, /NUL/, 'native');
  const openai = await post(gw.url, '/v1/chat/completions', body, { headers: auth('user') });
  assert.equal(openai.status, 400);
  assert.match((await openai.json()).error.message, /NUL/);
  const log = await waitFor(() => gw.accessLog('/v1/chat/completions').at(-1), 2000, 10, 'access log');
  assert.equal(log.status, 400);
  assert.equal(fake.chats().length, 0, 'nothing reached the backend');
  // an escaped backslash before "u0000" is ordinary text
  fake.script({ tokens: ['ok'] });
  const fine = await post(gw.url, '/api/chat', '{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"a\\\\u0000b"}]}', { headers: auth('user') });
  assert.equal(fine.status, 200);
  assert.equal((await fine.json()).message.content, 'ok');
  assert.equal(fake.chats()[0].body.messages[0].content, 'a\\u0000b');
});

test('a backend\'s error keeps Ollama\'s status and text, before and after the first line', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 400, error: '"llama3.2" does not support thinking' });
  const r1 = await post(gw.url, '/api/chat', chatBody('llama3.2', { think: true }), { headers: auth('user') });
  await expectOllamaError(r1, 400, /^"llama3\.2" does not support thinking$/, 'backend 400');
  fake.script({ tokens: ['a', 'b', 'c', 'd'], errorAfter: 2, errorMessage: 'an error was encountered while running the model: boom' });
  const r2 = await post(gw.url, '/api/chat', chatBody('llama3.2'), { headers: auth('user') });
  assert.equal(r2.status, 200);
  const lines = ndjson(await r2.text());
  assert.deepEqual(lines.slice(0, 2).map((l) => l.message.content), ['a', 'b']);
  assert.deepEqual(lines.at(-1), { error: 'an error was encountered while running the model: boom' });
  assert.ok(!lines.some((l) => l.done === true), 'no done line after an error');
  fake.script({ tokens: ['a', 'b', 'c'], dropAfter: 1 });
  const r3 = await post(gw.url, '/api/generate', { model: 'llama3.2', prompt: 'x' }, { headers: auth('user') });
  const l3 = ndjson(await r3.text());
  assert.match(l3.at(-1).error, /closed the stream|fake0/, 'a stream cut short ends with an error line');
});

test('a client that leaves a native stream: the backend sees the close within 500 ms', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: Array.from({ length: 400 }, (_, i) => ` t${i}`), delayMs: 20 });
  const ac = new AbortController();
  const res = await post(gw.url, '/api/chat', chatBody('llama3.2'), { headers: auth('user'), signal: ac.signal });
  const reader = res.body.getReader();
  let got = '';
  while ((got.match(/\n/g) ?? []).length < 5) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'stream ended early');
    got += Buffer.from(value).toString();
  }
  const tAbort = performance.now();
  ac.abort();
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 3000, 5, 'the fake saw the gateway close');
  assert.ok(rec.closedAt - tAbort < 500, `closed ${Math.round(rec.closedAt - tAbort)} ms after the client left`);
  assert.equal(rec.finished, false);
});

test('back-pressure on a native stream: a client that reads nothing stops the backend, then gets every line', needGateway, async () => {
  const { fake, gw } = env;
  const N = 1500;
  const pad = 'y'.repeat(32 * 1024);
  const tokens = Array.from({ length: N }, (_, i) => `<${i}>${pad}`);
  fake.script({ tokens });
  const u = new URL(gw.url);
  const res = await new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: '/api/chat', method: 'POST', headers: { 'content-type': 'application/json', ...auth('user') } }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify(chatBody('llama3.2')));
  });
  assert.equal(res.statusCode, 200);
  res.pause();
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 5000);
  // The fake's writes block once the gateway stops reading: its line count
  // stops moving well short of the end.
  let last = -1;
  await waitFor(() => {
    const now = rec.linesWritten;
    const still = now === last && now > 0;
    last = now;
    return still || rec.finished;
  }, 10000, 300, 'the fake stalled');
  assert.ok(!rec.finished && rec.linesWritten < N, `the fake wrote ${rec.linesWritten}/${N} lines to a client that read nothing`);
  const chunks = [];
  res.on('data', (d) => chunks.push(d));
  res.resume();
  await new Promise((r, j) => { res.on('end', r); res.on('error', j); });
  const lines = ndjson(Buffer.concat(chunks).toString());
  assert.equal(lines.length, N + 1);
  for (let i = 0; i < N; i++) if (lines[i].message.content !== tokens[i]) assert.fail(`line ${i} differs`);
  assert.equal(lines[N].done, true);
});

test('model management needs an admin key; an admin pulls (progress streamed), copies and deletes', needGateway, async () => {
  const { fake, gw } = env;
  for (const [method, p, body] of [
    ['POST', '/api/pull', { model: 'tinyllama' }], ['POST', '/api/push', { model: 'llama3.2' }],
    ['POST', '/api/create', { model: 'mine', from: 'llama3.2' }], ['POST', '/api/copy', { source: 'llama3.2', destination: 'x' }],
    ['DELETE', '/api/delete', { model: 'llama3.2' }], ['POST', '/api/blobs/sha256:' + '0'.repeat(64), 'bytes'],
  ]) {
    const res = await fetch(gw.url + p, { method, headers: { 'content-type': 'application/json', ...auth('user') }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    await expectOllamaError(res, 403, /admin key/, `${method} ${p} with an ordinary key`);
  }
  const blobHead = await fetch(`${gw.url}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD', headers: auth('user') });
  assert.equal(blobHead.status, 403);
  assert.equal(fake.requests.filter((r) => r.path !== '/api/tags' && r.path !== '/api/ps' && r.path !== '/api/version').length, 0, 'nothing reached the backend');

  const pull = await post(gw.url, '/api/pull', { model: 'tinyllama' }, { headers: auth('root') });
  assert.equal(pull.status, 200);
  assert.equal(pull.headers.get('content-type'), 'application/x-ndjson');
  const progress = ndjson(await pull.text());
  assert.equal(progress[0].status, 'pulling manifest');
  assert.ok(progress.some((l) => typeof l.completed === 'number' && typeof l.total === 'number'), 'byte progress relayed');
  assert.equal(progress.at(-1).status, 'success');
  await waitFor(async () => {
    const t = await (await fetch(`${gw.url}/api/tags`, { headers: auth('root') })).json();
    return t.models.some((m) => m.name.startsWith('tinyllama'));
  }, 5000, 50, 'the pulled model appears in /api/tags');

  const copy = await post(gw.url, '/api/copy', { source: 'tinyllama', destination: 'tiny2' }, { headers: auth('root') });
  assert.equal(copy.status, 200);
  assert.equal(await copy.text(), '');
  const copyLog = await waitFor(() => gw.accessLog('/api/copy').find((l) => l.key_name === 'root'), 2000, 10, 'access log of the copy');
  assert.equal(copyLog.model, null, 'a copy names no model');
  assert.equal(copyLog.backend, 'fake0');
  assert.equal(copyLog.status, 200);
  assert.equal(copyLog.key_name, 'root');
  const del = await fetch(`${gw.url}/api/delete`, { method: 'DELETE', headers: { 'content-type': 'application/json', ...auth('root') }, body: JSON.stringify({ model: 'tinyllama' }) });
  assert.equal(del.status, 200);
  assert.equal(fake.requestsTo('/api/delete')[0].method, 'DELETE');
  assert.deepEqual(fake.requestsTo('/api/delete')[0].body, { model: 'tinyllama' });
  const gone = await fetch(`${gw.url}/api/delete`, { method: 'DELETE', headers: { 'content-type': 'application/json', ...auth('root') }, body: JSON.stringify({ model: 'tinyllama' }) });
  await expectOllamaError(gone, 404, /not found/, 'deleting it twice');
  await waitFor(async () => {
    const t = await (await fetch(`${gw.url}/api/tags`, { headers: auth('root') })).json();
    return !t.models.some((m) => m.name.startsWith('tinyllama:') || m.name === 'tinyllama');
  }, 5000, 50, 'the deleted model leaves /api/tags');
  assert.ok(fake.requests.every((r) => r.headers.authorization === undefined));
});

/** POST size bytes of a repeated pattern to /api/blobs/<digest>, streamed. */
function uploadBlob(gw, secret, digest, size) {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const u = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: `/api/blobs/${digest}`, method: 'POST', headers: { ...bearer(secret), 'content-length': size } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    let sent = 0;
    const write = () => {
      while (sent < size) {
        const n = Math.min(chunk.length, size - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { req.once('drain', write); return; }
      }
      req.end();
    };
    write();
  });
}

test('a blob far larger than the gateway\'s window streams through: 201, the backend got every byte, memory stays flat', needGateway, async () => {
  const { fake, gw } = env;
  const size = 192 * 1024 * 1024 + 12345;
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  for (let sent = 0; sent < size; sent += chunk.length) h.update(sent + chunk.length <= size ? chunk : chunk.subarray(0, size - sent));
  const digest = `sha256:${h.digest('hex')}`;
  const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))?.[1] ?? 0);
  const before = hwm();
  const r = await uploadBlob(gw, gw.secret('root'), digest, size);
  assert.equal(r.status, 201, r.text);
  const up = fake.blobUploads()[0];
  assert.equal(up.blob.bytes, size);
  assert.equal(up.blob.matched, true);
  const grew = hwm() - before;
  assert.ok(grew < 48 * 1024, `peak RSS grew by ${grew} KiB for a ${size >> 20} MiB upload`);
  const head = await fetch(`${gw.url}/api/blobs/${digest}`, { method: 'HEAD', headers: auth('root') });
  assert.equal(head.status, 200);
  const wrong = await uploadBlob(gw, gw.secret('root'), `sha256:${'1'.repeat(64)}`, 3 << 20);
  assert.equal(wrong.status, 400);
  assert.match(JSON.parse(wrong.text).error, /digest mismatch/);
});

test('several backends: management goes to the backend named by x-ollama-backend or ?backend=; chat fails over before the first line', needGateway, async () => {
  const a = await startFake({});
  const b = await startFake({});
  const gw = await startGateway({
    backends: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }],
    keys: [{ name: 'root', admin: true }],
  });
  try {
    const h = bearer(gw.secret('root'));
    const none = await post(gw.url, '/api/pull', { model: 'tinyllama' }, { headers: h });
    await expectOllamaError(none, 400, /x-ollama-backend.*a, b/, 'no backend named');
    const bad = await post(gw.url, '/api/pull', { model: 'tinyllama' }, { headers: { ...h, 'x-ollama-backend': 'zz' } });
    await expectOllamaError(bad, 400, /zz/, 'unknown backend');
    const toB = await post(gw.url, '/api/pull', { model: 'tinyllama', stream: false }, { headers: { ...h, 'x-ollama-backend': 'b' } });
    assert.deepEqual(await toB.json(), { status: 'success' });
    assert.equal(b.requestsTo('/api/pull').length, 1);
    assert.equal(a.requestsTo('/api/pull').length, 0);
    const toA = await post(gw.url, '/api/pull?backend=a', { model: 'tinyllama', stream: false }, { headers: h });
    assert.equal(toA.status, 200);
    await toA.arrayBuffer();
    assert.equal(a.requestsTo('/api/pull').length, 1);

    // A backend that says 503 before answering: the request goes to the other.
    a.script({ status: 503, error: 'server busy, please try again.  maximum pending requests exceeded' });
    for (let i = 0; i < 4; i++) {
      const ok = await post(gw.url, '/api/chat', chatBody('llama3.2'), { headers: h });
      assert.equal(ok.status, 200);
      assert.equal(ndjson(await ok.text()).at(-1).done, true, 'answered by the other backend');
    }
    assert.ok(a.chats().length >= 1, 'the busy backend was tried');
    assert.equal(b.chats().length, 4);
    b.script({ status: 503, error: 'server busy, please try again.  maximum pending requests exceeded' });
    const both = await post(gw.url, '/api/chat', chatBody('llama3.2', { stream: false }), { headers: h });
    await expectOllamaError(both, 503, /busy/, 'both busy');
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
  }
});

test('"native_api": false turns the native routes off (404) and leaves /v1 alone', needGateway, async () => {
  const fake = await startFake({});
  const gw = await startGateway({ backends: [fake.url], config: { native_api: false } });
  try {
    await expectOllamaError(await post(gw.url, '/api/chat', chatBody('llama3.2')), 404, /native API is off/, 'chat');
    await expectOllamaError(await fetch(`${gw.url}/api/tags`), 404, null, 'tags');
    assert.equal((await fetch(`${gw.url}/`)).status, 404);
    assert.equal((await fetch(`${gw.url}/v1/models`)).status, 200);
    assert.equal(fake.chats().length, 0);
  } finally {
    await gw.stop();
    await fake.close();
  }
});

test('a blob upload that stops moving is cut after limits.idle_stream_timeout_s, whichever side stalls', needGateway, async () => {
  const fake = await startFake({});
  const gw = await startGateway({
    backends: [{ name: 'fake0', url: fake.url }],
    keys: [{ name: 'root', admin: true }],
    config: { limits: { idle_stream_timeout_s: 1 } },
  });
  try {
    // The backend stops reading: the gateway's window fills, the client waits, then gets a 504.
    // (stallMs: the fake reads again after 2 s, and so sees the gateway's close.)
    fake.scriptPath('/api/blobs', { stallAfterBytes: 2 << 20, stallMs: 2000 });
    const t0 = performance.now();
    // (12 MiB: what the backend never reads is read and dropped by the gateway, up
    // to limits.max_body_bytes, so that the client can read the answer.)
    const r = await uploadBlob(gw, gw.secret('root'), `sha256:${'2'.repeat(64)}`, 12 << 20);
    assert.equal(r.status, 504, r.text);
    assert.match(JSON.parse(r.text).error, /no progress/);
    assert.ok(performance.now() - t0 < 10000);
    const rec = fake.blobUploads()[0];
    await waitFor(() => rec.closedAt !== null, 6000, 10, 'the stalled upload to the backend was closed');
    const log = await waitFor(() => gw.accessLog(`/api/blobs/sha256:${'2'.repeat(64)}`)[0], 2000, 10, 'access log');
    assert.equal(log.status, 504);
    assert.equal(log.error, 'upstream_timeout');
    assert.ok(rec.blob.bytes < 12 << 20);

    // The client stops sending: the transfer to the backend is dropped.
    fake.reset();
    const u = new URL(gw.url);
    const req = http.request({ host: u.hostname, port: u.port, path: `/api/blobs/sha256:${'3'.repeat(64)}`, method: 'POST',
      headers: { ...bearer(gw.secret('root')), 'content-length': 8 << 20 } });
    req.on('error', () => {});
    req.write(Buffer.alloc(1 << 20, 1));
    const up = await fake.waitForRequest((x) => x.path.startsWith('/api/blobs/'), 3000);
    await waitFor(() => up.closedAt !== null, 5000, 10, 'the backend transfer of a stalled client was closed');
    req.destroy();
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  } finally {
    await gw.stop();
    await fake.close();
  }
});
