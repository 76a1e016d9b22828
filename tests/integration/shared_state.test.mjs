// Shared limits, what the operator sees (issue #13): Redis's state as
// metrics and on the status page (up, then killed: 0 and one outage, checks
// judged locally counted, restarted: 1 again), exactly; a key revoked while
// Redis is away reaches the other replica once Redis is back; each key's
// usage totals over both replicas, read from Redis by each one's metrics.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, copyFileSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  needGateway, startGateway, startFake, freePort, bearer, chat, jsonOf, simpleChat, waitFor, get, runGateway,
} from './harness.mjs';
import { startRedis, haveRedis } from './redis_server.mjs';

const redisOk = await haveRedis();
const need = redisOk ? { ...needGateway, timeout: 60000 }
  : { skip: 'redis-server is not installed (deploy/install-deps.sh --test)' };

let redis;
let fake;
const gws = []; // [A, B]: B reads its own copy of A's keys file, which nobody changes
let dir;

const sharedConf = () => ({ redis: redis.url, prefix: 'ogwstate:', timeout_ms: 200 });

before(async () => {
  if (need.skip) return;
  redis = await startRedis();
  fake = await startFake({});
  const backends = [{ name: 'fake0', url: fake.url }];
  const mports = [await freePort(), await freePort()];
  gws.push(await startGateway({
    backends,
    config: { workers: 2, metrics: { listen: `127.0.0.1:${mports[0]}` }, shared: sharedConf() },
    keys: [{ name: 'k1', rpm: 100 }, { name: 'revoked-away' }, { name: 'fleet' }],
  }));
  dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-shared-state-'));
  const own = path.join(dir, 'keys.json');
  copyFileSync(gws[0].keysPath, own);
  chmodSync(own, 0o600);
  gws.push(await startGateway({
    backends,
    config: {
      workers: 2, auth: 'keys', keys_file: own,
      metrics: { listen: `127.0.0.1:${mports[1]}` }, shared: sharedConf(),
    },
  }));
  gws.forEach((g, i) => { g.murl = `http://127.0.0.1:${mports[i]}`; });
  for (const g of gws) await g.waitForStderr(/shared limits: connected to Redis/, 10000);
});

after(async () => {
  const codes = [];
  for (const g of gws) codes.push(await g.stop());
  if (fake) await fake.close();
  if (redis) await redis.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (redisOk) assert.deepEqual(codes, [0, 0], gws.map((g) => g.stderr).join('\n'));
});

beforeEach(() => { fake?.reset(); });

const h = (name) => bearer(gws[0].secret(name));

/** The samples of a scrape: Map('name{a="x",b="y"}' as written) → number. */
async function scrape(g) {
  const r = await get(`${g.murl}/metrics`);
  assert.equal(r.status, 200);
  const samples = new Map();
  for (const line of (await r.text()).split('\n')) {
    const m = line.match(/^([a-z_]+(?:\{.*\})?) (\S+)$/);
    if (m) samples.set(m[1], Number(m[2]));
  }
  return samples;
}

/** A scrape once every request so far is counted (in flight 0). */
async function settled(g) {
  return waitFor(async () => {
    const s = await scrape(g);
    return s.get('ollama_gateway_inflight_requests') === 0 ? s : null;
  }, 10000, 20, 'every request counted');
}

const shared = (s) => [
  s.get('ollama_gateway_shared_redis_up'), s.get('ollama_gateway_shared_redis_connections'),
  s.get('ollama_gateway_shared_redis_outages_total'), s.get('ollama_gateway_shared_fallbacks_total'),
];

async function statusOf(g) {
  const r = await get(`${g.murl}/status.json`);
  assert.equal(r.status, 200);
  return r.json();
}

test("Redis's state: up; killed: 0, one outage, local checks counted; restarted: up again", need, async () => {
  const g = gws[0];
  // both workers connected: up 1, nothing fell back
  await waitFor(async () => (await scrape(g)).get('ollama_gateway_shared_redis_connections') === 2, 10000, 20, 'two connections');
  const ok = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('k1') }));
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(shared(await settled(g)), [1, 2, 0, 0]);
  const st0 = await statusOf(g);
  assert.deepEqual(st0.shared, { redis: redis.url.replace('redis://', ''), up: true, connections: 2, outages: 0, fallbacks: 0 });

  const from = g.stderr.length;
  await redis.kill();
  await g.waitForStderr(/shared limits: Redis at .* is away/, 5000, from);
  for (let i = 0; i < 3; i++) {
    const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('k1') }));
    assert.equal(r.status, 200, r.text);
  }
  assert.deepEqual(shared(await settled(g)), [0, 0, 1, 3], 'down, one outage, three checks judged locally');
  const st1 = await statusOf(g);
  assert.deepEqual([st1.shared.up, st1.shared.outages, st1.shared.fallbacks], [false, 1, 3]);

  redis = await redis.restart();
  await g.waitForStderr(/shared limits: Redis at .* is back/, 15000, from);
  await waitFor(async () => (await scrape(g)).get('ollama_gateway_shared_redis_up') === 1, 15000, 50, 'up again');
  const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('k1') }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(shared(await settled(g)), [1, 2, 1, 3], 'the outage counted once; Redis judged again');
  const warnings = g.stderr.slice(from).match(/is away/g) ?? [];
  assert.equal(warnings.length, 1);
  // B saw the same outage, and counted it once too
  await waitFor(async () => (await scrape(gws[1])).get('ollama_gateway_shared_redis_up') === 1, 15000, 50, 'B up again');
  assert.equal((await scrape(gws[1])).get('ollama_gateway_shared_redis_outages_total'), 1);
});

test('a key revoked while Redis is away: told when Redis is back, the other replica refuses it', need, async (t) => {
  const [a, b] = gws;
  const id = a.keys.find((k) => k.name === 'revoked-away').id;
  const askB = async () => jsonOf(await chat(b.url, simpleChat('llama3.2'), { headers: h('revoked-away') }));
  assert.equal((await askB()).status, 200);
  const from = a.stderr.length;
  await redis.kill();
  const r = await runGateway(['key', 'revoke', id, '-c', a.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await a.waitForStderr(/cannot reach Redis at .* to share key states \(.*\); they are told when it answers/, 10000, from);
  // B's own file still has the key, and Redis cannot say otherwise
  assert.equal((await askB()).status, 200, 'B cannot know yet');
  redis = await redis.restart(); // empty
  await a.waitForStderr(new RegExp(`told Redis that key ${id} is revoked`), 10000, from);
  const told = performance.now();
  assert.equal(await redis.cli('HGET', 'ogwstate:keys', id), 'revoked');
  let last;
  await waitFor(async () => { last = await askB(); return last.status === 401; }, 15000, 50, 'B refuses the key');
  assert.match(last.json.error.message, new RegExp(`og-${id}-\\*\\*\\* has been revoked`));
  t.diagnostic(`B refused it ${(performance.now() - told).toFixed(0)} ms after A told Redis`);
  // told once: no more retries
  const tells = a.stderr.slice(from).match(new RegExp(`told Redis that key ${id}`, 'g'));
  assert.equal(tells.length, 1);
});

test("the fleet's usage totals: traffic through both replicas, each one's /metrics and /status.json show the sum", need, async () => {
  const [a, b] = gws;
  fake.script({ tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 7, eval_count: 3 } });
  const id = a.keys.find((k) => k.name === 'fleet').id;
  for (const g of [a, a, b, b, b]) {
    const r = await jsonOf(await chat(g.url, simpleChat('llama3.2'), { headers: h('fleet') }));
    assert.equal(r.status, 200, r.text);
  }
  // added when each request ends, without waiting: wait for Redis to have all five
  await waitFor(async () => (await redis.cli('HGET', `ogwstate:use:${id}`, 'requests')) === '5', 10000, 20, 'five requests in Redis');
  const want = [5, 35, 15];
  for (const [g, own] of [[a, 2], [b, 3]]) {
    const s = await settled(g);
    assert.deepEqual([
      s.get('ollama_gateway_fleet_key_requests_total{key="fleet"}'),
      s.get('ollama_gateway_fleet_tokens_total{key="fleet",kind="prompt"}'),
      s.get('ollama_gateway_fleet_tokens_total{key="fleet",kind="completion"}'),
    ], want, `fleet totals on ${g === a ? 'A' : 'B'}`);
    // its own counts stay its own
    assert.equal(s.get('ollama_gateway_key_requests_total{key="fleet"}'), own);
    const k = (await statusOf(g)).keys.find((x) => x.name === 'fleet');
    assert.deepEqual(k.fleet, { requests: 5, prompt_tokens: 35, completion_tokens: 15 });
    assert.equal(k.requests, own);
  }
  assert.equal(fake.chats().length, 5);
  // the new families pass Prometheus's own check (Debian's prometheus package)
  if (spawnSync('promtool', ['--version']).status === 0) {
    const text = await (await get(`${a.murl}/metrics`)).text();
    assert.match(text, /ollama_gateway_shared_redis_up 1\n/);
    const out = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(out.status, 0, `promtool check metrics:\n${out.stdout}${out.stderr}`);
  }
});
