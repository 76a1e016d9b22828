// Shared limits, what the operator sees (issue #13): Redis's state as
// metrics and on the status page (up, then killed: 0 and one outage, checks
// judged locally counted, restarted: 1 again), exactly.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  needGateway, startGateway, startFake, freePort, bearer, chat, jsonOf, simpleChat, waitFor, get,
} from './harness.mjs';
import { startRedis, haveRedis } from './redis_server.mjs';

const redisOk = await haveRedis();
const need = redisOk ? { ...needGateway, timeout: 60000 }
  : { skip: 'redis-server is not installed (deploy/install-deps.sh --test)' };

let redis;
let fake;
const gws = []; // [A, B]: B reads A's keys file

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
    keys: [{ name: 'k1', rpm: 100 }],
  }));
  gws.push(await startGateway({
    backends,
    config: {
      workers: 2, auth: 'keys', keys_file: gws[0].keysPath,
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
