// Self-test of the fake Ollama (no gateway needed):
//   node --test tests/fake_ollama/fake.test.mjs
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startFake, modelKey } from './fake.mjs';
import { readSSE, sseRecords } from '../integration/harness.mjs';

let fake;
before(async () => { fake = await startFake(); });
after(async () => { await fake.close(); });
beforeEach(() => { fake.reset(); fake.setModels(['llama3.2:latest', 'qwen3:latest', 'nomic-embed-text:latest', 'hf.co/org/repo:Q4']); fake.setLoaded([]); });

const RFC3339NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

async function postJSON(pathname, body, headers = {}) {
  return fetch(fake.url + pathname, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
}

async function ndjson(res) {
  const text = await res.text();
  assert.ok(text.endsWith('\n'), 'NDJSON ends with a newline');
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l));
}

const user = [{ role: 'user', content: 'hi' }];

test('GET and HEAD / say Ollama is running', async () => {
  let r = await fetch(`${fake.url}/`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'Ollama is running');
  r = await fetch(`${fake.url}/`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '');
});

test('/api/version, /api/tags, /api/ps, /api/show', async () => {
  let r = await fetch(`${fake.url}/api/version`);
  assert.deepEqual(await r.json(), { version: '0.33.0' });
  r = await fetch(`${fake.url}/api/tags`);
  assert.match(r.headers.get('content-type'), /^application\/json; charset=utf-8$/);
  const tags = await r.json();
  assert.deepEqual(tags.models.map((m) => m.name),
    ['llama3.2:latest', 'qwen3:latest', 'nomic-embed-text:latest', 'hf.co/org/repo:Q4']);
  const m = tags.models[0];
  assert.equal(m.model, 'llama3.2:latest');
  assert.match(m.digest, /^[0-9a-f]{64}$/);
  assert.equal(typeof m.size, 'number');
  assert.ok(!Number.isNaN(Date.parse(m.modified_at)));
  assert.deepEqual(Object.keys(m.details).sort(),
    ['families', 'family', 'format', 'parameter_size', 'parent_model', 'quantization_level']);

  r = await fetch(`${fake.url}/api/ps`);
  assert.deepEqual(await r.json(), { models: [] });
  fake.setLoaded(['llama3.2']);
  r = await fetch(`${fake.url}/api/ps`);
  const ps = await r.json();
  assert.equal(ps.models.length, 1);
  assert.equal(ps.models[0].name, 'llama3.2:latest');
  assert.ok(ps.models[0].expires_at && ps.models[0].size_vram > 0 && ps.models[0].context_length > 0);

  r = await postJSON('/api/show', { model: 'qwen3' });
  assert.equal(r.status, 200);
  const show = await r.json();
  assert.deepEqual(show.capabilities, ['completion', 'tools', 'thinking']);
  assert.equal(show.model_info['qwen3.context_length'], 40960);
  r = await postJSON('/api/show', { model: 'nope' });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { error: "model 'nope' not found" });

  fake.setModels(['a', { name: 'b:7b', capabilities: ['completion'] }]);
  r = await fetch(`${fake.url}/api/tags`);
  assert.deepEqual((await r.json()).models.map((x) => x.name), ['a:latest', 'b:7b']);
  fake.setModels([]);
  r = await fetch(`${fake.url}/api/tags`);
  assert.deepEqual(await r.json(), { models: [] });
});

test('unknown route 404 text, wrong method 405', async () => {
  let r = await fetch(`${fake.url}/api/nope`);
  assert.equal(r.status, 404);
  assert.equal(await r.text(), '404 page not found');
  r = await fetch(`${fake.url}/api/chat`);
  assert.equal(r.status, 405);
});

test('modelKey normalises like Ollama', () => {
  assert.equal(modelKey('Llama3.2'), 'llama3.2:latest');
  assert.equal(modelKey('hf.co/org/repo:Q4'), 'hf.co/org/repo:q4');
  assert.equal(modelKey('hf.co/org/repo'), 'hf.co/org/repo:latest');
});

test('chat streams NDJSON when stream is absent (default true)', async () => {
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  assert.equal(r.headers.get('transfer-encoding'), 'chunked');
  const lines = await ndjson(r);
  assert.equal(lines.length, 4);
  assert.deepEqual(lines.slice(0, 3).map((l) => l.message), [
    { role: 'assistant', content: 'Hello' },
    { role: 'assistant', content: ' from' },
    { role: 'assistant', content: ' llama3.2' },
  ]);
  for (const l of lines) {
    assert.equal(l.model, 'llama3.2');
    assert.match(l.created_at, RFC3339NANO);
  }
  assert.deepEqual(lines.slice(0, 3).map((l) => l.done), [false, false, false]);
  const d = lines[3];
  assert.equal(d.done, true);
  assert.equal(d.done_reason, 'stop');
  assert.deepEqual(d.message, { role: 'assistant', content: '' });
  assert.equal(d.prompt_eval_count, 26);
  assert.equal(d.eval_count, 3);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) {
    assert.ok(Number.isInteger(d[k]) && d[k] > 0, k);
  }
  assert.equal('done_reason' in lines[0], false);
  assert.equal('eval_count' in lines[0], false);
  const rec = fake.chats()[0];
  assert.equal(rec.finished, true);
  assert.equal(rec.closedAt, null);
  assert.equal(rec.status, 200);
  assert.equal(rec.linesWritten, 4);
  assert.deepEqual(rec.body, { model: 'llama3.2', messages: user });
});

test('chat stream:false answers one aggregated object', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], thinking: ['x', 'y'], toolCalls: [{ name: 'f', arguments: { q: 1 } }] });
  let r = await postJSON('/api/chat', { model: 'qwen3', messages: user, stream: false });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  let o = await r.json();
  assert.deepEqual(o.message, { role: 'assistant', content: 'abc', thinking: 'xy' }, 'no tool_calls without tools');
  assert.equal(o.done, true);
  assert.equal(o.done_reason, 'stop');
  assert.equal(o.eval_count, 6);
  r = await postJSON('/api/chat', {
    model: 'qwen3', messages: user, stream: false, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
  });
  o = await r.json();
  assert.equal(o.message.tool_calls.length, 1);
  assert.deepEqual(o.message.tool_calls[0].function, { index: 0, name: 'f', arguments: { q: 1 } });
  assert.match(o.message.tool_calls[0].id, /^call_[a-z0-9]{8}$/);
});

test('thinking model thinks by default, not with think:false', async () => {
  let lines = await ndjson(await postJSON('/api/chat', { model: 'qwen3', messages: user }));
  assert.deepEqual(lines.map((l) => l.message.thinking ?? null), ['Thinking', ' about', ' it', null, null, null, null]);
  lines = await ndjson(await postJSON('/api/chat', { model: 'qwen3', messages: user, think: false }));
  assert.equal(lines.length, 4);
  assert.ok(lines.every((l) => !('thinking' in l.message)));
});

test('errors: model missing/unknown, bad JSON, bad fields, capabilities', async () => {
  const cases = [
    [{ messages: user }, 400, 'model is required'],
    [{ model: '', messages: user }, 400, 'model is required'],
    [{ model: 'nope', messages: user }, 404, "model 'nope' not found"],
    ['{"model":', 400, /^invalid character/],
    ['', 400, 'missing request body'],
    [{ model: 'llama3.2', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }, 400, /cannot unmarshal array/],
    [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x', images: ['data:image/png;base64,AAAA'] }] }, 400, /illegal base64/],
    [{ model: 'llama3.2', messages: [{ role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{"a":1}' } }] }] }, 400, /cannot unmarshal string/],
    [{ model: 'llama3.2', messages: user, stream: 'yes' }, 400, /cannot unmarshal string/],
    [{ model: 'llama3.2', messages: user, think: true }, 400, '"llama3.2" does not support thinking'],
    [{ model: 'llama3.2', messages: user, think: 'extreme' }, 400, /^invalid think value/],
    [{ model: 'nomic-embed-text', messages: user }, 400, '"nomic-embed-text" does not support chat'],
    [{ model: 'hf.co/org/repo:Q4', messages: user, tools: [{ type: 'function', function: { name: 'f' } }] }, 400, /does not support tools$/],
    [{ model: 'llama3.2', messages: user, options: { temperature: '0.5' } }, 500, 'option "temperature" must be of type float32'],
    [{ model: 'llama3.2', messages: user, options: { stop: 'x' } }, 500, 'option "stop" must be of type array'],
    [{ model: 'llama3.2', messages: user, format: 'xml' }, 500, /^invalid format/],
  ];
  for (const [body, status, msg] of cases) {
    const r = await postJSON('/api/chat', body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
    const j = await r.json();
    assert.deepEqual(Object.keys(j), ['error']);
    if (msg instanceof RegExp) assert.match(j.error, msg); else assert.equal(j.error, msg);
  }
  // valid variants are accepted
  for (const body of [
    { model: 'LLAMA3.2:latest', messages: user, stream: false },
    { model: 'llama3.2', messages: [{ role: 'user', content: 'x', images: ['iVBORw0KGgo='] }], stream: false },
    { model: 'llama3.2', messages: user, think: false, stream: false, format: 'json', options: { temperature: 0.2, stop: ['a'] } },
    { model: 'qwen3', messages: user, think: 'high', stream: false, format: { type: 'object' } },
    { model: 'hf.co/org/repo:Q4', messages: user, stream: false },
  ]) {
    const r = await postJSON('/api/chat', body);
    assert.equal(r.status, 200, `${JSON.stringify(body)}: ${await r.clone().text()}`);
    await r.arrayBuffer();
  }
});

test('Host and Origin gating: 403 with an empty body', async () => {
  // fetch forbids setting Host; use node:http
  const status = (headers) => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fake.port, path: '/api/version', headers }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve([res.statusCode, b]));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(await status({ Host: 'evil.example.com' }), [403, '']);
  assert.deepEqual(await status({ Host: 'localhost:11434' }), [200, '{"version":"0.33.0"}']);
  assert.deepEqual(await status({ Host: '10.1.2.3:11434' }), [200, '{"version":"0.33.0"}']);
  assert.deepEqual(await status({ Origin: 'https://app.example.com' }), [403, '']);
  assert.deepEqual(await status({ Origin: 'http://localhost:3000' }), [200, '{"version":"0.33.0"}']);
});

test('scripted tool calls: on a line, on separate lines, on the done line; ids optional', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const calls = [{ name: 'get_weather', arguments: { city: 'Tokyo' } }, { name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_fixed001' }];
  fake.script({ tokens: ['ok'], toolCalls: calls });
  let lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user, tools }));
  assert.equal(lines.length, 3);
  assert.equal(lines[1].message.tool_calls.length, 2);
  assert.deepEqual(lines[1].message.tool_calls[1], { id: 'call_fixed001', function: { index: 1, name: 'get_weather', arguments: { city: 'Paris' } } });
  assert.equal(lines[2].message.tool_calls, undefined);

  fake.script({ toolCalls: calls, toolCallsOn: 'lines' });
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user, tools }));
  assert.equal(lines.length, 3);
  assert.equal(lines[0].message.tool_calls[0].function.arguments.city, 'Tokyo');
  assert.equal(lines[1].message.tool_calls[0].function.arguments.city, 'Paris');

  fake.script({ tokens: ['a'], toolCalls: calls, toolCallsOn: 'done', doneContent: 'tail', omitToolCallIds: true, doneReason: 'length' });
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user, tools }));
  assert.equal(lines.length, 2);
  assert.equal(lines[1].done, true);
  assert.equal(lines[1].done_reason, 'length');
  assert.equal(lines[1].message.content, 'tail');
  assert.deepEqual(lines[1].message.tool_calls, [
    { function: { index: 0, name: 'get_weather', arguments: { city: 'Tokyo' } } },
    { function: { index: 1, name: 'get_weather', arguments: { city: 'Paris' } } },
  ]);
});

test('metrics can be omitted or zeroed (omitempty), done_reason omitted', async () => {
  fake.script({ tokens: ['a'], metrics: false, doneReason: null });
  let lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user }));
  assert.deepEqual(Object.keys(lines[1]).sort(), ['created_at', 'done', 'message', 'model']);
  fake.script({ tokens: ['a'], metrics: { prompt_eval_count: 0, eval_count: 7 } });
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user }));
  assert.equal('prompt_eval_count' in lines[1], false);
  assert.equal(lines[1].eval_count, 7);
});

test('raw lines scenario', async () => {
  fake.script({ lines: [{ model: 'm', created_at: '', message: { role: 'assistant', content: 'x' }, done: false }, '{"done":true}'] });
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user });
  const text = await r.text();
  const ls = text.trim().split('\n');
  assert.equal(ls.length, 2);
  assert.match(JSON.parse(ls[0]).created_at, RFC3339NANO);
  assert.equal(ls[1], '{"done":true}');
});

test('scripted status errors', async () => {
  for (const status of [400, 404, 500, 503]) {
    fake.script({ status, error: `e${status}` });
    const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user });
    assert.equal(r.status, status);
    assert.deepEqual(await r.json(), { error: `e${status}` });
  }
  fake.script({ status: 502, body: 'bad gateway', contentType: 'text/html' });
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user });
  assert.equal(r.status, 502);
  assert.equal(r.headers.get('content-type'), 'text/html');
  assert.equal(await r.text(), 'bad gateway');
  fake.script(null);
  assert.equal((await postJSON('/api/chat', { model: 'llama3.2', messages: user, stream: false })).status, 200);
});

test('script function sees the body and the record', async () => {
  let seen;
  fake.script((body, rec) => { seen = [body.model, rec.path, rec.headers['x-test']]; return null; });
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user, stream: false }, { 'x-test': 'yes' });
  assert.equal((await r.json()).message.content, 'Hello from llama3.2');
  assert.deepEqual(seen, ['llama3.2', '/api/chat', 'yes']);
});

test('mid-stream error line after N lines, no done line', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 2, errorMessage: 'boom' });
  const lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user }));
  assert.deepEqual(lines.map((l) => l.message?.content ?? l), ['a', 'b', { error: 'boom' }]);
  // non-stream: a plain HTTP 500
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user, stream: false });
  assert.equal(r.status, 500);
  assert.deepEqual(await r.json(), { error: 'boom' });
});

test('garbage line mid-stream', async () => {
  fake.script({ tokens: ['a', 'b'], garbageAfter: 1, garbage: 'not json at all' });
  const text = await (await postJSON('/api/chat', { model: 'llama3.2', messages: user })).text();
  const ls = text.trim().split('\n');
  assert.equal(ls[1], 'not json at all');
  assert.equal(ls.length, 4);
});

test('drop the connection after N lines', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], dropAfter: 2 });
  const got = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fake.port, path: '/api/chat', method: 'POST' }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('error', () => resolve({ b, aborted: true }));
      res.on('aborted', () => resolve({ b, aborted: true }));
      res.on('end', () => resolve({ b, aborted: false }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'llama3.2', messages: user }));
  });
  assert.equal(got.aborted, true, 'the response was cut, not ended');
  assert.deepEqual(got.b.trim().split('\n').map((l) => JSON.parse(l).message.content), ['a', 'b'], 'the lines before the drop arrived');
  const rec = fake.chats().at(-1);
  assert.equal(rec.finished, false);
  assert.equal(rec.linesWritten, 2);
});

test('delays: firstDelayMs before headers, delayMs between lines', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], firstDelayMs: 300, delayMs: 100 });
  const t0 = performance.now();
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user });
  const tHeaders = performance.now() - t0;
  assert.ok(tHeaders >= 280, `headers after ${tHeaders} ms`);
  const times = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const piece of r.body) {
    buf += dec.decode(piece, { stream: true });
    while (buf.includes('\n')) {
      buf = buf.slice(buf.indexOf('\n') + 1);
      times.push(performance.now() - t0);
    }
  }
  assert.equal(times.length, 4);
  assert.ok(times[3] - times[0] >= 270, `lines spread ${times[3] - times[0]} ms`);
});

test('hang: no answer; the client abort is recorded as closedAt', async () => {
  fake.script({ hang: true });
  const ac = new AbortController();
  const p = postJSON('/api/chat', { model: 'llama3.2', messages: user }).catch((e) => e);
  void p;
  const p2 = fetch(`${fake.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', messages: user }), signal: ac.signal }).catch((e) => e);
  await fake.waitForRequest((r) => r.path === '/api/chat' && r.id > 0 && fake.chats().length >= 2, 3000);
  await sleep(200);
  assert.equal(fake.inflight >= 2, true);
  const tAbort = performance.now();
  ac.abort();
  assert.equal((await p2).name, 'AbortError');
  const recs = fake.chats();
  const closed = await (async () => {
    for (let i = 0; i < 100; i++) {
      const c = recs.find((r) => r.closedAt !== null);
      if (c) return c;
      await sleep(10);
    }
    return null;
  })();
  assert.ok(closed, 'closedAt recorded');
  assert.ok(closed.closedAt - tAbort < 500);
  assert.equal(closed.aborted, true);
  assert.equal(closed.status, 0);
  // the other hanging request is ended by close() in after(); it must not hold the test
  fake.script(null);
});

test('stallAfter: lines then silence; abort recorded', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], stallAfter: 1 });
  const ac = new AbortController();
  const r = await fetch(`${fake.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', messages: user }), signal: ac.signal });
  const reader = r.body.getReader();
  const { value } = await reader.read();
  assert.equal(JSON.parse(new TextDecoder().decode(value)).message.content, 'a');
  await sleep(200);
  const rec = fake.chats().at(-1);
  assert.equal(rec.linesWritten, 1);
  assert.equal(rec.closedAt, null);
  ac.abort();
  for (let i = 0; i < 50 && rec.closedAt === null; i++) await sleep(10);
  assert.notEqual(rec.closedAt, null);
});

test('back-pressure: a client that stops reading blocks the fake', async () => {
  const big = 'x'.repeat(64 * 1024);
  fake.script({ tokens: Array.from({ length: 400 }, (_, i) => `${i}:${big}`) });
  const res = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fake.port, path: '/api/chat', method: 'POST' }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'llama3.2', messages: user }));
  });
  res.pause();
  await sleep(500);
  const rec = fake.chats().at(-1);
  assert.ok(rec.linesWritten < 400, `fake wrote ${rec.linesWritten} lines to a paused client`);
  assert.equal(rec.finished, false);
  let n = 0;
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (!l.done) assert.equal(l.message.content.split(':')[0], String(n++));
    }
  });
  res.resume();
  await new Promise((r) => res.on('end', r));
  assert.equal(n, 400);
  assert.equal(rec.finished, true);
});

test('OpenAI /v1/chat/completions: stream with usage, non-stream, errors', async () => {
  fake.script({ tokens: ['Hi', ' there'], metrics: { prompt_eval_count: 5, eval_count: 2 } });
  let r = await postJSON('/v1/chat/completions', { model: 'llama3.2', messages: user, stream: true, stream_options: { include_usage: true } });
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const sse = await readSSE(r);
  assert.equal(sse.done, true);
  assert.equal(sse.partial, false);
  assert.equal(sse.content, 'Hi there');
  const ch = sse.chunks;
  assert.equal(ch.length, 4);
  assert.deepEqual(ch[0].choices[0].delta, { role: 'assistant', content: 'Hi' });
  assert.deepEqual(ch[1].choices[0].delta, { content: ' there' });
  assert.deepEqual(ch[2].choices[0], { index: 0, delta: {}, finish_reason: 'stop' });
  assert.deepEqual(ch[3].choices, []);
  assert.deepEqual(ch[3].usage, { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
  assert.equal(new Set(ch.map((c) => c.id)).size, 1);
  assert.equal(new Set(ch.map((c) => c.created)).size, 1);
  assert.ok(ch.every((c) => c.object === 'chat.completion.chunk' && c.model === 'llama3.2'));

  fake.script({ toolCalls: [{ name: 'f', arguments: { a: 1 } }] });
  r = await postJSON('/v1/chat/completions', { model: 'llama3.2', messages: user, tools: [{ type: 'function', function: { name: 'f' } }] });
  const j = await r.json();
  assert.equal(j.object, 'chat.completion');
  assert.equal(j.choices[0].finish_reason, 'tool_calls');
  assert.equal(j.choices[0].message.tool_calls[0].function.arguments, '{"a":1}');

  fake.script(null);
  r = await postJSON('/v1/chat/completions', { model: 'nope', messages: user });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { error: { message: "model 'nope' not found", type: 'not_found_error', param: null, code: null } });

  fake.script({ tokens: ['a', 'b'], errorAfter: 1, errorMessage: 'bad' });
  r = await postJSON('/v1/chat/completions', { model: 'llama3.2', messages: user, stream: true });
  const s2 = await readSSE(r);
  assert.equal(s2.done, false);
  assert.equal(s2.errors.length, 1);
  assert.equal(s2.errors[0].error.message, 'bad');
});

test('setDown makes every endpoint 503', async () => {
  fake.setDown(true);
  const r = await fetch(`${fake.url}/api/version`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { error: 'fake ollama is down' });
  fake.setDown(false);
  assert.equal((await fetch(`${fake.url}/api/version`)).status, 200);
});

test('recorded headers and timing fields', async () => {
  await (await postJSON('/api/chat', { model: 'llama3.2', messages: user, stream: false }, { authorization: 'Bearer x' })).json();
  const rec = fake.chats().at(-1);
  assert.equal(rec.method, 'POST');
  assert.equal(rec.headers.authorization, 'Bearer x');
  assert.equal(typeof rec.receivedAt, 'number');
  assert.ok(rec.finishedAt >= rec.receivedAt);
  assert.ok(rec.remotePort > 0);
});

test('sseRecords handles CRLF, CR, comments, multi-line data, split chunks', async () => {
  const pieces = [': keep-alive\r', '\n\r\ndata: {"a":', '1}\r\rdata: x\ndata:y\n\nevent: e\ndata', ': z\n\ndata: tail'];
  const recs = [];
  for await (const r of sseRecords(pieces)) recs.push(r);
  assert.deepEqual(recs.map(({ data, event, comments, partial }) => ({ data, event, comments, partial: !!partial })), [
    { data: null, event: null, comments: ['keep-alive'], partial: false },
    { data: '{"a":1}', event: null, comments: [], partial: false },
    { data: 'x\ny', event: null, comments: [], partial: false },
    { data: 'z', event: 'e', comments: [], partial: false },
    { data: 'tail', event: null, comments: [], partial: true },
  ]);
});

test('CLI: prints {"port":N}, serves, exits on SIGTERM', async () => {
  const script = fileURLToPath(new URL('./fake.mjs', import.meta.url));
  const p = spawn(process.execPath, [script, '--port', '0', '--tokens', '5', '--delay-ms', '1', '--models', 'm1,m2:7b'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no port line')), 5000);
    createInterface({ input: p.stdout }).once('line', (l) => { clearTimeout(t); resolve(l); });
  });
  const { port } = JSON.parse(line);
  assert.ok(port > 0);
  const base = `http://127.0.0.1:${port}`;
  const tags = await (await fetch(`${base}/api/tags`)).json();
  assert.deepEqual(tags.models.map((m) => m.name), ['m1:latest', 'm2:7b']);
  const ps = await (await fetch(`${base}/api/ps`)).json();
  assert.equal(ps.models.length, 2);
  const r = await fetch(`${base}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'm1', messages: user }) });
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 6);
  assert.equal(lines.slice(0, 5).map((l) => l.message.content).join(''), ' w0 w1 w2 w3 w4');
  const o = await (await fetch(`${base}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm2:7b', messages: user }) })).json();
  assert.equal(o.choices[0].message.content, ' w0 w1 w2 w3 w4');
  const code = await new Promise((resolve) => { p.on('exit', resolve); p.kill('SIGTERM'); });
  assert.equal(code, 0);
});

test('curl sees NDJSON streamed with chunked encoding', async () => {
  const out = await new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '5', '-d', '{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}', `${fake.url}/api/chat`],
      (err, stdout) => (err ? reject(err) : resolve(stdout)));
  }).catch((e) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
  if (out === null) return; // no curl here
  assert.match(out, /^HTTP\/1\.1 200 OK/);
  assert.match(out, /Content-Type: application\/x-ndjson/i);
  assert.match(out, /Transfer-Encoding: chunked/i);
  const body = out.split('\r\n\r\n')[1];
  assert.equal(body.trim().split('\n').length, 4);
});

test('/api/generate streams "response" lines; /api/embed returns normalised vectors', async () => {
  fake.script({ tokens: ['a', 'b'] });
  let r = await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' });
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  const lines = await ndjson(r);
  assert.deepEqual(lines.map((l) => l.response), ['a', 'b', '']);
  assert.equal(lines[2].done, true);
  assert.equal(lines[2].done_reason, 'stop');
  assert.deepEqual(lines[2].context, [1, 2, 3]);
  assert.equal(lines[0].message, undefined);
  r = await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x', stream: false });
  const o = await r.json();
  assert.equal(o.response, 'ab');
  assert.equal(o.done, true);
  fake.script(null);
  r = await postJSON('/api/embed', { model: 'nomic-embed-text', input: ['hello', 'world'] });
  assert.equal(r.status, 200);
  const e = await r.json();
  assert.equal(e.embeddings.length, 2);
  for (const v of e.embeddings) {
    assert.equal(v.length, 8);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  }
  assert.notDeepEqual(e.embeddings[0], e.embeddings[1]);
  assert.equal(e.prompt_eval_count, 2);
  const again = await (await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'hello' })).json();
  assert.deepEqual(again.embeddings[0], e.embeddings[0], 'deterministic');
  r = await postJSON('/api/embed', { model: 'nope', input: 'x' });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { error: 'model "nope" not found, try pulling it first' });
  r = await postJSON('/api/embed', { model: 'nomic-embed-text', input: [1, 2] });
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { error: 'invalid input type' });
});
