// Routing over several backends (issue #4): which backend a request goes to
// (the model, /api/ps "loaded", cold loads once, weights, alias name lists
// and pins), backends dying and coming back, failover before the first
// answer line (5xx, refused, reset; never 4xx; at most 3 attempts, never the
// same backend twice), no failover once a line was streamed, the per-backend
// max_inflight/max_queue/queue_timeout_s queue, and 200 concurrent streams.
// Every test starts its own fakes and gateway (auth "none", discovery every
// second) and checks both sides: what the client got, what each fake was sent
// (and when: no fake ever has more than max_inflight requests open at once),
// and the access log's backend/attempts/queue_ms.
import test from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  needGateway, startGateway, startFake, chat, jsonOf, readSSE, waitFor, get,
} from './harness.mjs';
import { modelKey } from '../fake_ollama/fake.mjs';

const BUSY = 'server busy, please try again.  maximum pending requests exceeded';
const T = (ms) => ({ ...needGateway, timeout: ms });

// ---------------------------------------------------------------- helpers

/**
 * Start one fake per spec ({name, models, loaded, backend: extra backend
 * config, fake: extra startFake opts}) and a gateway over them (in order),
 * wait until every fake was polled (/api/tags and /api/ps), forget the polls,
 * run fn({gw, f: {name: fake}, urls}), then stop the gateway (it must exit 0)
 * and close the fakes.
 */
async function withBackends(specs, config, fn) {
  const f = {};
  const urls = {};
  let gw = null;
  try {
    for (const s of specs) {
      f[s.name] = await startFake({ models: s.models, loaded: s.loaded ?? [], ...(s.fake ?? {}) });
      urls[s.name] = f[s.name].url;
    }
    gw = await startGateway({
      backends: specs.map((s) => ({ name: s.name, url: f[s.name].url, ...(s.backend ?? {}) })),
      config,
    });
    // The gateway polls every backend once and stores the answers before it
    // listens (reload_start), so its answering /healthz (startGateway) is the
    // signal that these polls are in force.
    for (const s of specs) {
      await waitFor(() => ['/api/tags', '/api/ps'].every((p) => f[s.name].requests.some((r) => r.path === p && r.status === 200)),
        5000, 20, `backend ${s.name} polled (/api/tags and /api/ps)`);
    }
    for (const s of specs) f[s.name].reset();
    await fn({ gw, f, urls });
  } finally {
    const code = gw ? await gw.stop() : 0;
    for (const x of Object.values(f)) await x.close().catch(() => {});
    if (code !== 0) throw new Error(`gateway exited with ${code} on SIGTERM\nstderr:\n${gw.stderr}`);
  }
}

let seq = 0;
/** A fresh request id / prompt tag. */
function tag(what) {
  return `${what}-${++seq}-${process.pid}`;
}

/**
 * One chat request whose prompt is `id` (so the fakes' records can be matched
 * to it) and whose x-request-id is `id` (for the access log). Resolves
 * {id, status, headers, json, text, sse, ms}: sse is set (readSSE) when the
 * answer is an event stream, json/text otherwise.
 */
/** Wait for the gateway's debug line saying request id waits in backend's
 * queue at position pos (needs log level debug). */
async function queuedOn(gw, id, backend, pos) {
  const esc = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await gw.waitForStderr(new RegExp(`request ${esc} queued for backend ${backend} \\(position ${pos}\\)`), 5000);
}

async function ask(gw, model, { id = tag('r'), stream = false, signal, extra = {}, timeoutMs = 20000 } = {}) {
  const t0 = performance.now();
  const res = await chat(gw.url, { model, stream, messages: [{ role: 'user', content: id }], ...extra },
    { headers: { 'x-request-id': id }, signal, timeoutMs });
  const out = { id, status: res.status, headers: res.headers, json: null, text: '', sse: null };
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    out.sse = await readSSE(res, { timeoutMs });
  } else {
    const j = await jsonOf(res);
    out.json = j.json;
    out.text = j.text;
  }
  out.ms = performance.now() - t0;
  return out;
}

/** The access-log line of request `id`. */
function logOf(gw, id) {
  return waitFor(() => gw.stdoutLines.find((l) => l.request_id === id), 3000, 20, `access-log line for ${id}`);
}

/** Wait for two more /api/ps polls of a fake (two discovery rounds). */
async function twoPolls(fake) {
  const ps = () => fake.requests.filter((r) => r.path === '/api/ps' && r.status === 200).length;
  const n = ps();
  await waitFor(() => ps() >= n + 2, 5000, 20, 'two more /api/ps polls');
}

/**
 * Wait for `rounds` more /api/ps polls of a fake, then until what the last
 * one answered is in force: discovery polls the backends one after the other
 * (/api/tags, /api/ps, store) in one thread, so the next request it makes
 * (the next backend's, or the next round's) comes after the store.
 */
async function pollsStored(fake, rounds = 2, others = []) {
  const ps = () => fake.requests.filter((r) => r.path === '/api/ps' && r.status === 200);
  const n = ps().length;
  await waitFor(() => ps().length >= n + rounds, 2000 + rounds * 2000, 20, `${rounds} more /api/ps polls`);
  const at = ps()[n + rounds - 1].receivedAt;
  await waitFor(() => [fake, ...others].some((x) => x.requests.some((r) => r.receivedAt > at && r.path !== '/api/ps')),
    4000, 20, 'discovery made its next request (the /api/ps answer is stored)');
}

/** The /api/chat requests a fake received for the request whose prompt is id. */
function chatsFor(fake, id) {
  return fake.chats().filter((r) => r.body?.messages?.[0]?.content === id);
}

/** The prompt of a recorded /api/chat request. */
function promptOf(r) {
  return r.body?.messages?.[0]?.content;
}

/** When a recorded request stopped occupying the backend (Infinity: still open). */
function endOf(r) {
  if (r.finishedAt !== null) return r.finishedAt;
  if (r.closedAt !== null) return r.closedAt;
  if (r.status && r.status !== 200 && r.headersSentAt !== null) return r.headersSentAt; // an error answer
  return Infinity;
}

/** The most /api/chat requests a fake had open at one instant. */
function maxOverlap(fake) {
  const ev = [];
  for (const r of fake.chats()) ev.push([r.receivedAt, 1], [endOf(r), -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same instant
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}

/** Wait until every /api/chat request a fake received is over. */
function allOver(fake, timeoutMs = 5000) {
  return waitFor(() => fake.chats().every((r) => endOf(r) !== Infinity), timeoutMs, 20, 'every backend request over');
}

function assertOk(r, what = r.id) {
  if (r.sse) {
    assert.equal(r.status, 200, `${what}: status`);
    assert.equal(r.sse.errors.length, 0, `${what}: no error frame: ${JSON.stringify(r.sse.errors)}`);
    assert.equal(r.sse.done, true, `${what}: [DONE]`);
  } else {
    assert.equal(r.status, 200, `${what}: ${r.text}`);
    assert.equal(r.json?.object, 'chat.completion', `${what}: ${r.text}`);
  }
}

/** A 503 backend_unavailable with a whole-seconds Retry-After >= 1 (r from ask()). */
function assertUnavailable(r, what = r.id) {
  assert.equal(r.status, 503, `${what}: status (${r.text || JSON.stringify(r.sse?.records)})`);
  assert.equal(r.sse, null, `${what}: a JSON answer, not an event stream (nothing is sent while queued)`);
  assert.deepEqual(Object.keys(r.json?.error ?? {}).sort(), ['code', 'message', 'param', 'type'], `${what}: ${r.text}`);
  assert.equal(r.json.error.type, 'api_error', `${what}: ${r.text}`);
  assert.equal(r.json.error.code, 'backend_unavailable', `${what}: ${r.text}`);
  const ra = r.headers.get('retry-after');
  assert.ok(ra !== null, `${what}: Retry-After header`);
  assert.match(ra, /^\d+$/, `${what}: Retry-After in whole seconds: ${ra}`);
  assert.ok(Number(ra) >= 1, `${what}: Retry-After ${ra} >= 1`);
}

/** A stream that ended with one error frame and no [DONE]. */
function assertStreamError(r, what = r.id) {
  assert.equal(r.status, 200, `${what}: the stream had started`);
  assert.ok(r.sse, `${what}: an event stream`);
  assert.equal(r.sse.done, false, `${what}: no [DONE] after a failure`);
  assert.equal(r.sse.errors.length, 1, `${what}: one error frame: ${JSON.stringify(r.sse.dataRecords.map((d) => d.data))}`);
  const last = r.sse.dataRecords.at(-1);
  assert.ok(JSON.parse(last.data).error, `${what}: the error frame is the last data record`);
  assert.ok(!r.sse.chunks.some((c) => c.choices?.[0]?.finish_reason), `${what}: no finish_reason`);
  return r.sse.errors[0].error;
}

const LLAMA = ['llama3.2:latest'];

// ---------------------------------------------------------------- where requests go

test('/v1/models: a model several backends have is listed once; aliases once', T(15000), async () => {
  await withBackends([
    { name: 'A', models: ['llama3.2:latest', 'qwen3:latest'] },
    { name: 'B', models: ['llama3.2', 'onlyb:latest'] },
    { name: 'C', models: ['llama3.2:latest', 'qwen3:latest', 'onlyc:7b'] },
  ], { aliases: { 'gpt-3.5-turbo': 'llama3.2', team: { model: ['llama3.2', 'onlyb'] }, pinned: { model: 'qwen3', backends: ['C'] } } },
  async ({ gw }) => {
    const r = await jsonOf(await get(`${gw.url}/v1/models`));
    assert.equal(r.status, 200, r.text);
    const ids = r.json.data.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, `no duplicates: ${JSON.stringify(ids)}`);
    for (const want of ['llama3.2:latest', 'qwen3:latest', 'onlyb:latest', 'onlyc:7b', 'gpt-3.5-turbo', 'team', 'pinned']) {
      assert.equal(ids.filter((x) => x === want).length, 1, `${want} once in ${JSON.stringify(ids)}`);
    }
  });
});

test('a model only one backend has goes there; Ollama name rules (x == x:latest)', T(15000), async () => {
  await withBackends([
    { name: 'A', models: ['llama3.2:latest', 'onlya:latest'] },
    { name: 'B', models: ['llama3.2:latest', 'onlyb:latest'] },
    { name: 'C', models: ['qwen3:latest', 'onlyc:7b'] },
  ], {}, async ({ gw, f }) => {
    const want = { onlya: 'A', 'onlya:latest': 'A', onlyb: 'B', 'ONLYB:latest': 'B', 'onlyc:7b': 'C', qwen3: 'C' };
    for (const [model, backend] of Object.entries(want)) {
      const r = await ask(gw, model, { stream: model.length % 2 === 0 });
      assertOk(r, `${model}`);
      const l = await logOf(gw, r.id);
      assert.equal(l.backend, backend, `${model} served by ${backend}: ${JSON.stringify(l)}`);
      assert.equal(l.attempts, 1, `${model}: attempts`);
      assert.equal(l.queue_ms, 0, `${model}: queue_ms`);
      assert.equal(chatsFor(f[backend], r.id).length, 1, `${model} reached ${backend}`);
      for (const other of Object.keys(f).filter((n) => n !== backend)) {
        assert.equal(chatsFor(f[other], r.id).length, 0, `${model} never reached ${other}`);
      }
    }
    // a model no backend has: 404, nothing sent
    const r = await ask(gw, 'onlyd');
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.code, 'model_not_found');
    assert.equal(f.A.chats().length + f.B.chats().length + f.C.chats().length, Object.keys(want).length);
  });
});

test('a loaded model is preferred (/api/ps) over an idle backend that would cold-load it', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA },
    { name: 'B', models: LLAMA },
  ], {}, async ({ gw, f }) => {
    f.B.setLoaded(['llama3.2']);
    await pollsStored(f.B, 2, [f.A]);
    for (let i = 0; i < 4; i++) assertOk(await ask(gw, 'llama3.2', { stream: i % 2 === 1 }));
    assert.equal(f.A.chats().length, 0, 'A (index 0, model not loaded) got nothing');
    assert.equal(f.B.chats().length, 4, 'B (model loaded) got every request');
    // loaded on both: lower index wins ties (sequential requests: equal in flight)
    f.A.setLoaded(['llama3.2:latest']);
    await pollsStored(f.A, 2, [f.B]);
    const r = await ask(gw, 'llama3.2');
    assertOk(r);
    assert.equal((await logOf(gw, r.id)).backend, 'A', 'ties go to the lower index');
  });
});

test('loaded preferred even when busier; a cold load elsewhere only when every loaded backend is full', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, backend: { max_inflight: 2 } },
    { name: 'B', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 2 } },
  ], {}, async ({ gw, f }) => {
    for (const x of [f.A, f.B]) x.script({ tokens: ['slow'], firstLineDelayMs: 1500 });
    const p1 = ask(gw, 'llama3.2', { stream: true });
    await waitFor(() => f.A.chats().length + f.B.chats().length >= 1, 3000, 10, 'the first request sent');
    assert.equal(f.B.chats().length, 1, 'the first request went to B, where the model is loaded');
    const p2 = ask(gw, 'llama3.2', { stream: true });
    await waitFor(() => f.A.chats().length + f.B.chats().length >= 2, 3000, 10, 'the second request sent');
    assert.equal(f.B.chats().length, 2, 'B (loaded, 1 of 2 slots used) got the second request, not idle A');
    const p3 = ask(gw, 'llama3.2', { stream: true });
    await waitFor(() => f.A.chats().length + f.B.chats().length >= 3, 3000, 10, 'the third request sent (not queued)');
    assert.equal(f.A.chats().length, 1, 'B full: the third is a cold load on A rather than a wait on B');
    for (const r of await Promise.all([p1, p2, p3])) assertOk(r);
    assert.ok(maxOverlap(f.B) <= 2);
  });
});

test('a cold load happens once: while one backend loads the model, more requests for it go there', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA },
    { name: 'B', models: LLAMA },
    { name: 'C', models: ['qwen3:latest'] },
  ], {}, async ({ gw, f }) => {
    // nothing loaded anywhere; the first request loads the model on A (index 0) for 1.5 s
    let n = 0;
    f.A.script(() => (++n === 1 ? { tokens: ['loaded'], firstDelayMs: 1500 } : { tokens: ['warm'] }));
    f.B.script({ tokens: ['from B'] });
    const first = ask(gw, 'llama3.2', { stream: true });
    // A has the request: the gateway counts the model as loading there
    await f.A.waitForRequest((r) => r.path === '/api/chat');
    const more = await Promise.all([ask(gw, 'llama3.2'), ask(gw, 'llama3.2', { stream: true })]);
    for (const r of [await first, ...more]) assertOk(r);
    assert.equal(f.B.chats().length, 0, `B was not made to load the model too (B got ${f.B.chats().length})`);
    assert.equal(f.A.chats().length, 3);
    for (const r of more) assert.equal((await logOf(gw, r.id)).backend, 'A');
    // now loaded on A (it answered): a qwen3 request still goes to C, the only one with it
    const q = await ask(gw, 'qwen3');
    assertOk(q);
    assert.equal(chatsFor(f.C, q.id).length, 1);
  });
});

test('a cold load under way on a full backend: more requests queue there, not load the model elsewhere', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, backend: { max_inflight: 1 } },
    { name: 'B', models: LLAMA },
  ], {}, async ({ gw, f }) => {
    let n = 0;
    f.A.script(() => (++n === 1 ? { tokens: ['loaded'], firstDelayMs: 1500 } : { tokens: ['warm'] }));
    const p1 = ask(gw, 'llama3.2', { stream: true });
    // A has the first request: the model is loading there, A is full
    const c1 = await f.A.waitForRequest((r) => r.path === '/api/chat');
    const p2 = ask(gw, 'llama3.2');
    const [r1, r2] = await Promise.all([p1, p2]);
    assertOk(r1);
    assertOk(r2);
    // both are over (their answers came): check what happened meanwhile
    await logOf(gw, r2.id);
    assert.equal(f.B.chats().length, 0, 'B was not made to load the model');
    assert.equal(chatsFor(f.A, r2.id).length, 1, 'served by A once its slot was free');
    assert.ok(chatsFor(f.A, r2.id)[0].receivedAt >= endOf(c1), 'the second request waits for A (sent after the first ended)');
    const l2 = await logOf(gw, r2.id);
    assert.equal(l2.backend, 'A');
    assert.ok(l2.queue_ms >= 500, `queued on A (queue_ms ${l2.queue_ms})`);
    await allOver(f.A);
    assert.equal(maxOverlap(f.A), 1);
  });
});

test('a backend that just answered for a model counts as having it loaded, for ~2 discovery rounds', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA },
    { name: 'B', models: LLAMA },
  ], { aliases: { onb: { model: 'llama3.2', backends: ['B'] } } }, async ({ gw, f }) => {
    // /api/ps lists nothing anywhere; B answers for llama3.2 through an alias pinned to it
    assertOk(await ask(gw, 'onb'));
    const r = await ask(gw, 'llama3.2');
    assertOk(r);
    assert.equal((await logOf(gw, r.id)).backend, 'B', 'B answered a moment ago: loaded there, preferred over A (index 0)');
    // five rounds later, /api/ps still empty: nothing counts as loaded, the tie goes to A
    await pollsStored(f.B, 5, [f.A]);
    const later = await ask(gw, 'llama3.2');
    assertOk(later);
    assert.equal((await logOf(gw, later.id)).backend, 'A', 'the last answer is too old to count as loaded');
    assert.equal(f.A.chats().length, 1);
  });
});

test('weights: with equal in flight, weight 3 gets ~3x the requests of weight 1', T(15000), async (t) => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA, backend: { weight: 3 } },
    { name: 'B', models: LLAMA, loaded: LLAMA, backend: { weight: 1 } },
  ], {}, async ({ gw, f }) => {
    // 40 concurrent streams that all stay in flight ~1.5 s: fewest in flight relative to weight → 30/10
    for (const x of [f.A, f.B]) x.script({ tokens: ['a', 'b'], firstLineDelayMs: 1500 });
    const rs = await Promise.all(Array.from({ length: 40 }, () => ask(gw, 'llama3.2', { stream: true })));
    for (const r of rs) assertOk(r);
    const a = f.A.chats().length;
    const b = f.B.chats().length;
    assert.equal(a + b, 40);
    t.diagnostic(`A ${a}, B ${b}`);
    assert.ok(a >= 26 && a <= 34, `A (weight 3) got ${a}, B (weight 1) got ${b}: want about 30/10`);
    const logs = await Promise.all(rs.map((r) => logOf(gw, r.id)));
    assert.equal(logs.filter((l) => l.backend === 'A').length, a, 'access log backend matches the fakes');
  });
});

test('alias with a list of names: each backend is sent the first name it lists; the client sees the alias', T(15000), async () => {
  await withBackends([
    { name: 'A', models: ['llama3.2:latest'], loaded: ['llama3.2:latest'] },
    { name: 'B', models: ['llama-gpu:8b'], loaded: ['llama-gpu:8b'] },
    { name: 'C', models: ['llama-gpu:8b', 'llama3.2:latest'], loaded: ['llama-gpu:8b', 'llama3.2:latest'] },
  ], {
    aliases: {
      team: { model: ['llama3.2', 'llama-gpu:8b'] },
      'team-c': { model: ['llama-gpu:8b', 'llama3.2'], backends: ['C'] },
    },
  }, async ({ gw, f }) => {
    for (const x of Object.values(f)) x.script({ tokens: ['hi'], firstLineDelayMs: 800 });
    // 6 concurrent: the model is loaded everywhere under one of its names, so they spread 2/2/2
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => ask(gw, 'team', { stream: i % 2 === 0 })));
    for (const r of rs) {
      assertOk(r);
      const models = r.sse ? [...new Set(r.sse.chunks.map((c) => c.model))] : [r.json.model];
      assert.deepEqual(models, ['team'], `the client sees the alias: ${JSON.stringify(models)}`);
    }
    const sent = (x) => x.chats().map((r) => modelKey(r.body.model));
    assert.deepEqual([...new Set(sent(f.A))], ['llama3.2:latest'], `A was sent ${JSON.stringify(sent(f.A))}`);
    assert.deepEqual([...new Set(sent(f.B))], ['llama-gpu:8b'], `B was sent ${JSON.stringify(sent(f.B))}`);
    assert.deepEqual([...new Set(sent(f.C))], ['llama3.2:latest'], `C (lists both) was sent the alias's first name: ${JSON.stringify(sent(f.C))}`);
    const counts = ['A', 'B', 'C'].map((n) => f[n].chats().length);
    assert.deepEqual(counts, [2, 2, 2], `spread over the three backends (A, B, C): ${counts}`);
    for (const r of rs) {
      const l = await logOf(gw, r.id);
      assert.equal(l.model, 'team');
      assert.equal(modelKey(l.upstream_model), modelKey(chatsFor(f[l.backend], r.id)[0].body.model), JSON.stringify(l));
    }
    // A busy: the request fails over, and the next backend is sent its own name
    for (const x of Object.values(f)) x.reset();
    f.A.script({ status: 503, error: BUSY });
    const fo = await ask(gw, 'team');
    assertOk(fo);
    assert.equal(fo.json.model, 'team');
    const fl = await logOf(gw, fo.id);
    assert.ok(['B', 'C'].includes(fl.backend), JSON.stringify(fl));
    assert.equal(modelKey(chatsFor(f[fl.backend], fo.id)[0].body.model), fl.backend === 'B' ? 'llama-gpu:8b' : 'llama3.2:latest');
    assert.equal(fl.attempts, 1 + chatsFor(f.A, fo.id).length);
    // the other order, pinned to C: C is sent llama-gpu:8b
    for (const x of Object.values(f)) x.reset();
    const c = await ask(gw, 'team-c');
    assertOk(c);
    assert.equal(c.json.model, 'team-c');
    assert.equal(chatsFor(f.C, c.id).length, 1, 'pinned to C');
    assert.equal(modelKey(chatsFor(f.C, c.id)[0].body.model), 'llama-gpu:8b');
  });
});

test('alias pinned to backends: only those serve it, even when they are down', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA },
  ], { aliases: { pinned: { model: 'llama3.2', backends: ['B'] }, free: 'llama3.2' } }, async ({ gw, f }) => {
    for (let i = 0; i < 3; i++) {
      const r = await ask(gw, 'pinned', { stream: i === 1 });
      assertOk(r);
      assert.equal(chatsFor(f.B, r.id).length, 1, 'pinned → B');
      assert.equal((await logOf(gw, r.id)).backend, 'B');
    }
    const free = await ask(gw, 'free');
    assertOk(free);
    assert.equal(chatsFor(f.A, free.id).length, 1, 'the unpinned alias goes to A (model loaded there)');
    // B dies: the pinned alias is unavailable, never served by A
    await f.B.close();
    await waitFor(async () => (await ask(gw, 'pinned')).status === 503, 5000, 100, 'pinned alias 503 with B down');
    const r = await ask(gw, 'pinned');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json?.error?.code, 'backend_unavailable', r.text);
    assert.equal(f.A.chats().filter((x) => x.body.model === 'llama3.2' && promptOf(x) !== free.id).length, 0,
      'A never served the pinned alias');
    assert.equal((await get(`${gw.url}/readyz`)).status, 200, 'readyz: A is still up');
    const again = await ask(gw, 'free');
    assertOk(again);
  });
});

// ---------------------------------------------------------------- backends dying and coming back

test('a dead backend is taken out (readyz stays 200) and comes back when it answers again', T(20000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], {}, async ({ gw, f }) => {
    const r0 = await ask(gw, 'llama3.2');
    assertOk(r0);
    assert.equal((await logOf(gw, r0.id)).backend, 'A', 'A (index 0) serves while both are up');
    const port = f.A.port;
    await f.A.close();
    // right after: served anyway (by B, directly or after a refused attempt on A)
    const r1 = await ask(gw, 'llama3.2', { stream: true });
    assertOk(r1);
    const l1 = await logOf(gw, r1.id);
    assert.equal(l1.backend, 'B', JSON.stringify(l1));
    assert.ok([1, 2].includes(l1.attempts), JSON.stringify(l1));
    // after a discovery round A is down: no more attempts on it
    // (discovery logs it once that is stored)
    await gw.waitForStderr(/backend A \(.*\) is down/, 4000);
    assert.equal((await get(`${gw.url}/readyz`)).status, 200, 'readyz 200 while B is up');
    for (let i = 0; i < 4; i++) {
      const r = await ask(gw, 'llama3.2', { stream: i % 2 === 0 });
      assertOk(r);
      const l = await logOf(gw, r.id);
      assert.equal(l.backend, 'B');
      assert.equal(l.attempts, 1, `A is down: not tried (${JSON.stringify(l)})`);
    }
    // A comes back on the same port
    const upFrom = gw.stderr.length;
    f.A = await startFake({ port, models: LLAMA, loaded: LLAMA });
    await f.A.waitForRequest((r) => r.path === '/api/tags' && r.status === 200, 4000);
    // discovery says A is up again (logged once its poll is stored): A
    // (index 0, model loaded) serves the very next request
    await gw.waitForStderr(/backend A \(.*\) is up/, 5000, upFrom);
    const r = await ask(gw, 'llama3.2');
    assertOk(r);
    const back = (await logOf(gw, r.id)).backend === 'A' ? r : null;
    assert.ok(back, 'A serves again within 5 s of answering its polls');
    assert.equal(chatsFor(f.A, back.id).length, 1);
    const paths = new Set(f.A.requests.map((r) => r.path));
    assert.ok(paths.has('/api/ps'), 'discovery polls /api/ps too');
  });
});

test('health checks never generate, on any backend (only /api/version, /api/tags, /api/ps)', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA },
    { name: 'B', models: ['qwen3:latest'] },
    { name: 'C', models: [] },
  ], {}, async ({ f }) => {
    // two discovery rounds on every backend (bounded as the 2.3 s this once slept)
    const t0 = performance.now();
    for (const x of Object.values(f)) {
      await waitFor(() => x.requests.filter((r) => r.path === '/api/tags').length >= 2 && x.requests.some((r) => r.path === '/api/ps'),
        Math.max(0, 2300 - (performance.now() - t0)) + 50, 20, 'two discovery rounds');
    }
    for (const [n, x] of Object.entries(f)) {
      const seen = new Set(x.requests.map((r) => `${r.method} ${r.path}`));
      for (const p of seen) {
        assert.ok(['GET /api/version', 'HEAD /api/version', 'GET /api/tags', 'GET /api/ps', 'GET /', 'HEAD /'].includes(p),
          `${n}: unexpected poll ${p}`);
      }
      assert.ok(seen.has('GET /api/tags') && seen.has('GET /api/ps'), `${n} polled every second: ${[...seen]}`);
      assert.ok(x.requests.filter((r) => r.path === '/api/tags').length >= 2, `${n}: /api/tags about every second`);
    }
  });
});

// ---------------------------------------------------------------- failover

test('failover on 503 "server busy" and on 500, stream and not; access log attempts/backend', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
    { name: 'C', models: ['qwen3:latest'], loaded: ['qwen3:latest'] },
  ], {}, async ({ gw, f }) => {
    for (const [status, error] of [[503, BUSY], [500, 'an error was encountered while running the model: CUDA error']]) {
      for (const stream of [false, true]) {
        f.A.reset();
        f.B.reset();
        f.A.script({ status, error });
        const r = await ask(gw, 'llama3.2', { stream });
        assertOk(r, `A ${status}, stream ${stream}`);
        if (stream) assert.equal(r.sse.content, 'Hello from llama3.2');
        else assert.equal(r.json.choices[0].message.content, 'Hello from llama3.2');
        const l = await logOf(gw, r.id);
        assert.equal(chatsFor(f.B, r.id).length, 1, 'served by B');
        assert.equal(l.backend, 'B', JSON.stringify(l));
        assert.equal(l.attempts, 1 + chatsFor(f.A, r.id).length, `attempts counts A's try: ${JSON.stringify(l)}`);
        assert.equal(l.status, 200);
      }
    }
    // the first of these went to A (equal in flight, lower index): at least one real failover
    const failovers = gw.stdoutLines.filter((l) => l.attempts === 2).length;
    assert.ok(failovers >= 1, `some request failed over from A (${failovers})`);
    assert.equal(f.C.chats().length, 0, 'never failed over to C, which does not have the model');
    // both busy: the last backend's 503, mapped as before
    for (const stream of [false, true]) {
      f.A.script({ status: 503, error: BUSY });
      f.B.script({ status: 503, error: BUSY });
      const r = await ask(gw, 'llama3.2', { stream });
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error.type, 'api_error');
      assert.equal(r.json.error.code, 'backend_unavailable');
      assert.equal(chatsFor(f.A, r.id).length, 1);
      assert.equal(chatsFor(f.B, r.id).length, 1);
      assert.equal((await logOf(gw, r.id)).attempts, 2);
    }
    assert.equal(f.C.chats().length, 0);
  });
});

test('failover on connection refused; 3 refusals in a row take the backend out until a good poll', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], { discovery_interval_s: 60 }, async ({ gw, f }) => {
    await f.A.close(); // discovery will not notice for 60 s
    const logs = [];
    for (let i = 0; i < 6; i++) {
      const r = await ask(gw, 'llama3.2', { stream: i % 2 === 1 });
      assertOk(r);
      const l = await logOf(gw, r.id);
      assert.equal(l.backend, 'B', JSON.stringify(l));
      logs.push(l.attempts);
    }
    assert.equal(f.B.chats().length, 6);
    assert.equal(logs[0], 2, `the first request tried A (refused), then B: attempts ${logs}`);
    const firstDirect = logs.indexOf(1);
    assert.ok(firstDirect >= 1 && firstDirect <= 3, `at most 3 refusals before A is out: attempts ${logs}`);
    assert.ok(logs.slice(firstDirect).every((a) => a === 1), `once out, A stays out: attempts ${logs}`);
  });
});

test('failover on a reset before the first line (headers sent, then the connection cut)', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], {}, async ({ gw, f }) => {
    f.A.script({ dropAfter: 0 });
    const r = await ask(gw, 'llama3.2', { stream: true });
    assertOk(r);
    assert.equal(r.sse.content, 'Hello from llama3.2');
    assert.equal(chatsFor(f.A, r.id).length, 1);
    assert.equal(chatsFor(f.B, r.id).length, 1);
    const l = await logOf(gw, r.id);
    assert.equal(l.backend, 'B');
    assert.equal(l.attempts, 2);
  });
});

test('failover after half a first line: the next backend answer is not mixed with it', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], {}, async ({ gw, f }) => {
    f.A.script({ dropAfter: 0, partial: '{"model":"llama3.2","message":{"role":"assistant","content":"FROM-A' });
    const r = await ask(gw, 'llama3.2', { stream: true });
    assertOk(r);
    assert.equal(r.sse.content, 'Hello from llama3.2');
    assert.equal(chatsFor(f.B, r.id).length, 1);
    assert.equal((await logOf(gw, r.id)).attempts, 2);
  });
});

test('failover after keep-alive comments (nothing of the answer yet) still goes to another backend', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], { limits: { keepalive_interval_s: 1 } }, async ({ gw, f }) => {
    f.A.script({ firstDelayMs: 1800, status: 500, error: 'an error was encountered while running the model' });
    const r = await ask(gw, 'llama3.2', { stream: true });
    assertOk(r);
    assert.ok(r.sse.comments.length >= 1, 'keep-alive comments while A was silent');
    assert.equal(r.sse.content, 'Hello from llama3.2');
    assert.equal(chatsFor(f.B, r.id).length, 1);
    assert.equal((await logOf(gw, r.id)).attempts, 2);
    // both fail after keep-alives: the last error as an SSE error frame
    f.A.reset();
    f.B.reset();
    // (whichever is tried first, a keep-alive is due 1 s after it was sent: A's 2 s leave room for it)
    f.A.script({ firstDelayMs: 2000, status: 500, error: 'A broke' });
    f.B.script({ firstDelayMs: 300, status: 500, error: 'B broke' });
    const both = await ask(gw, 'llama3.2', { stream: true });
    const e = assertStreamError(both);
    assert.ok(both.sse.comments.length >= 1, 'keep-alive comments came first');
    assert.equal(e.code, 'upstream_error', JSON.stringify(e));
    assert.equal(f.A.chats().length + f.B.chats().length, 2, 'each backend tried once');
  });
});

test('4xx answers are never retried: 400 and 404 come back from the first backend', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
    { name: 'C', models: LLAMA, loaded: LLAMA },
  ], {}, async ({ gw, f }) => {
    f.A.script({ status: 400, error: 'the backend disliked something' });
    for (const stream of [false, true]) {
      const r = await ask(gw, 'llama3.2', { stream });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(chatsFor(f.A, r.id).length, 1);
      assert.equal(chatsFor(f.B, r.id).length + chatsFor(f.C, r.id).length, 0, '400 not retried');
      const l = await logOf(gw, r.id);
      assert.equal(l.backend, 'A');
      assert.equal(l.attempts, 1);
    }
    f.A.script({ status: 404, error: "model 'llama3.2' not found" });
    for (const stream of [false, true]) {
      const r = await ask(gw, 'llama3.2', { stream });
      assert.equal(r.status, 404, r.text);
      assert.equal(r.json.error.code, 'model_not_found');
      assert.equal(chatsFor(f.A, r.id).length, 1);
      assert.equal(chatsFor(f.B, r.id).length + chatsFor(f.C, r.id).length, 0, '404 not retried');
      assert.equal((await logOf(gw, r.id)).attempts, 1);
    }
  });
});

test('at most 3 attempts, never the same backend twice, never outside an alias\'s backends', T(15000), async () => {
  const four = ['A', 'B', 'C', 'D'].map((name) => ({ name, models: LLAMA, loaded: LLAMA }));
  await withBackends(four, { aliases: { ab: { model: 'llama3.2', backends: ['A', 'B'] } } }, async ({ gw, f }) => {
    for (const x of Object.values(f)) x.script({ status: 500, error: `${x.port} broke` });
    for (const stream of [false, true]) {
      const r = await ask(gw, 'llama3.2', { stream });
      assert.equal(r.status, 502, r.text || JSON.stringify(r.sse?.dataRecords));
      assert.equal(r.json.error.code, 'upstream_error');
      const per = Object.values(f).map((x) => chatsFor(x, r.id).length);
      assert.equal(per.reduce((a, b) => a + b, 0), 3, `3 attempts in all: ${per}`);
      assert.ok(per.every((n) => n <= 1), `never the same backend twice: ${per}`);
      const l = await logOf(gw, r.id);
      assert.equal(l.attempts, 3);
      const lastTried = Object.entries(f).filter(([, x]) => chatsFor(x, r.id).length)
        .sort(([, x], [, y]) => chatsFor(x, r.id)[0].receivedAt - chatsFor(y, r.id)[0].receivedAt).at(-1)[0];
      assert.equal(l.backend, lastTried, 'backend is the last one tried');
    }
    // an alias pinned to A and B: failover stays within them
    for (const x of Object.values(f)) x.reset();
    for (const x of Object.values(f)) x.script({ status: 500, error: 'broke' });
    const ab = await ask(gw, 'ab');
    assert.equal(ab.status, 502, ab.text);
    assert.deepEqual(['A', 'B', 'C', 'D'].map((k) => chatsFor(f[k], ab.id).length), [1, 1, 0, 0], 'tried A and B only');
    assert.equal((await logOf(gw, ab.id)).attempts, 2);
    // busy, broken, fine, fine: served within 3 attempts, each tried at most once
    for (const x of Object.values(f)) x.reset();
    f.A.script({ status: 503, error: BUSY });
    f.B.script({ status: 500, error: 'B broke' });
    const r = await ask(gw, 'llama3.2');
    assertOk(r);
    assert.equal(chatsFor(f.C, r.id).length + chatsFor(f.D, r.id).length, 1, 'C or D served it');
    const per = Object.values(f).map((x) => chatsFor(x, r.id).length);
    assert.ok(per.every((n) => n <= 1), `${per}`);
    assert.equal((await logOf(gw, r.id)).attempts, per.reduce((a, b) => a + b, 0));
  });
});

test('no failover after the first streamed line: a mid-stream drop is an error frame, the other backend never sees it', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], {}, async ({ gw, f }) => {
    f.A.script({ tokens: ['one', ' two', ' three'], dropAfter: 2 });
    const r = await ask(gw, 'llama3.2', { stream: true });
    assertStreamError(r);
    assert.equal(r.sse.content, 'one two', 'what was streamed before the drop');
    assert.equal(chatsFor(f.A, r.id).length, 1);
    assert.equal(chatsFor(f.B, r.id).length, 0, 'never sent to a second backend');
    const l = await logOf(gw, r.id);
    assert.equal(l.backend, 'A');
    assert.equal(l.attempts, 1);
    // same with an error line instead of a drop
    f.A.script({ tokens: ['one', ' two'], errorAfter: 1, errorMessage: 'model runner crashed' });
    const e = await ask(gw, 'llama3.2', { stream: true });
    assertStreamError(e);
    assert.equal(chatsFor(f.B, e.id).length, 0, 'never sent to a second backend');
  });
});

test('a backend that stalls mid-stream trips idle_stream_timeout_s: error frame, no [DONE], no retry', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA },
    { name: 'B', models: LLAMA, loaded: LLAMA },
  ], { limits: { idle_stream_timeout_s: 2, keepalive_interval_s: 30 } }, async ({ gw, f }) => {
    f.A.script({ tokens: ['one', ' two', ' three'], stallAfter: 2 });
    const t0 = performance.now();
    const r = await ask(gw, 'llama3.2', { stream: true, timeoutMs: 10000 });
    const ms = performance.now() - t0;
    assertStreamError(r);
    assert.equal(r.sse.content, 'one two');
    assert.ok(ms >= 1800 && ms < 6000, `ended by the 2 s idle timeout (${Math.round(ms)} ms)`);
    assert.equal(chatsFor(f.B, r.id).length, 0, 'never sent to a second backend');
    await waitFor(() => chatsFor(f.A, r.id)[0]?.closedAt !== null, 2000, 20, 'A\'s stalled request closed by the gateway');
  });
});

// ---------------------------------------------------------------- the queue

test('max_inflight 1 + max_queue 1: the third concurrent request gets 503 + Retry-After at once', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 1, max_queue: 1 } },
  ], { log: { level: 'debug' } }, async ({ gw, f }) => {
    f.A.script({ tokens: ['a', 'b', 'c', 'd', 'e'], delayMs: 300 });
    const p1 = ask(gw, 'llama3.2', { stream: true });
    await f.A.waitForRequest((r) => r.path === '/api/chat');
    const id2 = tag('queued');
    const p2 = ask(gw, 'llama3.2', { id: id2 });
    await queuedOn(gw, id2, 'A', 1);
    assert.equal(f.A.chats().length, 1, 'the second waits in the queue');
    for (const stream of [false, true]) {
      const r3 = await ask(gw, 'llama3.2', { stream });
      assertUnavailable(r3);
      assert.ok(r3.ms < 1000, `503 at once (${Math.round(r3.ms)} ms)`);
      const l3 = await logOf(gw, r3.id);
      assert.equal(l3.status, 503);
      assert.equal(l3.attempts, 0, JSON.stringify(l3));
      assert.equal(l3.queue_ms, 0, JSON.stringify(l3));
      assert.equal(chatsFor(f.A, r3.id).length, 0);
    }
    const [r1, r2] = await Promise.all([p1, p2]);
    assertOk(r1);
    assertOk(r2);
    const l2 = await logOf(gw, r2.id);
    assert.equal(l2.backend, 'A');
    assert.equal(l2.attempts, 1);
    assert.ok(l2.queue_ms >= 500, `the queued request waited (queue_ms ${l2.queue_ms})`);
    assert.equal((await logOf(gw, r1.id)).queue_ms, 0);
    await allOver(f.A);
    assert.equal(maxOverlap(f.A), 1, 'never more than max_inflight at once');
    const [c1, c2] = f.A.chats();
    assert.ok(c2.receivedAt >= endOf(c1), 'the queued request was sent after the first ended');
  });
});

test('queue_timeout_s: still queued after it → 503 + Retry-After (no keep-alive while queued, even for a stream)', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 1 } },
  ], { limits: { queue_timeout_s: 2, keepalive_interval_s: 1 } }, async ({ gw, f }) => {
    f.A.script({ tokens: ['slow'], firstLineDelayMs: 4000 });
    const p1 = ask(gw, 'llama3.2', { stream: true });
    await f.A.waitForRequest((r) => r.path === '/api/chat');
    const [r2, r3] = await Promise.all([ask(gw, 'llama3.2'), ask(gw, 'llama3.2', { stream: true })]);
    for (const r of [r2, r3]) {
      assertUnavailable(r);
      assert.ok(r.ms >= 1800 && r.ms < 3500, `503 after the 2 s queue timeout (${Math.round(r.ms)} ms)`);
      assert.equal(chatsFor(f.A, r.id).length, 0, 'never sent');
      const l = await logOf(gw, r.id);
      assert.equal(l.attempts, 0, JSON.stringify(l));
      assert.ok(l.queue_ms >= 1800, `queue_ms ${l.queue_ms}`);
    }
    const r1 = await p1;
    assertOk(r1);
    assert.ok(r1.sse.comments.length >= 1, 'the request in flight did get keep-alives');
  });
});

test('a queued client that leaves frees its place; the next waiter goes first; the backend never sees it', T(15000), async () => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 1, max_queue: 2 } },
  ], { log: { level: 'debug' } }, async ({ gw, f }) => {
    f.A.script({ tokens: ['x', 'y', 'z'], delayMs: 500 });
    const r1 = ask(gw, 'llama3.2', { id: tag('first'), stream: true });
    await f.A.waitForRequest((r) => r.path === '/api/chat');
    const leaver = new AbortController();
    const id2 = tag('leaver');
    const r2 = ask(gw, 'llama3.2', { id: id2, stream: true, signal: leaver.signal }).catch((e) => ({ aborted: e }));
    await queuedOn(gw, id2, 'A', 1);
    const id3 = tag('second');
    const r3 = ask(gw, 'llama3.2', { id: id3, stream: true });
    await queuedOn(gw, id3, 'A', 2);
    leaver.abort();
    assert.ok((await r2).aborted, 'the leaver was aborted');
    // the gateway saw it leave: its access-log line is written when it ends
    await logOf(gw, id2);
    const r4 = ask(gw, 'llama3.2', { id: tag('third') }); // would be 503 if the leaver still held its place
    const rs = await Promise.all([r1, r3, r4]);
    for (const r of rs) assertOk(r);
    await allOver(f.A);
    assert.deepEqual(f.A.chats().map(promptOf), rs.map((r) => r.id), 'served in arrival order; the leaver never sent');
    assert.equal(chatsFor(f.A, id2).length, 0, 'the backend never received the request that left');
    assert.equal(maxOverlap(f.A), 1);
  });
});

test('200 concurrent streams over three backends with max_inflight: all complete, limits held, spread by weight', T(60000), async (t) => {
  await withBackends([
    { name: 'A', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 20, weight: 2 } },
    { name: 'B', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 10, weight: 1 } },
    { name: 'C', models: LLAMA, loaded: LLAMA, backend: { max_inflight: 10, weight: 1 } },
  ], {}, async ({ gw, f }) => {
    for (const x of Object.values(f)) {
      x.script((body) => ({ tokens: ['ok ', body.messages[0].content, ' end'], delayMs: 60 }));
    }
    const rs = await Promise.all(Array.from({ length: 200 }, () => ask(gw, 'llama3.2', { stream: true, timeoutMs: 40000 })));
    for (const r of rs) {
      assertOk(r);
      assert.equal(r.sse.content, `ok ${r.id} end`, `${r.id}: its own answer, complete`);
    }
    for (const x of Object.values(f)) await allOver(x);
    const n = Object.fromEntries(Object.entries(f).map(([k, x]) => [k, x.chats().length]));
    t.diagnostic(`sent: ${JSON.stringify(n)}, most at once: ${['A', 'B', 'C'].map((k) => maxOverlap(f[k]))}`);
    assert.equal(n.A + n.B + n.C, 200, `each request sent once: ${JSON.stringify(n)}`);
    for (const [k, max] of [['A', 20], ['B', 10], ['C', 10]]) {
      const o = maxOverlap(f[k]);
      assert.ok(o <= max, `${k} had ${o} requests at once, max_inflight ${max}`);
    }
    assert.ok(n.A >= 70 && n.A <= 130, `A (weight 2, 20 slots) ~100 of 200: ${JSON.stringify(n)}`);
    assert.ok(n.B >= 30 && n.B <= 70 && n.C >= 30 && n.C <= 70, `B, C (weight 1, 10 slots) ~50 each: ${JSON.stringify(n)}`);
    const logs = await Promise.all(rs.map((r) => logOf(gw, r.id)));
    for (const l of logs) {
      assert.equal(l.attempts, 1);
      assert.equal(typeof l.queue_ms, 'number');
      assert.equal(chatsFor(f[l.backend], l.request_id).length, 1, `log backend ${l.backend} matches the fake`);
    }
    assert.ok(logs.some((l) => l.queue_ms > 0), 'with 40 slots for 200 streams, some waited in a queue');
  });
});
