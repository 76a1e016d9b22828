// Shared limits (issue #13): several gateway instances pointed at one real
// redis-server draw on one allowance per key: rpm and tpm are exact across
// instances, the x-ratelimit-* headers count globally, and when Redis is
// away (killed, stopped, restarted empty) requests go on under each
// instance's local limits, with one warning per outage and an info line
// when it is back.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  needGateway, startGateway, startFake, bearer, chat, jsonOf, simpleChat, waitFor, runGateway, sleep, httpRequest,
} from './harness.mjs';
import { startRedis, haveRedis } from './redis_server.mjs';

const redisOk = await haveRedis();
const need = redisOk ? needGateway : { skip: 'redis-server is not installed (deploy/install-deps.sh --test)' };

let redis;
let fake;
const gws = []; // [A, B, C]: A made the keys, B and C read A's keys file

// lease_s 2: a dead replica's places in flight come back within 2 s
const sharedConf = () => ({ redis: redis.url, prefix: 'ogwtest:', timeout_ms: 100, lease_s: 2 });

before(async () => {
  if (need.skip) return;
  redis = await startRedis();
  fake = await startFake({});
  const backends = [{ name: 'fake0', url: fake.url }];
  const a = await startGateway({
    backends,
    config: { workers: 2, limits: { auth_failures_per_minute: 3, auth_guard_exempt: [] }, shared: sharedConf() },
    keys: [
      { name: 'rpm10', rpm: 10 },
      { name: 'tpm100', tpm: 100 },
      { name: 'outage', rpm: 3 },
      { name: 'resumed', rpm: 4 },
      { name: 'slow', rpm: 2 },
      { name: 'flushed', rpm: 5 },
      { name: 'inflight2', maxInflight: 2 },
      { name: 'nolimits' },
      { name: 'victim' },
      { name: 'paused' },
      { name: 'lease2', maxInflight: 2 },
    ],
  });
  gws.push(a);
  for (let i = 0; i < 2; i++) {
    gws.push(await startGateway({
      backends,
      config: {
        workers: 2, auth: 'keys', keys_file: a.keysPath,
        limits: { auth_failures_per_minute: 3, auth_guard_exempt: [] }, shared: sharedConf(),
      },
    }));
  }
  // every instance's workers are connected before the first request
  for (const g of gws) await g.waitForStderr(/shared limits: connected to Redis/, 10000);
  await allConnected();
});

after(async () => {
  // A was killed by a test: its stop() only cleans up; the others must exit cleanly
  const codes = [];
  for (const g of gws.slice().reverse()) codes.unshift(await g.stop());
  if (redisOk) assert.deepEqual(codes.slice(1), [0, 0], `exit codes ${codes}\n${gws.map((g) => g.stderr).join('\n')}`);
  if (fake) await fake.close();
  if (redis) await redis.stop();
});

beforeEach(() => { fake?.reset(); });

/** Wait until Redis sees every worker's connection (3 instances, 2 workers each). */
async function allConnected() { // (only before the last tests kill an instance)
  await waitFor(async () => {
    const list = await redis.cli('CLIENT', 'LIST');
    return list.split('\n').filter((l) => !/cmd=client/.test(l)).length >= 6;
  }, 15000, 50, 'six gateway connections in CLIENT LIST');
}

async function cachedScripts() {
  const m = (await redis.cli('INFO', 'memory')).match(/number_of_cached_scripts:(\d+)/);
  return Number(m[1]);
}

const h = (name) => bearer(gws[0].secret(name));
const idOf = (name) => gws[0].keys.find((k) => k.name === name).id;

test('rpm 10 across three instances: exactly 10 pass, remaining counts down globally', need, async () => {
  const results = [];
  for (let i = 0; i < 15; i++) {
    const g = gws[i % 3];
    const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('rpm10') }));
    results.push(r);
  }
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 10, `statuses: ${results.map((r) => r.status).join(',')}`);
  assert.equal(refused.length, 5);
  // the first ten pass, in order, whichever instance took them
  assert.deepEqual(results.slice(0, 10).map((r) => r.status), Array(10).fill(200));
  assert.deepEqual(ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))),
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 'one bucket for all instances');
  for (const r of ok) assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
  for (const r of refused) {
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    assert.match(r.json.error.message, /on requests/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
  assert.equal(fake.chats().length, 10, 'refused requests never reach the backend');
  const h1 = await redis.cli('HGET', `ogwtest:rl:${idOf('rpm10')}`, 'rn');
  assert.equal(h1, '10', 'the bucket lives in Redis under the prefix');
});

test('tpm 100 across instances: tokens charged on one instance count on the others', need, async () => {
  fake.script({ tokens: ['a', 'b'], metrics: { prompt_eval_count: 60, eval_count: 10 } });
  const key = `ogwtest:rl:${idOf('tpm100')}`;
  const r1 = await jsonOf(await chat(gws[0].url, simpleChat('llama3.2'), { headers: h('tpm100') }));
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r1.headers.get('x-ratelimit-remaining-tokens'), '100');
  // settled after the answer, without waiting: wait for Redis to have it
  await waitFor(async () => Number(await redis.cli('HGET', key, 'tl')) <= 30 * 60000, 5000, 20, 'the 70 tokens charged in Redis');
  const r2 = await jsonOf(await chat(gws[1].url, simpleChat('llama3.2'), { headers: h('tpm100') }));
  assert.equal(r2.status, 200, r2.text);
  const rem = Number(r2.headers.get('x-ratelimit-remaining-tokens'));
  // 100 - 70, plus what refilled meanwhile (1.7 tokens a second; slow builds take seconds)
  assert.ok(rem >= 30 && rem <= 40, `remaining tokens on the second instance: ${rem}`);
  await waitFor(async () => Number(await redis.cli('HGET', key, 'tl')) < 0, 5000, 20, 'the second 70 tokens charged');
  const r3 = await jsonOf(await chat(gws[2].url, simpleChat('llama3.2'), { headers: h('tpm100') }));
  assert.equal(r3.status, 429, r3.text);
  assert.match(r3.json.error.message, /on tokens/);
  assert.equal(r3.headers.get('x-ratelimit-remaining-tokens'), '0');
  assert.equal(fake.chats().length, 2);
});

test('Redis stopped (no answers): requests go on under local limits after the timeout', need, async () => {
  const from = gws.map((g) => g.stderr.length);
  redis.pause();
  try {
    const t0 = performance.now();
    const r = await jsonOf(await chat(gws[0].url, simpleChat('llama3.2'), { headers: h('slow') }));
    const took = performance.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '2');
    assert.ok(took < 3000, `answered in ${took.toFixed(0)} ms though Redis is silent`);
    await gws[0].waitForStderr(/shared limits: Redis at .* is away \(no answer within shared.timeout_ms, 100 ms/, 5000, from[0]);
    // local limits now: 2 per instance, not unlimited
    const r2 = await jsonOf(await chat(gws[0].url, simpleChat('llama3.2'), { headers: h('slow') }));
    const r3 = await jsonOf(await chat(gws[0].url, simpleChat('llama3.2'), { headers: h('slow') }));
    assert.deepEqual([r2.status, r3.status], [200, 429], 'the local rpm 2 holds while Redis is away');
  } finally {
    redis.resume();
  }
  await gws[0].waitForStderr(/shared limits: Redis at .* is back/, 10000, from[0]);
});

test('Redis killed mid-run: local limits, one warning per outage; restarted empty: sharing resumes', need, async () => {
  const from = gws.map((g) => g.stderr.length);
  await redis.kill();
  for (let i = 0; i < 2; i++) await gws[i].waitForStderr(/shared limits: Redis at .* is away/, 5000, from[i]);
  // each instance applies rpm 3 on its own: 3 + 3 pass, never all, never none
  const statuses = [[], []];
  for (let i = 0; i < 4; i++) {
    for (let g = 0; g < 2; g++) {
      const r = await jsonOf(await chat(gws[g].url, simpleChat('llama3.2'), { headers: h('outage') }));
      statuses[g].push(r.status);
    }
  }
  assert.deepEqual(statuses, [[200, 200, 200, 429], [200, 200, 200, 429]]);
  assert.equal(fake.chats().length, 6);
  // reconnect attempts go on (backoff) without another warning
  await sleep(1000);
  for (let i = 0; i < 3; i++) {
    const warnings = gws[i].stderr.slice(from[i]).match(/is away/g) ?? [];
    assert.equal(warnings.length, 1, `instance ${i}: one warning per outage\n${gws[i].stderr.slice(from[i])}`);
  }
  redis = await redis.restart();
  for (let i = 0; i < 3; i++) await gws[i].waitForStderr(/shared limits: Redis at .* is back/, 15000, from[i]);
  // every worker of every instance has its own connection: all are back
  await allConnected();
  const results = [];
  for (let i = 0; i < 9; i++) {
    const r = await jsonOf(await chat(gws[i % 3].url, simpleChat('llama3.2'), { headers: h('resumed') }));
    results.push(r.status);
  }
  // a worker still in its backoff answers locally (4 per instance), so more
  // than 4 would pass; exactly 4 means every check went to Redis
  assert.deepEqual(results, [200, 200, 200, 200, 429, 429, 429, 429, 429]);
});

test('scripts flushed on the server (NOSCRIPT): loaded again, sharing goes on', need, async () => {
  assert.ok(await cachedScripts() >= 1, 'the scripts were loaded');
  assert.equal((await redis.cli('SCRIPT', 'FLUSH')), 'OK');
  assert.equal(await cachedScripts(), 0);
  const results = [];
  for (let i = 0; i < 12; i++) {
    const r = await jsonOf(await chat(gws[i % 3].url, simpleChat('llama3.2'), { headers: h('flushed') }));
    results.push(r.status);
  }
  // a check that meets NOSCRIPT is sent again with the script's text: still exact
  assert.deepEqual(results, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
  assert.ok(await cachedScripts() >= 1, 'the scripts are loaded again');
});

/** A request from another loopback address (the guard counts per address). */
function fromAddress(local, g, pathname, opts = {}) {
  return httpRequest(g.url, pathname, { ...opts, localAddress: local, timeoutMs: 10000 });
}

test('brute-force guard across instances: failures spread over three instances block the address on all', need, async () => {
  // (loopback is exempt by default: these gateways set limits.auth_guard_exempt to [])
  const bad = bearer('og-aaaaaaaaaaaa-' + 'x'.repeat(43));
  const from = gws.map((g) => g.stderr.length);
  // one failure per instance: no instance reaches the limit (3) on its own
  const r1 = await fromAddress('127.0.0.3', gws[0], '/v1/models', { headers: bad });
  const r2 = await fromAddress('127.0.0.3', gws[1], '/v1/models', { headers: bad });
  assert.deepEqual([r1.status, r2.status], [401, 401]);
  const r3 = await fromAddress('127.0.0.3', gws[2], '/v1/models', { headers: bad });
  assert.equal(r3.status, 429, `the third failure, counted across instances, blocks: ${r3.text}`);
  assert.equal(r3.headers['retry-after'], '60');
  assert.match(r3.json.error.message, /Too many failed authentication attempts/);
  await gws[2].waitForStderr(/failed too often from one address, counted across replicas: refused for 60 s/, 5000, from[2]);
  // the address is refused on the others, even with a valid key
  const ok = await fromAddress('127.0.0.3', gws[0], '/v1/chat/completions', {
    method: 'POST', headers: h('nolimits'), body: simpleChat('llama3.2'),
  });
  assert.equal(ok.status, 429, ok.text);
  assert.match(ok.json.error.message, /Too many failed authentication attempts/);
  assert.ok(Number(ok.headers['retry-after']) >= 58 && Number(ok.headers['retry-after']) <= 60);
  assert.equal(ok.headers['x-ratelimit-limit-requests'], undefined);
  const again = await fromAddress('127.0.0.3', gws[1], '/v1/models', { headers: bad });
  assert.equal(again.status, 429);
  // another address is not affected
  const other = await fromAddress('127.0.0.4', gws[1], '/v1/models', { headers: h('nolimits') });
  assert.equal(other.status, 200, other.text);
  assert.equal(fake.chats().length, 0);
});

test('revoke, disable, enable on one replica: another with its own (old) keys file follows within a second', need, async (t) => {
  // D reads its own copy of the keys file, which nobody changes
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-shared-d-'));
  const own = path.join(dir, 'keys.json');
  copyFileSync(gws[0].keysPath, own);
  chmodSync(own, 0o600);
  const d = await startGateway({
    backends: [{ name: 'fake0', url: fake.url }],
    config: { workers: 2, auth: 'keys', keys_file: own, limits: { auth_failures_per_minute: 0 }, shared: sharedConf() },
  });
  try {
    await d.waitForStderr(/shared limits: connected to Redis/, 10000);
    await waitFor(async () => (await redis.cli('CLIENT', 'LIST')).split('\n').length >= 9, 10000, 50, "D's two connections");
    const ask = async (name) => jsonOf(await chat(d.url, simpleChat('llama3.2'), { headers: h(name) }));
    assert.equal((await ask('victim')).status, 200);
    assert.equal((await ask('paused')).status, 200);
    const timeToRefusal = async (name, re) => {
      const t0 = performance.now();
      let r;
      await waitFor(async () => { r = await ask(name); return r.status === 401; }, 5000, 20, `${name} refused by D`);
      assert.match(r.json.error.message, re);
      assert.equal(r.json.error.code, 'invalid_api_key');
      return performance.now() - t0;
    };
    const cmd = async (verb, name) => {
      const r = await runGateway(['key', verb, idOf(name), '-c', gws[0].configPath]);
      assert.equal(r.code, 0, r.stderr);
    };
    await cmd('revoke', 'victim');
    const tRevoke = await timeToRefusal('victim', new RegExp(`og-${idOf('victim')}-\\*\\*\\* has been revoked`));
    await cmd('disable', 'paused');
    const tDisable = await timeToRefusal('paused', /is disabled/);
    t.diagnostic(`refused ${tRevoke.toFixed(0)} ms after revoke, ${tDisable.toFixed(0)} ms after disable`);
    assert.ok(tRevoke < 1500 && tDisable < 1500, `refused ${tRevoke.toFixed(0)} and ${tDisable.toFixed(0)} ms after the command`);
    await gws[0].waitForStderr(new RegExp(`told Redis that key ${idOf('paused')} is disabled`), 5000);
    await cmd('enable', 'paused');
    await waitFor(async () => (await ask('paused')).status === 200, 5000, 20, 'paused usable again on D');
    assert.equal((await ask('victim')).status, 401, 'still revoked');
    assert.equal(await redis.cli('HGET', 'ogwtest:keys', idOf('victim')), 'revoked');
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Start a chat that the fake never answers; returns {abort, done}. */
function hangingChat(g, keyName) {
  const ac = new AbortController();
  const done = chat(g.url, simpleChat('llama3.2'), { headers: h(keyName), signal: ac.signal })
    .then((r) => r.status, () => 'aborted');
  return { abort: () => ac.abort(), done };
}

const leases = (name) => redis.cli('ZCARD', `ogwtest:if:${idOf(name)}`).then(Number);

test('max_inflight 2 across instances: a third is refused anywhere; a place freed on one is taken on another', need, async () => {
  fake.script({ hang: true });
  const a1 = hangingChat(gws[0], 'inflight2');
  const a2 = hangingChat(gws[0], 'inflight2');
  await waitFor(() => fake.chats().length === 2, 5000, 20, 'two requests at the backend');
  assert.equal(await leases('inflight2'), 2);
  for (const g of [gws[0], gws[1], gws[2]]) {
    const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('inflight2') }));
    assert.equal(r.status, 429, r.text);
    assert.match(r.json.error.message, /on concurrent requests/);
    assert.equal(r.headers.get('retry-after'), '1');
  }
  // held longer than the lease (2 s): renewed, so still held
  await sleep(2500);
  const late = await jsonOf(await chat(gws[1].url, simpleChat('llama3.2'), { headers: h('inflight2') }));
  assert.equal(late.status, 429, 'leases are renewed while their requests run');
  a1.abort();
  assert.equal(await a1.done, 'aborted');
  await waitFor(async () => (await leases('inflight2')) === 1, 5000, 20, 'the place given back');
  const c1 = hangingChat(gws[2], 'inflight2');
  await waitFor(() => fake.chats().length === 3, 5000, 20, 'the freed place taken on another instance');
  a2.abort();
  c1.abort();
  await Promise.all([a2.done, c1.done]);
  await waitFor(async () => (await leases('inflight2')) === 0, 5000, 20, 'every place given back');
  assert.equal(fake.chats().length, 3, 'refused requests never reach the backend');
});

test('a replica killed with places in flight: they come back after the lease', need, async () => {
  fake.script({ hang: true });
  const held = [hangingChat(gws[0], 'lease2'), hangingChat(gws[0], 'lease2')];
  await waitFor(() => fake.chats().length === 2, 5000, 20, 'two requests at the backend');
  await gws[0].kill();
  const killedAt = performance.now();
  await Promise.all(held.map((x) => x.done));
  const first = await jsonOf(await chat(gws[1].url, simpleChat('llama3.2'), { headers: h('lease2') }));
  assert.equal(first.status, 429, 'the dead replica still holds its places');
  fake.script({ tokens: ['ok'] });
  let status = 429;
  let waited = 0;
  for (let i = 0; i < 40 && status === 429; i++) {
    await sleep(200);
    const r = await jsonOf(await chat(gws[1 + (i % 2)].url, simpleChat('llama3.2'), { headers: h('lease2') }));
    status = r.status;
    waited = performance.now() - killedAt;
  }
  assert.equal(status, 200, 'a place came back');
  // renewed every third of the lease (at a tick, up to 250 ms late): it ended between
  // about half of it and all of it after the kill, then a probe every 200 ms
  assert.ok(waited >= 1000 && waited < 5000, `came back ${waited.toFixed(0)} ms after the kill`);
});

test('SIGHUP with another Redis: the workers reconnect to it', need, async () => {
  const g = gws[1];
  const other = await startRedis();
  try {
    const from = g.stderr.length;
    const config = { ...g.config, shared: { ...sharedConf(), redis: other.url } };
    writeFileSync(g.configPath, `${JSON.stringify(config, null, 2)}\n`);
    g.proc.kill('SIGHUP');
    await g.waitForStderr(new RegExp(`"shared" changed; reconnecting to 127\\.0\\.0\\.1:${other.port}/0`), 5000, from);
    await g.waitForStderr(new RegExp(`connected to Redis at 127\\.0\\.0\\.1:${other.port}/0`), 5000, from);
    await waitFor(async () => (await other.cli('CLIENT', 'LIST')).split('\n').length >= 3, 5000, 50, "both workers' connections");
    // rpm10 is spent in the first Redis; the second starts it full
    const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('rpm10') }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '9');
    assert.equal(await other.cli('HGET', `ogwtest:rl:${idOf('rpm10')}`, 'rn'), '10');
  } finally {
    await other.stop();
  }
});

test('check: the shared section is validated', needGateway, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-shared-check-'));
  const run = async (shared, files = {}) => {
    for (const [n, t] of Object.entries(files)) writeFileSync(path.join(dir, n), t, { mode: 0o600 });
    const cfg = path.join(dir, 'gateway.json');
    writeFileSync(cfg, JSON.stringify({ auth: 'none', backends: [{ url: 'http://127.0.0.1:11434' }], shared }));
    return runGateway(['check', '-c', cfg]);
  };
  try {
    let r = await run({ redis: 'redis://127.0.0.1:6379/0', prefix: 'x:' });
    assert.equal(r.code, 0, r.stderr);
    r = await run({ redis: 'http://127.0.0.1:6379' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /shared\.redis: "http:\/\/127\.0\.0\.1:6379" is not a Redis address/);
    r = await run({ redis: 'redis://:s3cret@127.0.0.1:99999/0' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /port that is not a number from 1 to 65535/);
    assert.doesNotMatch(r.stderr, /s3cret/, 'the password is never echoed');
    r = await run({ redis: 'redis://:pw@127.0.0.1:6379', password_file: 'pass' }, { pass: 'other\n' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /keep one/);
    r = await run({ redis: 'rediss://127.0.0.1:6379' });
    assert.match(r.stderr, /TLS/);
    r = await run({ prefix: 'x' });
    assert.match(r.stderr, /shared.*redis/);
    r = await run({ redis: 'unix:/run/redis.sock', timeout_ms: 0 });
    assert.match(r.stderr, /timeout_ms/);
    r = await run({ redis: 'redis://127.0.0.1', password_file: 'missing' });
    assert.match(r.stderr, /password_file.*cannot open/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
after(() => { if (process.env.SHOW_STDERR) for (const g of gws) console.log(g.stderr); });
