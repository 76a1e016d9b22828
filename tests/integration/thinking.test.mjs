// Thinking switches through the gateway (README "Thinking and model
// capabilities"): discovery learns each model's capabilities from /api/show,
// once per digest and a few models per poll; a request that turns thinking on
// reaches Ollama with "think" only where the backend's model can think, on
// every OpenAI and Anthropic dialect, and is decided again on failover; while
// the capabilities are unknown (a show failed) the switch passes as asked.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { needGateway, startGateway, post, waitFor } from './harness.mjs';
import { startFake, DEFAULT_MODELS } from '../fake_ollama/fake.mjs';

const ALIASES = { plain: 'llama3.2', thinker: 'qwen3', 'claude-*': 'llama3.2', 'big-claude-*': 'qwen3' };

/** Start a gateway (debug log: capability lines) on the given fakes. */
function gateway(fakes, config = {}) {
  return startGateway({
    backends: fakes.map((f, i) => ({ name: `fake${i}`, url: f.url })),
    config: { aliases: ALIASES, log: { level: 'debug', access: '-' }, ...config },
  });
}

/** Resolve once discovery has published what model can do on backend. */
function learned(gw, backend, model, from = 0) {
  return gw.waitForStderr(new RegExp(`backend ${backend}: ${model.replace(/[.]/g, '\\.')} (can think|cannot think)`), 10000, from);
}

/** Stop the gateway (it must exit 0: a sanitizer report fails the test) and the fakes. */
async function stopAll(gw, ...fakes) {
  const code = await gw.stop();
  for (const f of fakes) await f.close();
  assert.equal(code, 0, `gateway exited with ${code} on SIGTERM\nstderr:\n${gw.stderr}`);
}

const user = [{ role: 'user', content: 'hi' }];

// One request per dialect with thinking turned on, and where its native
// request lands (the last one the fake received on that path).
const DIALECTS = [
  {
    name: 'chat completions', path: '/v1/chat/completions', native: '/api/chat', want: 'high',
    body: (model, stream) => ({ model, messages: user, reasoning_effort: 'high', stream }),
  },
  {
    name: 'legacy completions', path: '/v1/completions', native: '/api/generate', want: 'high',
    body: (model, stream) => ({ model, prompt: 'hi', reasoning_effort: 'high', stream }),
  },
  {
    name: 'responses', path: '/v1/responses', native: '/api/chat', want: 'high',
    body: (model, stream) => ({ model, input: 'hi', reasoning: { effort: 'high' }, stream }),
  },
  {
    name: 'messages', path: '/v1/messages', native: '/api/chat', want: true,
    body: (model, stream) => ({
      model, max_tokens: 64, messages: user, thinking: { type: 'enabled', budget_tokens: 1024 }, stream,
    }),
  },
];

async function send(gw, d, model, stream) {
  const res = await post(gw.url, d.path, d.body(model, stream), { headers: { 'anthropic-version': '2023-06-01' } });
  const text = await res.text();
  return { status: res.status, text };
}

test('thinking on every dialect: left out for a model that cannot think, sent to one that can', needGateway, async (t) => {
  const fake = await startFake();
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  await learned(gw, 'fake0', 'llama3.2:latest');
  await learned(gw, 'fake0', 'qwen3:latest');

  for (const d of DIALECTS) {
    for (const stream of [false, true]) {
      const what = `${d.name}${stream ? ' streamed' : ''}`;
      const small = d.name === 'messages' ? 'claude-sonnet-4-5' : 'plain';
      const big = d.name === 'messages' ? 'big-claude-x' : 'thinker';

      fake.reset();
      const r1 = await send(gw, d, small, stream);
      assert.equal(r1.status, 200, `${what} to llama3.2: ${r1.text}`);
      const n1 = fake.requestsTo(d.native);
      assert.equal(n1.length, 1, `${what}: one native request`);
      assert.equal(n1[0].body.model, 'llama3.2');
      assert.equal('think' in n1[0].body, false, `${what}: no think reaches a model without thinking`);
      assert.equal(n1[0].status, 200, `${what}: the backend answered 200`);
      assert.doesNotMatch(r1.text, /thinking_delta|"reasoning(_content)?":|"type":"(reasoning|thinking)"/, `${what}: no reasoning in the answer`);

      fake.reset();
      const r2 = await send(gw, d, big, stream);
      assert.equal(r2.status, 200, `${what} to qwen3: ${r2.text}`);
      const n2 = fake.requestsTo(d.native);
      assert.equal(n2.length, 1);
      assert.equal(n2[0].body.model, 'qwen3');
      assert.equal(n2[0].body.think, d.want, `${what}: think reaches a thinking model`);
    }
  }
  // The debug line says what was left out, and for which backend.
  await gw.waitForStderr(/request \S+: llama3\.2 on backend fake0 cannot think: its thinking switch is left out/);
});

test('thinking turned off still goes, to any model; no switch means no think', needGateway, async (t) => {
  const fake = await startFake();
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  await learned(gw, 'fake0', 'llama3.2:latest');
  const off = await post(gw.url, '/v1/chat/completions', { model: 'plain', messages: user, reasoning_effort: 'none' });
  assert.equal(off.status, 200, await off.text());
  assert.equal(fake.chats().at(-1).body.think, false);
  const disabled = await post(gw.url, '/v1/messages', { model: 'claude-x', max_tokens: 8, messages: user, thinking: { type: 'disabled' } });
  assert.equal(disabled.status, 200, await disabled.text());
  assert.equal(fake.chats().at(-1).body.think, false);
  const none = await post(gw.url, '/v1/completions', { model: 'plain', prompt: 'hi' });
  assert.equal(none.status, 200, await none.text());
  assert.equal('think' in fake.requestsTo('/api/generate').at(-1).body, false);
  // Ollama's own routes are relayed as the client wrote them: its 400 comes back.
  const native = await post(gw.url, '/api/chat', { model: 'plain', messages: user, think: true, stream: false });
  assert.equal(native.status, 400);
  assert.match((await native.json()).error, /does not support thinking/);
  assert.equal(fake.chats().at(-1).body.think, true);
});

test('a model pulled again with a new digest is asked again; an unchanged one is not', needGateway, async (t) => {
  const fake = await startFake();
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  await learned(gw, 'fake0', 'llama3.2:latest');
  await learned(gw, 'fake0', 'qwen3:latest');
  fake.reset();

  // llama3.2 re-pulled: a new digest, and now it can think.
  const from = gw.stderr.length;
  fake.setModels(DEFAULT_MODELS.map((m) => (m.name === 'llama3.2:latest'
    ? { ...m, capabilities: ['completion', 'tools', 'thinking'], digest: 'a'.repeat(64) }
    : m)));
  const line = await learned(gw, 'fake0', 'llama3.2:latest', from);
  assert.match(line.line, /can think/);
  const shows = fake.requestsTo('/api/show').map((r) => r.body.model);
  assert.deepEqual(shows, ['llama3.2:latest'], 'only the re-pulled model is asked again');

  const r = await post(gw.url, '/v1/chat/completions', { model: 'plain', messages: user, reasoning_effort: 'low' });
  assert.equal(r.status, 200, await r.text());
  assert.equal(fake.chats().at(-1).body.think, 'low', 'think now reaches it');

  // Three more polls: still nobody asked again (the digests are unchanged).
  const tags = fake.requestsTo('/api/tags').length;
  await waitFor(() => fake.requestsTo('/api/tags').length >= tags + 3, 10000, 20, 'three more polls');
  assert.deepEqual(fake.requestsTo('/api/show').map((x) => x.body.model), ['llama3.2:latest']);
});

test('a failing /api/show leaves the capability unknown: think passes as asked, and the show is retried', needGateway, async (t) => {
  const fake = await startFake();
  fake.scriptPath('/api/show', { status: 500, error: 'show is broken' });
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  await gw.waitForStderr(/backend fake0: \/api\/show for \S+ failed \(\/api\/show answered HTTP 500\); asked again later/, 10000);
  // A failed show ends that poll's asking: one show per poll, not all four.
  const polls = fake.requestsTo('/api/tags').length;
  assert.ok(fake.requestsTo('/api/show').length <= polls, `${fake.requestsTo('/api/show').length} shows in ${polls} polls`);

  const r = await post(gw.url, '/v1/messages', { model: 'claude-x', max_tokens: 8, messages: user, thinking: { type: 'enabled' } });
  assert.equal(r.status, 400, 'Ollama refused the think the gateway could not know to leave out');
  assert.match((await r.json()).error.message, /does not support thinking/);
  assert.equal(fake.chats().at(-1).body.think, true);

  // The show works again: asked at a later poll, and think is left out.
  const from = gw.stderr.length;
  fake.scriptPath('/api/show', null);
  await learned(gw, 'fake0', 'llama3.2:latest', from);
  const ok = await post(gw.url, '/v1/messages', { model: 'claude-x', max_tokens: 8, messages: user, thinking: { type: 'enabled' } });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal('think' in fake.chats().at(-1).body, false);
});

test('discovery asks /api/show about a few models per poll, loaded ones first, each once', needGateway, async (t) => {
  const names = Array.from({ length: 13 }, (_, i) => `m${i}:latest`);
  const fake = await startFake({ models: names, loaded: ['m12'] });
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  const shown = () => new Set(fake.requestsTo('/api/show').map((r) => r.body.model));
  await waitFor(() => shown().size === names.length, 20000, 20, 'every model shown');
  const shows = fake.requestsTo('/api/show');
  assert.equal(shows.length, names.length, 'each model asked once');
  assert.equal(shows[0].body.model, 'm12:latest', 'the loaded model first');
  // Per poll of /api/tags, 4 shows at most (4, 4, 4, 1 when none fails).
  const runs = [];
  for (const r of fake.requests) {
    if (r.path === '/api/tags') runs.push(0);
    else if (r.path === '/api/show') runs[runs.length - 1]++;
  }
  const asking = runs.filter((n) => n > 0);
  assert.ok(asking.every((n) => n <= 4), `at most 4 shows per poll: ${runs}`);
  assert.equal(asking[0], 4, `the first poll asks 4: ${runs}`);
  assert.ok(asking.length >= 4, `13 models take 4 polls or more: ${runs}`);
});

test('a model a request was routed to while unknown is asked about at the next poll', needGateway, async (t) => {
  const names = Array.from({ length: 13 }, (_, i) => `m${i}:latest`);
  const fake = await startFake({ models: names });
  const gw = await gateway([fake]);
  t.after(() => stopAll(gw, fake));
  // The start's poll asked about 4; m12 comes last in turn (after three more polls).
  const r = await post(gw.url, '/v1/chat/completions', { model: 'm12', messages: user });
  assert.equal(r.status, 200, await r.text());
  const at = fake.requests.indexOf(fake.chats()[0]);
  await waitFor(() => fake.requestsTo('/api/show').some((x) => x.body.model === 'm12:latest'), 10000, 20, 'm12 shown');
  const after = fake.requests.slice(at);
  const shownAt = after.findIndex((x) => x.path === '/api/show' && x.body.model === 'm12:latest');
  const polls = after.slice(0, shownAt).filter((x) => x.path === '/api/tags').length;
  assert.ok(polls <= 2, `asked within the poll after the request (${polls} polls in between)`);
  assert.equal(fake.requestsTo('/api/show').filter((x) => x.body.model === 'm12:latest').length, 1);
});

test('failover decides again for the other backend', needGateway, async (t) => {
  // The same name on two boxes: on fake0 (loaded, so chosen first) it can
  // think but fake0 fails with a 503; on fake1 it cannot.
  const a = await startFake({ models: [{ name: 'dual:latest', capabilities: ['completion', 'thinking'] }], loaded: ['dual'] });
  const b = await startFake({ models: [{ name: 'dual:latest', capabilities: ['completion'] }] });
  const gw = await gateway([a, b]);
  t.after(() => stopAll(gw, a, b));
  await learned(gw, 'fake0', 'dual:latest');
  await learned(gw, 'fake1', 'dual:latest');
  a.script({ status: 503, error: 'server busy' });
  const r = await post(gw.url, '/v1/chat/completions', { model: 'dual', messages: user, reasoning_effort: 'high' });
  assert.equal(r.status, 200, await r.text());
  assert.equal(a.chats().at(-1).body.think, 'high', 'fake0 can think: think sent');
  assert.equal(b.chats().length, 1, 'failed over to fake1');
  assert.equal('think' in b.chats()[0].body, false, 'fake1 cannot: think left out');

  // And the other way round: fake1 (cannot) is chosen first and fails,
  // fake0 (can) answers.
  a.script(null);
  a.setLoaded([]);
  b.setLoaded(['dual']);
  const pa = a.requestsTo('/api/ps').length;
  const pb = b.requestsTo('/api/ps').length;
  await waitFor(() => a.requestsTo('/api/ps').length >= pa + 2 && b.requestsTo('/api/ps').length >= pb + 2,
    10000, 20, 'discovery saw the loaded model move to fake1');
  a.reset();
  b.reset();
  b.script({ status: 503, error: 'server busy' });
  const r2 = await post(gw.url, '/v1/chat/completions', { model: 'dual', messages: user, reasoning_effort: 'high' });
  assert.equal(r2.status, 200, await r2.text());
  assert.equal(b.chats().length, 1, 'fake1 first');
  assert.equal('think' in b.chats()[0].body, false, 'fake1 without think');
  assert.equal(a.chats().length, 1, 'then fake0');
  assert.equal(a.chats()[0].body.think, 'high', 'fake0 with think');
});
