// POST /v1/messages (Anthropic Messages API) through the real gateway to the
// fake Ollama: whole and streamed messages, the event sequence, tool use both
// ways, thinking, stop reasons, Anthropic-shaped errors before and after the
// first event (401, 404, 413, 529), the ping keep-alive, a claude-* alias, and
// GET /v1/models in Anthropic's shape.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, startGateway, post, jsonOf, readSSE, sseRecords, httpRequest, waitFor,
} from './harness.mjs';
import { startFake } from '../fake_ollama/fake.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: {
    aliases: { 'claude-*': 'llama3.2' },
    limits: { keepalive_interval_s: 1, first_token_timeout_s: 20, idle_stream_timeout_s: 20, max_body_bytes: 65536 },
  },
});

const V = { 'anthropic-version': '2023-06-01' };

function messages(body, { headers = {}, query = '' } = {}) {
  return post(env.gw.url, `/v1/messages${query}`, body, { headers: { ...V, ...headers } });
}

function simple(extra = {}) {
  return { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Say hello' }], ...extra };
}

/** The parsed events of a streamed answer: [{event, data}] (pings included). */
async function eventsOf(res) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const out = [];
  for await (const r of sseRecords(res.body)) {
    if (r.data === null) continue;
    assert.ok(!r.partial, 'every event ends with a blank line');
    const data = JSON.parse(r.data);
    assert.equal(data.type, r.event, 'the data type names the event');
    out.push({ event: r.event, data });
  }
  return out;
}

/** Fold events as the SDK's MessageStream does; checks the order rules on the way. */
function accumulate(events) {
  let msg = null;
  const open = new Set();
  for (const { event, data } of events) {
    if (event === 'ping') continue;
    if (event === 'message_start') {
      assert.equal(msg, null, 'one message_start');
      msg = structuredClone(data.message);
      continue;
    }
    assert.ok(msg, `${event} after message_start`);
    if (event === 'content_block_start') {
      assert.equal(data.index, msg.content.length, 'dense block indexes');
      assert.equal(open.size, 0, 'one block open at a time');
      open.add(data.index);
      msg.content.push({ ...data.content_block, _json: '' });
    } else if (event === 'content_block_delta') {
      assert.ok(open.has(data.index), 'delta on the open block');
      const b = msg.content[data.index];
      const d = data.delta;
      if (d.type === 'text_delta') { assert.equal(b.type, 'text'); b.text += d.text; }
      else if (d.type === 'thinking_delta') { assert.equal(b.type, 'thinking'); b.thinking += d.thinking; }
      else if (d.type === 'input_json_delta') { assert.equal(b.type, 'tool_use'); b._json += d.partial_json; }
      else assert.fail(`unknown delta ${d.type}`);
    } else if (event === 'content_block_stop') {
      assert.ok(open.delete(data.index), 'stop of the open block');
    } else if (event === 'message_delta') {
      assert.equal(open.size, 0, 'blocks closed before message_delta');
      msg.stop_reason = data.delta.stop_reason;
      msg.stop_sequence = data.delta.stop_sequence;
      msg.usage = { ...msg.usage, ...data.usage };
    } else if (event === 'message_stop') {
      msg._stopped = true;
    } else {
      assert.fail(`unexpected event ${event}`);
    }
  }
  for (const b of msg?.content ?? []) {
    if (b.type === 'tool_use') b.input = JSON.parse(b._json);
    delete b._json;
  }
  return msg;
}

const WEATHER = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  cache_control: { type: 'ephemeral' },
};

// ---------------------------------------------------------------- whole messages

test('non-streamed: a message object; the native body Ollama got', needGateway, async () => {
  const { fake } = env;
  const res = await messages(simple({
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Be kind.' }],
    temperature: 0.2, top_p: 0.9, top_k: 40, stop_sequences: ['END'],
    metadata: { user_id: 'u1' }, service_tier: 'auto', context_management: { edits: [] },
  }), { query: '?beta=true', headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } });
  const r = await jsonOf(res);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const m = r.json;
  assert.match(m.id, /^msg_[A-Za-z0-9]{8,}$/);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'claude-sonnet-4-5', 'the model as asked');
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from llama3.2' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));

  const sent = fake.chats().at(-1).body;
  assert.equal(sent.model, 'llama3.2', 'claude-* alias → llama3.2');
  assert.equal(sent.stream, false);
  assert.deepEqual(sent.messages, [
    { role: 'system', content: 'Be brief.\nBe kind.' },
    { role: 'user', content: 'Say hello' },
  ]);
  assert.deepEqual(sent.options, { temperature: 0.2, top_p: 0.9, top_k: 40, num_predict: 256, stop: ['END'] });
  for (const k of ['metadata', 'service_tier', 'context_management', 'system', 'max_tokens']) {
    assert.equal(sent[k], undefined, `${k} not forwarded`);
  }
  await waitFor(() => env.gw.accessLog('/v1/messages').length > 0, 5000, 10, 'the access log line');
  const log = env.gw.accessLog('/v1/messages').at(-1);
  assert.equal(log.status, 200);
  assert.equal(log.model, 'claude-sonnet-4-5');
  assert.equal(log.upstream_model, 'llama3.2');
});

test('structured output: output_config.format json_schema → Ollama format', needGateway, async () => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  env.fake.script({ tokens: ['{"city":"Paris"}'] });
  const m = (await jsonOf(await messages(simple({ output_config: { effort: 'low', format: { type: 'json_schema', schema } } })))).json;
  assert.deepEqual(env.fake.chats().at(-1).body.format, schema);
  assert.deepEqual(JSON.parse(m.content[0].text), { city: 'Paris' });
});

test('max_tokens reached → stop_reason max_tokens', needGateway, async () => {
  env.fake.script({ tokens: ['a', 'b'], doneReason: 'length' });
  const m = (await jsonOf(await messages(simple({ max_tokens: 2 })))).json;
  assert.equal(m.stop_reason, 'max_tokens');
  env.fake.script({ tokens: ['a', 'b'], doneReason: 'length' });
  const ev = await eventsOf(await messages(simple({ max_tokens: 2, stream: true })));
  assert.equal(accumulate(ev).stop_reason, 'max_tokens');
});

// ---------------------------------------------------------------- streams

test('streamed: the exact event sequence, text accumulated, usage in message_delta', needGateway, async () => {
  const ev = await eventsOf(await messages(simple({ stream: true })));
  assert.deepEqual(ev.map((e) => e.event), [
    'message_start', 'content_block_start',
    'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  const start = ev[0].data.message;
  assert.match(start.id, /^msg_/);
  assert.equal(start.model, 'claude-sonnet-4-5');
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.deepEqual(ev[1].data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  assert.deepEqual(ev[2].data, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } });
  const m = accumulate(ev);
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from llama3.2' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
  assert.equal(env.fake.chats().at(-1).body.stream, true);
});

test('thinking: enabled → think: true; a thinking block before the text, whole and streamed', needGateway, async () => {
  const body = {
    model: 'qwen3', max_tokens: 100, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'Why?' }],
  };
  const m = (await jsonOf(await messages(body))).json;
  assert.equal(env.fake.chats().at(-1).body.think, true);
  assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(m.content[0].thinking, 'Thinking about it');
  assert.equal(m.content[1].text, 'Hello from qwen3');

  const ev = await eventsOf(await messages({ ...body, stream: true }));
  const s = accumulate(ev);
  assert.deepEqual(s.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(s.content[0].thinking, 'Thinking about it');
  assert.equal(s.content[1].text, 'Hello from qwen3');
  assert.ok(ev.some((e) => e.data.delta?.type === 'thinking_delta'));
});

test('tool use round trip: tool_use out (whole and streamed), tool_use + tool_result back in', needGateway, async () => {
  const { fake } = env;
  const ask = simple({ tools: [WEATHER, { type: 'web_search_20250305', name: 'web_search' }], tool_choice: { type: 'auto' } });
  fake.script({ tokens: ['Checking.'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
  const m = (await jsonOf(await messages(ask))).json;
  const sent = fake.chats().at(-1).body;
  assert.deepEqual(sent.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER.input_schema } }],
    'the custom tool as a function; Anthropic server tools left out');
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content[0].type, 'text');
  const tu = m.content[1];
  assert.equal(tu.type, 'tool_use');
  assert.match(tu.id, /^toolu_[A-Za-z0-9]{8,}$/);
  assert.equal(tu.name, 'get_weather');
  assert.deepEqual(tu.input, { city: 'Paris' });

  fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] });
  const ev = await eventsOf(await messages({ ...ask, stream: true }));
  const s = accumulate(ev);
  assert.equal(s.stop_reason, 'tool_use');
  assert.equal(s.content.length, 1);
  assert.equal(s.content[0].name, 'get_weather');
  assert.deepEqual(s.content[0].input, { city: 'Oslo' });
  assert.ok(ev.some((e) => e.data.delta?.type === 'input_json_delta'));

  // the client runs the tool and sends the result back
  const back = simple({
    tools: [WEATHER],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: tu.id, name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: [{ type: 'text', text: '18°C, sunny' }] }, { type: 'text', text: 'Thanks' }] },
    ],
  });
  const r2 = await jsonOf(await messages(back));
  assert.equal(r2.status, 200, r2.text);
  const sent2 = fake.chats().at(-1).body;
  assert.deepEqual(sent2.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: 'Checking.', tool_calls: [{ id: tu.id, function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: '18°C, sunny', tool_call_id: tu.id, tool_name: 'get_weather' },
    { role: 'user', content: 'Thanks' },
  ]);
});

test('tool_choice: none drops the tools, tool sends only that one', needGateway, async () => {
  const other = { name: 'other', input_schema: { type: 'object' } };
  await (await messages(simple({ tools: [WEATHER, other], tool_choice: { type: 'none' } }))).arrayBuffer();
  assert.equal(env.fake.chats().at(-1).body.tools, undefined);
  await (await messages(simple({ tools: [WEATHER, other], tool_choice: { type: 'tool', name: 'other' } }))).arrayBuffer();
  assert.deepEqual(env.fake.chats().at(-1).body.tools.map((t) => t.function.name), ['other']);
});

test('ping keep-alive while the first token is awaited', needGateway, async () => {
  env.fake.script({ tokens: ['late'], firstLineDelayMs: 2600 });
  const ev = await eventsOf(await messages(simple({ stream: true })));
  const firstReal = ev.findIndex((e) => e.event !== 'ping');
  assert.ok(firstReal >= 1, `pings before message_start: ${ev.map((e) => e.event)}`);
  assert.deepEqual(ev[0].data, { type: 'ping' });
  assert.equal(ev[firstReal].event, 'message_start');
  assert.equal(accumulate(ev).content[0].text, 'late');
});

test('a client that leaves mid-stream: the upstream request is closed at once', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: Array.from({ length: 400 }, (_, i) => ` t${i}`), delayMs: 25 });
  const ac = new AbortController();
  const res = await post(env.gw.url, '/v1/messages', simple({ stream: true }), { headers: V, signal: ac.signal });
  assert.equal(res.status, 200);
  let deltas = 0;
  let tAbort = 0;
  try {
    for await (const r of sseRecords(res.body)) {
      if (r.event === 'content_block_delta' && ++deltas === 5) {
        tAbort = performance.now();
        ac.abort();
      }
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  assert.ok(tAbort > 0, 'five deltas before leaving');
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 3000, 5, 'the fake saw the gateway close');
  assert.ok(rec.closedAt - tAbort < 500, `upstream closed ${Math.round(rec.closedAt - tAbort)} ms after the client left`);
  assert.ok(rec.linesWritten < 200, 'generation stopped early');
  await waitFor(() => env.gw.accessLog('/v1/messages').some((l) => l.error === 'client_closed'), 5000, 10, 'the access log says the client left');
});

// ---------------------------------------------------------------- errors

async function expectAnthropicError(res, status, type) {
  const r = await jsonOf(res);
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(r.json ?? {}).sort(), ['error', 'type'], r.text);
  assert.equal(r.json.type, 'error');
  assert.deepEqual(Object.keys(r.json.error).sort(), ['message', 'type'], r.text);
  assert.equal(r.json.error.type, type, r.text);
  assert.ok(r.json.error.message.length > 0);
  return r;
}

test('errors before the stream are Anthropic-shaped: 400, 404, 413', needGateway, async () => {
  await expectAnthropicError(await messages('{"model": '), 400, 'invalid_request_error');
  const r = await expectAnthropicError(await messages(simple({ temperature: 'hot' })), 400, 'invalid_request_error');
  assert.match(r.json.error.message, /temperature/);
  await expectAnthropicError(await messages(simple({ messages: [{ role: 'system', content: 'x' }] })), 400, 'invalid_request_error');
  await expectAnthropicError(await messages(simple({ model: 'no-such-model' })), 404, 'not_found_error');
  await expectAnthropicError(await messages(simple({ messages: [{ role: 'user', content: 'x'.repeat(70000) }] })), 413, 'request_too_large');
  await expectAnthropicError(await post(env.gw.url, '/v1/messages/count_tokens', simple()), 404, 'not_found_error');
  // a streamed request refused before its first event: a plain JSON error too
  await expectAnthropicError(await messages(simple({ model: 'no-such-model', stream: true })), 404, 'not_found_error');
  assert.equal(env.fake.chats().length, 0, 'nothing reached the backend');
});

test('an error after the first event is an event: error frame, and no message_stop', needGateway, async () => {
  env.fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 2, errorMessage: 'model runner crashed' });
  const ev = await eventsOf(await messages(simple({ stream: true })));
  const names = ev.map((e) => e.event);
  assert.equal(names[0], 'message_start');
  assert.equal(names.at(-1), 'error', names.join());
  assert.ok(!names.includes('message_stop'));
  assert.equal(ev.at(-1).data.error.type, 'api_error');
  assert.match(ev.at(-1).data.error.message, /model runner crashed/);
});

test('backend 503 before the first event → 529 overloaded_error', needGateway, async () => {
  env.fake.script({ status: 503, error: 'server busy' });
  const r = await expectAnthropicError(await messages(simple()), 529, 'overloaded_error');
  await waitFor(() => env.gw.accessLog('/v1/messages').at(-1)?.status === 529, 5000, 10, 'logged as 529');
  assert.ok(r.headers.get('x-request-id'));
});

test('529 overloaded_error when the queue is full and when every backend is down', needGateway, async () => {
  const fake = await startFake({});
  const gw = await startGateway({
    backends: [{ name: 'only', url: fake.url, max_inflight: 1, max_queue: 0 }],
    config: { aliases: { 'claude-*': 'llama3.2' }, discovery_interval_s: 1 },
  });
  try {
    fake.script({ tokens: ['slow'], firstLineDelayMs: 3000 });
    const first = post(gw.url, '/v1/messages', simple(), { headers: V });
    await waitFor(() => fake.chats().length === 1, 5000, 10, 'the first request reached the backend');
    await expectAnthropicError(await post(gw.url, '/v1/messages', simple(), { headers: V }), 529, 'overloaded_error');
    assert.equal((await first).status, 200);
    fake.script(null);
    fake.setDown(true);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 503, 8000, 100, 'the backend marked down');
    await expectAnthropicError(await post(gw.url, '/v1/messages', simple({ stream: true }), { headers: V }), 529, 'overloaded_error');
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('keys: x-api-key and Bearer both work; a bad x-api-key is a 401 authentication_error; scopes are 403', needGateway, async () => {
  const fake = await startFake({});
  const gw = await startGateway({
    backends: [{ name: 'f', url: fake.url }],
    config: { aliases: { 'claude-*': 'llama3.2' }, limits: { auth_failures_per_minute: 0 } },
    keys: [{ name: 'claude', models: ['claude-*'] }],
  });
  try {
    const secret = gw.secret('claude');
    const send = (headers, body = simple()) => post(gw.url, '/v1/messages', body, { headers: { ...V, ...headers } });
    assert.equal((await send({ 'x-api-key': secret })).status, 200);
    assert.equal((await send({ authorization: `Bearer ${secret}` })).status, 200);
    await expectAnthropicError(await send({ 'x-api-key': 'og-nope-nope' }), 401, 'authentication_error');
    await expectAnthropicError(await send({}), 401, 'authentication_error');
    await expectAnthropicError(await send({ 'x-api-key': secret }, simple({ model: 'llama3.2' })), 403, 'permission_error');
    await waitFor(() => gw.accessLog('/v1/messages').length >= 5, 5000, 10, 'the access log lines');
    const log = gw.accessLog('/v1/messages').at(0);
    assert.equal(log.key_name, 'claude');
    // the Anthropic model list honours the key's scopes
    const list = await httpRequest(gw.url, '/v1/models', { headers: { ...V, 'x-api-key': secret } });
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.data, [], 'claude-* is a glob, llama3.2 is out of scope');
    const denied = await httpRequest(gw.url, '/v1/models', { headers: V });
    assert.equal(denied.status, 401);
    assert.equal(denied.json.error.type, 'authentication_error');
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

// ---------------------------------------------------------------- models

test('GET /v1/models with anthropic-version: Anthropic list shape; without it OpenAI', needGateway, async () => {
  const a = await httpRequest(env.gw.url, '/v1/models', { headers: V });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(Object.keys(a.json).sort(), ['data', 'first_id', 'has_more', 'last_id']);
  assert.equal(a.json.has_more, false);
  assert.ok(a.json.data.length >= 3);
  for (const m of a.json.data) {
    assert.deepEqual(Object.keys(m).sort(), ['created_at', 'display_name', 'id', 'type']);
    assert.equal(m.type, 'model');
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  assert.equal(a.json.first_id, a.json.data[0].id);
  assert.equal(a.json.last_id, a.json.data.at(-1).id);
  assert.ok(a.json.data.some((m) => m.id === 'llama3.2:latest'));

  const one = await httpRequest(env.gw.url, '/v1/models/qwen3:latest', { headers: V });
  assert.equal(one.json.type, 'model');
  assert.equal(one.json.id, 'qwen3:latest');
  const missing = await httpRequest(env.gw.url, '/v1/models/nope', { headers: V });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.type, 'not_found_error');

  const o = await httpRequest(env.gw.url, '/v1/models');
  assert.equal(o.json.object, 'list');
  assert.equal(o.json.data[0].object, 'model');
});
