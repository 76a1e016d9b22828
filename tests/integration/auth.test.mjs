// API keys (issue #3): who may call, with which header, what a refusal looks
// like, model scopes, /v1/models filtering, the access log's key fields,
// secrets never logged, and `check`/`serve` refusing unsafe setups
// (DESIGN.md "Keys file", "HTTP endpoints", "Command line").
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  useGateway, needGateway, startGateway, startFake, runGateway, createKey, keyIdOf, bearer, chat, get, jsonOf,
  readSSE, simpleChat, waitFor, expectApiError, TEST_ALIASES,
} from './harness.mjs';

const SCOPE = ['llama3*', 'gpt-3.5-turbo'];

// This file sends many bad keys on purpose: the brute-force guard is off here
// (ratelimit.test.mjs tests it on a gateway of its own).
const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { auth_failures_per_minute: 0 } },
  keys: [{ name: 'full' }, { name: 'scoped', models: SCOPE }],
});

/** Every secret and bad token this file sent, to look for in the logs at the end. */
const sentTokens = new Set();

function key(name) {
  const s = env.gw.secret(name);
  sentTokens.add(s);
  return s;
}

/** A 401 invalid_api_key; asserts the message does not echo the token. */
async function expect401(res, token, what) {
  const { error } = await expectApiError(res, 401, { type: 'invalid_request_error', code: 'invalid_api_key', param: null }, what);
  if (token) {
    assert.ok(!error.message.includes(token), `${what}: the message echoes the key: ${error.message}`);
    const tail = token.slice(-43);
    if (tail.length >= 20) assert.ok(!error.message.includes(tail), `${what}: the message echoes the secret part: ${error.message}`);
  }
  return error;
}

/** A glob (* and ?) → RegExp, for checking /v1/models against a scope. */
function globRe(g) {
  return new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** A well-formed secret whose 43-character part is changed in its last characters. */
function wrongSecretFor(secret) {
  const last = secret.at(-1) === 'A' ? 'B' : 'A';
  return secret.slice(0, -1) + last;
}

function randomToken(alphabet, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

test('/healthz and /readyz need no key', needGateway, async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await get(`${env.gw.url}${p}`);
    assert.equal(r.status, 200, p);
    await r.arrayBuffer();
  }
});

test('no key → 401 invalid_api_key on every API route; nothing reaches the backend', needGateway, async () => {
  const { gw, fake } = env;
  await expect401(await chat(gw.url, simpleChat('llama3.2')), null, 'POST /v1/chat/completions');
  await expect401(await chat(gw.url, simpleChat('llama3.2', { stream: true })), null, 'POST /v1/chat/completions stream');
  await expect401(await get(`${gw.url}/v1/models`), null, 'GET /v1/models');
  await expect401(await get(`${gw.url}/v1/models/llama3.2:latest`), null, 'GET /v1/models/{id}');
  await expect401(await get(`${gw.url}/v1/nope`), null, 'GET /v1/nope (unknown route, no key)');
  // an empty header or a scheme without a token is no key either
  await expect401(await chat(gw.url, simpleChat('llama3.2'), { headers: { authorization: '' } }), null, 'empty Authorization');
  await expect401(await chat(gw.url, simpleChat('llama3.2'), { headers: { authorization: 'Bearer ' } }), null, '"Bearer " alone');
  assert.equal(fake.chats().length, 0, 'a rejected request never reaches the backend');
});

test('a valid key works with Authorization: Bearer, api-key and x-api-key', needGateway, async () => {
  const { gw, fake } = env;
  const s = key('full');
  for (const headers of [{ authorization: `Bearer ${s}` }, { 'api-key': s }, { 'x-api-key': s }]) {
    const r = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo'), { headers }));
    assert.equal(r.status, 200, `${Object.keys(headers)[0]}: ${r.text}`);
    assert.equal(r.json.choices[0].message.content, 'Hello from llama3.2');
    const m = await jsonOf(await get(`${gw.url}/v1/models`, { headers }));
    assert.equal(m.status, 200, `${Object.keys(headers)[0]} on /v1/models: ${m.text}`);
  }
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: bearer(s) }));
  assert.equal(sse.done, true);
  assert.equal(sse.content, 'Hello from llama3.2');
  assert.equal(fake.chats().length, 4);
});

test('the client\'s key is never forwarded to the backend', needGateway, async () => {
  const { gw, fake } = env;
  const s = key('full');
  for (const headers of [bearer(s), { 'api-key': s }, { 'x-api-key': s }]) {
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers }))).status, 200);
  }
  assert.equal(fake.chats().length, 3);
  for (const rec of fake.chats()) {
    for (const h of ['authorization', 'api-key', 'x-api-key']) assert.equal(rec.headers[h], undefined, `${h} sent upstream`);
    assert.ok(!JSON.stringify(rec.headers).includes(s), 'the secret is in the upstream headers');
    assert.ok(!rec.rawBody.includes(s), 'the secret is in the upstream body');
  }
});

test('malformed, unknown and wrong keys → 401 invalid_api_key, with every header; nothing reaches the backend', needGateway, async () => {
  const { gw, fake } = env;
  const good = key('full');
  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const bad = {
    'not a key at all': 'hello',
    'an OpenAI-looking key': `sk-${randomToken(b64, 48)}`,
    'og- prefix, too short': 'og-abc-def',
    'bad id characters': `og-ABCDEFGHIJKL-${randomToken(b64, 43)}`,
    'secret part too short': good.slice(0, -2),
    'secret part too long': `${good}x`,
    'unknown id': `og-${randomToken('abcdefghijklmnopqrstuvwxyz0123456789', 12)}-${randomToken(b64, 43)}`,
    'right id, wrong secret': wrongSecretFor(good),
    'right id, all-different secret': `og-${keyIdOf(good)}-${randomToken(b64, 43)}`,
  };
  for (const [what, token] of Object.entries(bad)) {
    sentTokens.add(token);
    await expect401(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(token) }), token, `${what} (Bearer)`);
    await expect401(await chat(gw.url, simpleChat('llama3.2'), { headers: { 'api-key': token } }), token, `${what} (api-key)`);
    await expect401(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: { 'x-api-key': token } }), token, `${what} (x-api-key)`);
    await expect401(await get(`${gw.url}/v1/models`, { headers: bearer(token) }), token, `${what} (GET /v1/models)`);
  }
  assert.equal(fake.chats().length, 0, 'a rejected request never reaches the backend');
  // the good key still works after all that
  assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(good) }))).status, 200);
});

test('a rejected request with a large body gets its 401 and never reaches the backend', needGateway, async () => {
  const { gw, fake } = env;
  const big = simpleChat('llama3.2');
  big.messages[0].content = 'x'.repeat(2 * 1024 * 1024);
  await expect401(await chat(gw.url, big), null, 'no key, 2 MiB body');
  const token = wrongSecretFor(key('full'));
  sentTokens.add(token);
  await expect401(await chat(gw.url, big, { headers: bearer(token) }), token, 'wrong key, 2 MiB body');
  assert.equal(fake.chats().length, 0);
  // and the same connection pool / server still serves a good request
  assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(key('full')) }))).status, 200);
});

test('unknown route: 401 without a key, 404 with one', needGateway, async () => {
  const { gw } = env;
  await expect401(await get(`${gw.url}/v1/nope`), null, 'GET /v1/nope without a key');
  await expectApiError(await get(`${gw.url}/v1/nope`, { headers: bearer(key('full')) }), 404, {}, 'GET /v1/nope with a key');
});

test('expired, disabled and revoked keys → 401 invalid_api_key; a good key beside them works', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, limits: { auth_failures_per_minute: 0 } },
    keys: [{ name: 'ok' }, { name: 'expired', expires: '2099-12-31' }, { name: 'yesterday', expires: '2099-12-31' },
      { name: 'disabled', disabled: true }, { name: 'revoked', revoked: true }],
    // `key create` refuses a date that is over, so the keys file is edited by hand
    editKeys: (doc) => {
      const day = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
      for (const k of doc.keys) {
        if (k.name === 'expired') k.expires = '2020-01-01';
        if (k.name === 'yesterday') k.expires = day;
      }
    },
  });
  try {
    for (const k of gw.keys) sentTokens.add(k.secret);
    for (const name of ['expired', 'yesterday', 'disabled', 'revoked']) {
      const s = gw.secret(name);
      await expect401(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(s) }), s, `${name} key (Bearer)`);
      await expect401(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: { 'x-api-key': s } }), s, `${name} key (x-api-key, stream)`);
      await expect401(await get(`${gw.url}/v1/models`, { headers: { 'api-key': s } }), s, `${name} key (GET /v1/models)`);
    }
    assert.equal(fake.chats().length, 0, 'nothing reached the backend');
    const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(gw.secret('ok')) }));
    assert.equal(r.status, 200, r.text);
    const all = gw.stdoutRaw.join('\n') + gw.stderr;
    for (const k of gw.keys) assert.ok(!all.includes(k.secret), `the secret of ${k.name} appears in the logs`);
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('scopes: allowed names (alias or backend name) pass; others → 403 model_not_allowed, nothing sent', needGateway, async () => {
  const { gw, fake } = env;
  const s = key('scoped');
  for (const model of ['gpt-3.5-turbo', 'llama3.2', 'llama3.2:latest']) {
    const r = await jsonOf(await chat(gw.url, simpleChat(model), { headers: bearer(s) }));
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    assert.equal(r.json.model, model);
  }
  const sse = await readSSE(await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }), { headers: { 'x-api-key': s } }));
  assert.equal(sse.done, true, 'an allowed stream completes');
  assert.equal(fake.chats().length, 4);
  fake.reset();
  for (const model of ['qwen3', 'qwen3:latest', 'gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small', 'hf.co/org/repo:Q4']) {
    await expectApiError(await chat(gw.url, simpleChat(model), { headers: bearer(s) }), 403,
      { type: 'permission_error', code: 'model_not_allowed', param: 'model' }, `${model} with the scoped key`);
    await expectApiError(await chat(gw.url, simpleChat(model, { stream: true }), { headers: { 'api-key': s } }), 403,
      { type: 'permission_error', code: 'model_not_allowed', param: 'model' }, `${model} stream with the scoped key`);
  }
  assert.equal(fake.chats().length, 0, 'a request outside the scope never reaches the backend');
  // the unscoped key may use them
  for (const model of ['qwen3', 'gpt-4o-mini']) {
    assert.equal((await jsonOf(await chat(gw.url, simpleChat(model), { headers: bearer(key('full')) }))).status, 200, model);
  }
});

test('GET /v1/models lists only what the key may use; /v1/models/{id} outside the scope → 403', needGateway, async () => {
  const { gw } = env;
  const res = await jsonOf(await get(`${gw.url}/v1/models`, { headers: bearer(key('scoped')) }));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.object, 'list');
  const ids = res.json.data.map((m) => m.id);
  const scope = SCOPE.map(globRe);
  for (const id of ids) assert.ok(scope.some((re) => re.test(id)), `${id} listed for a key scoped to ${SCOPE.join(',')}`);
  for (const want of ['gpt-3.5-turbo', 'llama3.2:latest']) assert.ok(ids.includes(want), `${want} in ${JSON.stringify(ids)}`);

  const all = await jsonOf(await get(`${gw.url}/v1/models`, { headers: bearer(key('full')) }));
  assert.equal(all.status, 200);
  const allIds = all.json.data.map((m) => m.id);
  for (const want of ['gpt-3.5-turbo', 'text-embedding-3-small', 'llama3.2:latest', 'qwen3:latest', 'hf.co/org/repo:Q4']) {
    assert.ok(allIds.includes(want), `${want} listed for the unscoped key: ${JSON.stringify(allIds)}`);
  }

  for (const id of ['gpt-3.5-turbo', 'llama3.2:latest']) {
    const r = await jsonOf(await get(`${gw.url}/v1/models/${id}`, { headers: bearer(key('scoped')) }));
    assert.equal(r.status, 200, `${id}: ${r.text}`);
    assert.equal(r.json.id, id);
  }
  for (const id of ['qwen3:latest', 'text-embedding-3-small', 'hf.co/org/repo:Q4']) {
    await expectApiError(await get(`${gw.url}/v1/models/${id}`, { headers: bearer(key('scoped')) }), 403,
      { type: 'permission_error', code: 'model_not_allowed' }, `GET /v1/models/${id} with the scoped key`);
    const r = await jsonOf(await get(`${gw.url}/v1/models/${id}`, { headers: bearer(key('full')) }));
    assert.equal(r.status, 200, `${id} with the unscoped key: ${r.text}`);
  }
});

test('access log: key_id and key_name of the caller, on successes and on a 403', needGateway, async () => {
  const { gw } = env;
  const full = gw.keys.find((k) => k.name === 'full');
  const scoped = gw.keys.find((k) => k.name === 'scoped');
  const cases = [
    ['auth-log-1', chat(gw.url, simpleChat('llama3.2'), { headers: { ...bearer(key('full')), 'x-request-id': 'auth-log-1' } }), full, 200],
    ['auth-log-2', get(`${gw.url}/v1/models`, { headers: { 'x-api-key': key('scoped'), 'x-request-id': 'auth-log-2' } }), scoped, 200],
    ['auth-log-3', chat(gw.url, simpleChat('qwen3'), { headers: { ...bearer(key('scoped')), 'x-request-id': 'auth-log-3' } }), scoped, 403],
  ];
  for (const [rid, p, k, status] of cases) {
    const r = await p;
    assert.equal(r.status, status, rid);
    await r.arrayBuffer();
    const l = await waitFor(() => gw.stdoutLines.find((x) => x.request_id === rid), 3000, 20, `access line ${rid}`);
    assert.equal(l.key_id, k.id, `${rid}: key_id in ${JSON.stringify(l)}`);
    assert.equal(l.key_name, k.name, `${rid}: key_name in ${JSON.stringify(l)}`);
    assert.equal(l.status, status);
  }
  // a refused key: the line exists, and names no other key
  const bad = wrongSecretFor(key('full'));
  sentTokens.add(bad);
  const r = await chat(gw.url, simpleChat('llama3.2'), { headers: { ...bearer(bad), 'x-request-id': 'auth-log-4' } });
  assert.equal(r.status, 401);
  await r.arrayBuffer();
  const l = await waitFor(() => gw.stdoutLines.find((x) => x.request_id === 'auth-log-4'), 3000, 20, 'access line of the 401');
  assert.equal(l.status, 401);
  assert.ok(l.key_id === null || l.key_id === full.id, `key_id of a refused request: ${l.key_id}`);
});

test('no secret, and no hash, ever appears on stdout or stderr', needGateway, async () => {
  const { gw } = env;
  for (const k of gw.keys) sentTokens.add(k.secret);
  // one more request of each kind so that the logs certainly have key lines
  await (await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(key('full')) })).arrayBuffer();
  await waitFor(() => gw.stdoutLines.length > 0, 3000, 20, 'access lines');
  const logs = `${gw.stdoutRaw.join('\n')}\n${gw.stderr}`;
  for (const t of sentTokens) {
    assert.ok(!logs.includes(t), `a key sent to the gateway appears in its output: ${t.slice(0, 8)}…`);
    if (t.length >= 40) assert.ok(!logs.includes(t.slice(-43)), `the secret part of ${t.slice(0, 8)}… appears in the output`);
  }
  const file = JSON.parse(readFileSync(gw.keysPath, 'utf8'));
  for (const rec of file.keys) {
    const hex = String(rec.hash).replace(/^blake2b:/, '');
    assert.ok(hex.length >= 32 && !logs.includes(hex), `the hash of ${rec.name} appears in the output`);
  }
  for (const l of gw.stdoutLines) assert.ok(!('__unparsable' in l), `stdout line is not JSON: ${l.__unparsable}`);
});

// ---------------------------------------------------------------- check and serve refuse unsafe setups

function tmpConfig(config) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-auth-'));
  const configPath = path.join(dir, 'gateway.json');
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return { dir, configPath, keysPath: path.join(dir, 'keys.json'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const BASE = { listen: ['127.0.0.1:1'], backends: [{ name: 'b', url: 'http://127.0.0.1:9' }] };

test('check and serve refuse a group- or world-readable keys file (chmod 600)', needGateway, async () => {
  const t = tmpConfig({ ...BASE });
  try {
    await createKey(t.configPath, 'k');
    const ok = await runGateway(['check', '-c', t.configPath]);
    assert.equal(ok.code, 0, `check with a 0600 keys file: ${ok.stderr}`);
    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
      chmodSync(t.keysPath, mode);
      const c = await runGateway(['check', '-c', t.configPath]);
      assert.equal(c.code, 1, `check with mode ${mode.toString(8)}: exit ${c.code}; stderr: ${c.stderr}`);
      assert.match(c.stderr, /chmod 600/, `check says how to fix mode ${mode.toString(8)}`);
      const s = await runGateway(['serve', '-c', t.configPath]);
      assert.equal(s.code, 1, `serve with mode ${mode.toString(8)}: exit ${s.code} (signal ${s.signal}); stderr: ${s.stderr}`);
      assert.match(s.stderr, /chmod 600/);
      assert.equal(s.stdout, '');
    }
  } finally {
    t.cleanup();
  }
});

test('a missing keys file: check warns and names it; serve starts closed (401) until a key is created', needGateway, async () => {
  const u = tmpConfig({ ...BASE, auth: 'keys', keys_file: 'elsewhere.json' });
  try {
    const c = await runGateway(['check', '-c', u.configPath]);
    assert.equal(c.code, 0, `check: exit ${c.code}; stderr: ${c.stderr}`);
    assert.match(c.stderr, /elsewhere\.json/, `the warning names the file: ${c.stderr}`);
    assert.match(c.stderr, /key (create|init)/, `check says how to create a key: ${c.stderr}`);
  } finally {
    u.cleanup();
  }
  // A service that starts before its first key exists must not be open meanwhile.
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url], config: { aliases: TEST_ALIASES }, keys: [] });
  try {
    assert.equal(existsSync(gw.keysPath), false);
    await waitFor(() => /key (create|init)/.test(gw.stderr), 5000, 20, 'the start warning');
    await expect401(await chat(gw.url, simpleChat('llama3.2')), null, 'no key, no keys file');
    await expect401(await get(`${gw.url}/v1/models`), null, 'GET /v1/models, no keys file');
    // a key created while it runs is in force without a signal (inotify)
    const from = gw.stderr.length;
    const secret = await createKey(gw.configPath, 'first');
    sentTokens.add(secret);
    // the watch reloads the keys and says so
    await gw.waitForStderr(/reload \d+ in force: keys from /, 5000, from);
    const first = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(secret) }));
    assert.equal(first.status, 200, `the first key picked up: ${first.text}`);
    assert.equal(fake.chats().length, 1, 'only the authenticated request reached the backend');
  } finally {
    await gw.stop();
    await fake.close();
  }
});

test('auth "none" on a non-loopback address is refused unless allow_unauthenticated_public', needGateway, async () => {
  // `check` only: nothing here ever binds a non-loopback address.
  const pub = tmpConfig({ ...BASE, listen: ['0.0.0.0:18181'], auth: 'none' });
  const pub2 = tmpConfig({ ...BASE, listen: ['127.0.0.1:18182', '0.0.0.0:18181'], auth: 'none' });
  const allowed = tmpConfig({ ...BASE, listen: ['0.0.0.0:18181'], auth: 'none', allow_unauthenticated_public: true });
  const loop = tmpConfig({ ...BASE, listen: ['127.0.0.1:18181', '[::1]:18181'], auth: 'none' });
  try {
    for (const t of [pub, pub2]) {
      const r = await runGateway(['check', '-c', t.configPath]);
      assert.equal(r.code, 1, `auth none on 0.0.0.0: exit ${r.code}; stderr: ${r.stderr}`);
      assert.match(r.stderr, /auth/, r.stderr);
    }
    const a = await runGateway(['check', '-c', allowed.configPath]);
    assert.equal(a.code, 0, `with allow_unauthenticated_public: ${a.stderr}`);
    const l = await runGateway(['check', '-c', loop.configPath]);
    assert.equal(l.code, 0, `auth none on loopback only: ${l.stderr}`);
  } finally {
    for (const t of [pub, pub2, allowed, loop]) t.cleanup();
  }
});
