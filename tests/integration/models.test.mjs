// /v1/models, /v1/models/{id}, /healthz, /readyz, discovery, backends down.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  useGateway, needGateway, startGateway, startFake, get, jsonOf, chat, simpleChat, waitFor, TEST_ALIASES,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach });

async function models(url) {
  const r = await jsonOf(await get(`${url}/v1/models`));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  return r.json;
}

function assertModelObject(m) {
  assert.equal(typeof m.id, 'string');
  assert.equal(m.object, 'model');
  assert.ok(Number.isInteger(m.created) && m.created >= 0, `created: ${m.created}`);
  assert.equal(typeof m.owned_by, 'string');
}

test('/v1/models lists aliases and backend models', needGateway, async () => {
  const j = await models(env.gw.url);
  assert.equal(j.object, 'list');
  assert.ok(Array.isArray(j.data));
  for (const m of j.data) assertModelObject(m);
  const ids = j.data.map((m) => m.id);
  for (const want of ['gpt-3.5-turbo', 'text-embedding-3-small', 'llama3.2:latest', 'qwen3:latest', 'hf.co/org/repo:Q4']) {
    assert.ok(ids.includes(want), `${want} in ${JSON.stringify(ids)}`);
  }
  assert.ok(!ids.some((id) => /[*?[]/.test(id)), 'glob aliases are not listed as model ids');
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
});

test('/v1/models/{id}: alias, backend model, id with "/", unknown', needGateway, async () => {
  const { gw } = env;
  for (const id of ['gpt-3.5-turbo', 'llama3.2:latest', 'hf.co/org/repo:Q4']) {
    const r = await jsonOf(await get(`${gw.url}/v1/models/${id}`));
    assert.equal(r.status, 200, `${id}: ${r.text}`);
    assertModelObject(r.json);
    assert.equal(r.json.id, id);
  }
  const enc = await jsonOf(await get(`${gw.url}/v1/models/${encodeURIComponent('hf.co/org/repo:Q4')}`));
  assert.equal(enc.status, 200, `percent-encoded id: ${enc.text}`);
  assert.equal(enc.json.id, 'hf.co/org/repo:Q4');
  const r = await jsonOf(await get(`${gw.url}/v1/models/nope-model`));
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'model_not_found');
  assert.equal(r.json.error.type, 'invalid_request_error');
});

test('/healthz 200 and /readyz 200 with a live backend', needGateway, async () => {
  const { gw } = env;
  const h = await get(`${gw.url}/healthz`);
  assert.equal(h.status, 200);
  await h.arrayBuffer();
  const r = await get(`${gw.url}/readyz`);
  assert.equal(r.status, 200);
  await r.arrayBuffer();
});

test('discovery picks up models added to the backend', needGateway, async () => {
  const { fake, gw } = env;
  fake.setModels(['llama3.2:latest', 'qwen3:latest', 'nomic-embed-text:latest', 'hf.co/org/repo:Q4', 'mistral:7b']);
  try {
    await waitFor(async () => (await models(gw.url)).data.some((m) => m.id === 'mistral:7b'), 5000, 100, 'mistral:7b listed');
    const r = await jsonOf(await chat(gw.url, simpleChat('mistral:7b')));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'mistral:7b');
  } finally {
    fake.setModels(['llama3.2:latest', 'qwen3:latest', 'nomic-embed-text:latest', 'hf.co/org/repo:Q4']);
  }
});

test('health checks never generate: only /api/version, /api/tags, /api/ps (and /api/show)', needGateway, async () => {
  const { fake } = env;
  await waitFor(() => fake.requests.length >= 3, 4000, 50, 'some discovery polls');
  const paths = new Set(fake.requests.map((r) => `${r.method} ${r.path}`));
  for (const p of paths) {
    assert.ok(['GET /api/version', 'HEAD /api/version', 'GET /api/tags', 'GET /api/ps', 'POST /api/show', 'GET /', 'HEAD /'].includes(p), `unexpected poll ${p}`);
  }
  for (const r of fake.requests) assert.equal(r.status, 200, `${r.method} ${r.path} was refused by the fake (Host/Origin?)`);
});

test('expose_backend_models false: only aliases listed', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url], config: { aliases: TEST_ALIASES, expose_backend_models: false } });
  try {
    const ids = (await models(gw.url)).data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['gpt-3.5-turbo', 'text-embedding-3-small']);
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('empty backend model list → data: [] (never null)', needGateway, async () => {
  const fake = await startFake({ models: [] });
  const gw = await startGateway({ backends: [fake.url], config: { expose_backend_models: true } });
  try {
    const j = await models(gw.url);
    assert.deepEqual(j, { object: 'list', data: [] });
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('/readyz 503 when the only backend is down (503s, then refused), back to 200 when it returns', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url], config: { aliases: TEST_ALIASES } });
  try {
    fake.setDown(true);
    await waitFor(async () => (await get(`${gw.url}/readyz`)).status === 503, 6000, 100, '/readyz 503 with the backend answering 503');
    const r = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo')));
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'backend_unavailable');
    assert.equal((await get(`${gw.url}/healthz`)).status, 200, 'healthz stays 200');
    fake.setDown(false);
    await waitFor(async () => (await get(`${gw.url}/readyz`)).status === 200, 6000, 100, '/readyz back to 200');
    const ok = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo')));
    assert.equal(ok.status, 200, ok.text);

    // Now the port is closed: connection refused.
    await fake.close();
    const right = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo')));
    assert.ok([502, 503].includes(right.status), `refused → ${right.status} ${right.text}`);
    assert.ok(['upstream_error', 'backend_unavailable'].includes(right.json?.error?.code), right.text);
    await waitFor(async () => (await get(`${gw.url}/readyz`)).status === 503, 6000, 100, '/readyz 503 with the port closed');
    const later = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true })));
    assert.equal(later.status, 503, later.text);
    assert.equal(later.json.error.code, 'backend_unavailable');
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close().catch(() => {});
  }
});

async function twoBackends(fn) {
  const a = await startFake({ models: ['llama3.2:latest', 'onlya:latest'] });
  const b = await startFake({ models: ['llama3.2:latest', 'onlyb:latest'] });
  const gw = await startGateway({ backends: [{ name: 'A', url: a.url }, { name: 'B', url: b.url }] });
  try {
    await waitFor(async () => {
      const ids = (await models(gw.url)).data.map((m) => m.id);
      return ids.includes('onlya:latest') && ids.includes('onlyb:latest');
    }, 5000, 100, 'both backends discovered');
    a.reset();
    b.reset();
    await fn(a, b, gw);
  } finally {
    assert.equal(await gw.stop(), 0);
    await a.close().catch(() => {});
    await b.close().catch(() => {});
  }
}

test('two backends: a model only one backend has is routed there', needGateway, async () => {
  await twoBackends(async (a, b, gw) => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await jsonOf(await chat(gw.url, simpleChat('onlyb')))).status, 200);
      assert.equal((await jsonOf(await chat(gw.url, simpleChat('onlya')))).status, 200);
    }
    assert.deepEqual(a.chats().map((r) => r.body.model), ['onlya', 'onlya', 'onlya']);
    assert.deepEqual(b.chats().map((r) => r.body.model), ['onlyb', 'onlyb', 'onlyb']);
    // a model both have is spread over both (equal weights, nothing loaded)
    for (let i = 0; i < 6; i++) await (await chat(gw.url, simpleChat('llama3.2'))).arrayBuffer();
    const na = a.chats().filter((r) => r.body.model === 'llama3.2').length;
    const nb = b.chats().filter((r) => r.body.model === 'llama3.2').length;
    assert.equal(na + nb, 6);
  });
});

// Model-aware routing and failover (issue #4); routing.test.mjs has the rest.
test('two backends: a loaded model is preferred (no cold start)', needGateway, async () => {
  await twoBackends(async (a, b, gw) => {
    const loadedAnywhere = async () => {
      const r = await get(`${gw.url}/api/ps`);
      assert.equal(r.status, 200);
      return ((await r.json()).models ?? []).some((m) => m.name.startsWith('llama3.2'));
    };
    assert.equal(await loadedAnywhere(), false, 'nothing loaded yet');
    b.setLoaded(['llama3.2']);
    // discovery saw it: the gateway's /api/ps (loaded anywhere) lists it, and
    // only B has it loaded
    await waitFor(loadedAnywhere, 5000, 50, 'llama3.2 loaded (gateway /api/ps) after B\'s next poll');
    for (let i = 0; i < 4; i++) await (await chat(gw.url, simpleChat('llama3.2'))).arrayBuffer();
    assert.equal(b.chats().length, 4, `A got ${a.chats().length}, B (model loaded) got ${b.chats().length}`);
  });
});

test('failover: a 500 before the first byte is retried on the other backend (never twice on one)', needGateway, async () => {
  await twoBackends(async (a, b, gw) => {
    a.script({ status: 500, error: 'A broke' });
    b.script({ status: 500, error: 'B broke' });
    const both = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
    assert.equal(both.status, 502);
    assert.equal(a.chats().length + b.chats().length, 2, 'tried once on each backend');
    a.reset();
    b.reset();
    a.script({ status: 500, error: 'A broke' });
    let okCount = 0;
    for (let i = 0; i < 4; i++) {
      const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2', { stream: i % 2 === 0 })));
      if (r.status === 200) okCount++;
    }
    assert.equal(okCount, 4, 'every request served, through failover to B when A failed');
  });
});

test('failover: connection refused on one backend → served by the other', needGateway, async () => {
  await twoBackends(async (a, b, gw) => {
    await a.close();
    // before discovery notices, requests that pick A must fail over to B
    let okCount = 0;
    for (let i = 0; i < 4; i++) {
      const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
      if (r.status === 200) okCount++;
    }
    assert.equal(okCount, 4, `${okCount}/4 served with backend A refusing connections`);
    assert.equal(b.chats().length, 4);
  });
});
