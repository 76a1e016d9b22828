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
import { createHash } from 'node:crypto';
import { startFake, modelKey, embedVector, embeddingRaw, validModelName } from './fake.mjs';
import { readSSE, sseRecords } from '../integration/harness.mjs';

let fake;
before(async () => { fake = await startFake(); });
after(async () => { await fake.close(); });
beforeEach(() => {
  fake.reset();
  fake.setModels(['llama3.2:latest', 'qwen3:latest', 'nomic-embed-text:latest', 'hf.co/org/repo:Q4']);
  fake.setLoaded([]);
  fake.setPullable(undefined);
  fake.setProgressDelay(0);
  fake.setVersion('0.33.0');
});

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

test('dribbleMs: lines (after dribbleFrom) and non-stream bodies arrive one byte at a time', async () => {
  const pieces = async (r) => {
    const got = [];
    for await (const piece of r.body) got.push(Buffer.from(piece).toString());
    return got;
  };
  fake.script({ tokens: ['ab', 'cd'], dribbleMs: 2, dribbleFrom: 1 });
  const got = await pieces(await postJSON('/api/chat', { model: 'llama3.2', messages: user }));
  const text = got.join('');
  const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.equal(lines[2].done, true);
  const first = text.indexOf('\n') + 1;
  assert.ok(got[0].length >= first, 'the first line came whole');
  const rest = text.length - first;
  assert.ok(got.length > rest / 2, `${got.length} pieces for ${rest} dribbled bytes`);

  fake.script({ tokens: ['ab', 'cd'], dribbleMs: 2 });
  const t0 = performance.now();
  const r = await postJSON('/api/chat', { model: 'llama3.2', messages: user, stream: false });
  const tHeaders = performance.now() - t0;
  const body = await pieces(r);
  const whole = JSON.parse(body.join(''));
  assert.equal(whole.message.content, 'abcd');
  assert.ok(body.length > body.join('').length / 2, `${body.length} pieces for ${body.join('').length} bytes`);
  assert.ok(performance.now() - t0 - tHeaders >= body.join('').length, 'the body took a while after the headers');
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

// ---------------------------------------------------------------- helpers for the endpoints below

/** One request on its own connection; resolves {status, headers, text, aborted}. */
function rawRequest({ method = 'POST', path, headers = {}, body }) {
  const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  // node's client sends no Content-Length for a DELETE body by itself
  if (data) headers = { 'content-length': data.length, ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fake.port, path, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('error', () => resolve({ status: res.statusCode, headers: res.headers, text, aborted: true }));
      res.on('aborted', () => resolve({ status: res.statusCode, headers: res.headers, text, aborted: true }));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, aborted: false }));
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? resolve({ status: 0, text: '', aborted: true }) : reject(e)));
    req.end(data);
  });
}

async function sendJSON(method, pathname, body, headers = {}) {
  return fetch(fake.url + pathname, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
}

async function tagNames() {
  return (await (await fetch(`${fake.url}/api/tags`)).json()).models.map((m) => m.name);
}

async function expectError(res, status, msg) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const j = await res.json();
  assert.deepEqual(Object.keys(j), ['error']);
  if (msg instanceof RegExp) assert.match(j.error, msg); else assert.equal(j.error, msg);
}

const sha = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
const norm = (v) => Math.hypot(...v);

/** Wait until pred() is truthy (polling a positive signal), or fail. */
async function until(pred, what, timeoutMs = 5000) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------- /api/generate

test('generate: streamed response lines, done line with context and metrics; non-stream aggregates', async () => {
  let r = await postJSON('/api/generate', { model: 'llama3.2', prompt: 'hi' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  let lines = await ndjson(r);
  assert.deepEqual(lines.map((l) => l.response), ['Hello', ' from', ' llama3.2', '']);
  for (const l of lines) {
    assert.equal(l.model, 'llama3.2');
    assert.match(l.created_at, RFC3339NANO);
    assert.equal('message' in l, false);
    assert.equal('thinking' in l, false);
  }
  assert.deepEqual(Object.keys(lines[0]), ['model', 'created_at', 'response', 'done']);
  const d = lines[3];
  assert.equal(d.done, true);
  assert.equal(d.done_reason, 'stop');
  assert.deepEqual(d.context, [1, 2, 3]);
  assert.equal(d.eval_count, 3);
  assert.equal(d.prompt_eval_count, 26);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) {
    assert.ok(Number.isInteger(d[k]) && d[k] > 0, k);
  }

  r = await postJSON('/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false });
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  const o = await r.json();
  assert.equal(o.response, 'Hello from llama3.2');
  assert.equal(o.done, true);
  assert.equal(o.done_reason, 'stop');
  assert.deepEqual(o.context, [1, 2, 3]);
  assert.equal(o.eval_count, 3);

  // raw mode: no context
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'hi', raw: true }));
  assert.equal('context' in lines.at(-1), false);
  const rec = fake.requestsTo('/api/generate').at(-1);
  assert.deepEqual(rec.body, { model: 'llama3.2', prompt: 'hi', raw: true });
  assert.equal(rec.linesWritten, 4);
  assert.equal(rec.finished, true);
});

test('generate: thinking lines for thinking models (default and think:true), none with think:false', async () => {
  for (const think of [undefined, true, 'high']) {
    const lines = await ndjson(await postJSON('/api/generate', { model: 'qwen3', prompt: 'hi', think }));
    assert.deepEqual(lines.map((l) => l.thinking ?? null), ['Thinking', ' about', ' it', null, null, null, null]);
    assert.deepEqual(lines.map((l) => l.response), ['', '', '', 'Hello', ' from', ' qwen3', '']);
    assert.equal(lines.at(-1).eval_count, 6);
  }
  let lines = await ndjson(await postJSON('/api/generate', { model: 'qwen3', prompt: 'hi', think: false }));
  assert.deepEqual(lines.map((l) => l.response), ['Hello', ' from', ' qwen3', '']);
  assert.ok(lines.every((l) => !('thinking' in l)));
  const o = await (await postJSON('/api/generate', { model: 'qwen3', prompt: 'hi', stream: false })).json();
  assert.equal(o.thinking, 'Thinking about it');
  assert.equal(o.response, 'Hello from qwen3');
  // a scripted scenario's thinking works the same way
  fake.script({ thinking: ['t'], tokens: ['x'] });
  lines = await ndjson(await postJSON('/api/generate', { model: 'qwen3', prompt: 'hi' }));
  assert.deepEqual(lines.slice(0, 2).map((l) => [l.thinking ?? null, l.response]), [['t', ''], [null, 'x']]);
});

test('generate: options.num_predict stops with "length", options.stop before the stop string', async () => {
  let lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', options: { num_predict: 2 } }));
  assert.deepEqual(lines.map((l) => l.response), ['Hello', ' from', '']);
  assert.equal(lines.at(-1).done_reason, 'length');
  assert.equal(lines.at(-1).eval_count, 2);
  // thinking tokens count too
  lines = await ndjson(await postJSON('/api/generate', { model: 'qwen3', prompt: 'p', options: { num_predict: 4 } }));
  assert.deepEqual(lines.map((l) => l.thinking ?? l.response), ['Thinking', ' about', ' it', 'Hello', '']);
  assert.equal(lines.at(-1).done_reason, 'length');
  // a limit above the answer changes nothing
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', options: { num_predict: 50 } }));
  assert.equal(lines.length, 4);
  assert.equal(lines.at(-1).done_reason, 'stop');
  // stop: the text before the first stop string, even across tokens
  let o = await (await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', stream: false, options: { stop: ['zzz', 'o f'] } })).json();
  assert.equal(o.response, 'Hell');
  assert.equal(o.done_reason, 'stop');
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', options: { stop: [' from'] } }));
  assert.deepEqual(lines.map((l) => l.response), ['Hello', '']);
  assert.equal(lines.at(-1).done_reason, 'stop');
  // the earlier of the two wins
  o = await (await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', stream: false, options: { stop: ['llama'], num_predict: 1 } })).json();
  assert.deepEqual([o.response, o.done_reason], ['Hello', 'length']);
  // honourOptions:false in a scenario turns it off; chat only honours them when asked
  fake.script({ tokens: ['a', 'b', 'c'], honourOptions: false });
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'p', options: { num_predict: 1 } }));
  assert.equal(lines.length, 4);
  fake.script({ tokens: ['a', 'b', 'c'] });
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user, options: { num_predict: 1 } }));
  assert.equal(lines.length, 4, 'chat unchanged by default');
  fake.script({ tokens: ['a', 'b', 'c'], honourOptions: true });
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user, options: { num_predict: 1 } }));
  assert.deepEqual(lines.map((l) => l.message.content), ['a', '']);
  assert.equal(lines.at(-1).done_reason, 'length');
});

test('generate: empty prompt answers a load object; keep_alive 0 an unload', async () => {
  for (const body of [{ model: 'llama3.2' }, { model: 'llama3.2', prompt: '' }, { model: 'llama3.2', prompt: '', stream: true }]) {
    const r = await postJSON('/api/generate', body);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8', 'one JSON object, not NDJSON');
    const o = await r.json();
    assert.deepEqual(Object.keys(o), ['model', 'created_at', 'response', 'done', 'done_reason']);
    assert.deepEqual({ ...o, created_at: 0 }, { model: 'llama3.2', created_at: 0, response: '', done: true, done_reason: 'load' });
    assert.match(o.created_at, RFC3339NANO);
  }
  for (const keep_alive of [0, '0', '0s', '0m']) {
    const o = await (await postJSON('/api/generate', { model: 'qwen3', keep_alive })).json();
    assert.equal(o.done_reason, 'unload', JSON.stringify(keep_alive));
  }
  const o = await (await postJSON('/api/generate', { model: 'qwen3', keep_alive: '5m' })).json();
  assert.equal(o.done_reason, 'load');
  await expectError(await postJSON('/api/generate', { model: 'nope', keep_alive: 0 }), 404, "model 'nope' not found");
  // a scripted error status still applies to a load
  fake.script({ status: 503, error: 'busy' });
  await expectError(await postJSON('/api/generate', { model: 'llama3.2' }), 503, 'busy');
});

test('generate: errors as Ollama sends them', async () => {
  fake.setModels(['llama3.2', 'qwen3', 'nomic-embed-text', 'qwen2.5-coder:7b']);
  const cases = [
    [undefined, 400, 'missing request body'],
    ['[1]', 400, 'json: cannot unmarshal array into Go value of type api.GenerateRequest'],
    [{ prompt: 'x' }, 400, 'model is required'],
    [{ model: 'nope', prompt: 'x' }, 404, "model 'nope' not found"],
    [{ model: 'llama3.2', prompt: 5 }, 400, /cannot unmarshal number into Go struct field GenerateRequest.prompt of type string/],
    [{ model: 'llama3.2', prompt: 'x', stream: 'no' }, 400, /GenerateRequest.stream of type bool/],
    [{ model: 'llama3.2', prompt: 'x', system: 1 }, 400, /GenerateRequest.system of type string/],
    [{ model: 'llama3.2', prompt: 'x', images: ['data:image/png;base64,AAAA'] }, 400, /illegal base64/],
    [{ model: 'llama3.2', prompt: 'x', think: true }, 400, '"llama3.2" does not support thinking'],
    [{ model: 'llama3.2', prompt: 'x', think: 'huge' }, 400, /^invalid think value/],
    [{ model: 'nomic-embed-text', prompt: 'x' }, 400, '"nomic-embed-text" does not support generate'],
    [{ model: 'llama3.2', prompt: 'x', suffix: 'y' }, 400, 'registry.ollama.ai/library/llama3.2:latest does not support insert'],
    [{ model: 'llama3.2', prompt: 'x', raw: true, system: 's' }, 400, 'raw mode does not support template, system, or context'],
    [{ model: 'llama3.2', prompt: 'x', options: { num_predict: 'ten' } }, 500, 'option "num_predict" must be of type integer'],
    [{ model: 'llama3.2', prompt: 'x', format: 'yaml' }, 500, /^invalid format/],
  ];
  for (const [body, status, msg] of cases) {
    await expectError(await postJSON('/api/generate', body === undefined ? '' : body), status, msg);
  }
  // accepted variants
  for (const body of [
    { model: 'qwen2.5-coder:7b', prompt: 'def f(', suffix: 'return 1', stream: false },
    { model: 'llama3.2', prompt: 'x', images: ['iVBORw0KGgo='], system: 's', format: 'json', stream: false },
    { model: 'llama3.2', prompt: 'x', raw: true, stream: false, keep_alive: '10m' },
  ]) {
    const r = await postJSON('/api/generate', body);
    assert.equal(r.status, 200, `${JSON.stringify(body)}: ${await r.clone().text()}`);
    assert.equal((await r.json()).done, true);
  }
});

test('generate: the chat scenarios apply (error line, drop, status, hang, delays); scriptPath wins', async () => {
  fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 1, errorMessage: 'boom' });
  let lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' }));
  assert.deepEqual(lines, [{ model: 'llama3.2', created_at: lines[0].created_at, response: 'a', done: false }, { error: 'boom' }]);
  await expectError(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x', stream: false }), 500, 'boom');

  fake.script({ tokens: ['a', 'b', 'c'], dropAfter: 2 });
  const got = await rawRequest({ path: '/api/generate', body: { model: 'llama3.2', prompt: 'x' } });
  assert.equal(got.aborted, true);
  assert.deepEqual(got.text.trim().split('\n').map((l) => JSON.parse(l).response), ['a', 'b']);
  assert.equal(fake.requestsTo('/api/generate').at(-1).linesWritten, 2);

  fake.script({ status: 429, error: 'slow down' });
  await expectError(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' }), 429, 'slow down');

  fake.script({ tokens: ['a', 'b', 'c'], delayMs: 60 });
  const t0 = performance.now();
  const res = await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' });
  const times = [];
  let buf = '';
  for await (const piece of res.body) {
    buf += Buffer.from(piece).toString();
    while (buf.includes('\n')) { buf = buf.slice(buf.indexOf('\n') + 1); times.push(performance.now() - t0); }
  }
  assert.equal(times.length, 4);
  // 3 pauses of 60 ms at the fake: 180 ms there. Timed here, the first line
  // may arrive late on a busy machine (162 ms seen under ASan); without the
  // pauses the spread would be about 0, so two pauses' worth proves them.
  assert.ok(times[3] - times[0] >= 110, `lines spread over ${times[3] - times[0]} ms`);

  // scriptPath for /api/generate wins over script(); chat keeps the global one
  fake.script({ tokens: ['global'] });
  fake.scriptPath('/api/generate', { tokens: ['own'] });
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' }));
  assert.equal(lines[0].response, 'own');
  lines = await ndjson(await postJSON('/api/chat', { model: 'llama3.2', messages: user }));
  assert.equal(lines[0].message.content, 'global');
  fake.scriptPath('/api/generate', () => null); // null: fall back to script()
  lines = await ndjson(await postJSON('/api/generate', { model: 'llama3.2', prompt: 'x' }));
  assert.equal(lines[0].response, 'global');

  // hang: nothing is answered; the client's abort is recorded
  fake.scriptPath('/api/generate', { hang: true });
  const ac = new AbortController();
  const p = fetch(`${fake.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'x' }), signal: ac.signal }).catch((e) => e);
  const rec = await fake.waitForRequest((r) => r.path === '/api/generate' && r.body?.prompt === 'x' && r.status === 0 && !r.finished, 3000);
  ac.abort();
  assert.equal((await p).name, 'AbortError');
  await until(() => rec.closedAt !== null, 'closedAt');
  assert.equal(rec.aborted, true);
  assert.equal(rec.status, 0);
});

// ---------------------------------------------------------------- /api/embed, /api/embeddings

test('embed: dimensions, prompt_eval_count, empty inputs, truncate, vector size per model', async () => {
  let r = await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'hello world', dimensions: 3 });
  let e = await r.json();
  assert.deepEqual(Object.keys(e), ['model', 'embeddings', 'total_duration', 'load_duration', 'prompt_eval_count']);
  assert.equal(e.model, 'nomic-embed-text');
  assert.equal(e.embeddings.length, 1);
  const v = e.embeddings[0];
  assert.equal(v.length, 3);
  assert.ok(Math.abs(norm(v) - 1) < 1e-6, 're-normalised after truncation');
  assert.deepEqual(v, embedVector('hello world', 8, 3));
  // the same direction as the raw vector's first 3 components
  const raw = embeddingRaw('hello world', 8).slice(0, 3);
  raw.forEach((x, i) => assert.ok(Math.abs(x / norm(raw) - v[i]) < 1e-6));
  assert.equal(e.prompt_eval_count, 2, 'words');
  // full size, and dimensions >= size changes nothing
  e = await (await postJSON('/api/embed', { model: 'nomic-embed-text', input: ['one two', 'three'], dimensions: 99 })).json();
  assert.deepEqual(e.embeddings, [embedVector('one two', 8), embedVector('three', 8)]);
  assert.equal(e.prompt_eval_count, 3);
  // empty input: just the model and []
  for (const input of ['', [], undefined, null]) {
    r = await postJSON('/api/embed', { model: 'nomic-embed-text', input });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { model: 'nomic-embed-text', embeddings: [] }, JSON.stringify(input));
  }
  // truncate
  await expectError(await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'a b c', truncate: false, options: { num_ctx: 2 } }),
    400, 'the input length exceeds the context length');
  e = await (await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'a b c', options: { num_ctx: 2 } })).json();
  assert.deepEqual(e.embeddings[0], embedVector('a b', 8), 'truncated to the context');
  assert.equal(e.prompt_eval_count, 2);
  // vector size: the model's embedding_length, else opts.embeddingLength (8)
  fake.setModels([{ name: 'big-embed', embedding_length: 16 }, 'llama3.2']);
  e = await (await postJSON('/api/embed', { model: 'big-embed', input: 'x' })).json();
  assert.equal(e.embeddings[0].length, 16);
  e = await (await postJSON('/api/embed', { model: 'llama3.2', input: 'x' })).json();
  assert.equal(e.embeddings[0].length, 8);
  const small = await startFake({ embeddingLength: 4, models: ['llama3.2'] });
  try {
    const s = await (await fetch(`${small.url}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', input: 'x' }) })).json();
    assert.deepEqual(s.embeddings, [embedVector('x', 4)]);
  } finally {
    await small.close();
  }
});

test('embed: errors and scripted status', async () => {
  await expectError(await postJSON('/api/embed', ''), 400, 'missing request body');
  await expectError(await postJSON('/api/embed', { input: 'x' }), 400, 'model is required');
  await expectError(await postJSON('/api/embed', { model: 'nope', input: 'x' }), 404, 'model "nope" not found, try pulling it first');
  for (const input of [5, ['a', 2], [null], { a: 1 }, true]) {
    await expectError(await postJSON('/api/embed', { model: 'nomic-embed-text', input }), 400, 'invalid input type');
  }
  await expectError(await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'x', dimensions: 'two' }), 400,
    /EmbedRequest.dimensions of type int/);
  fake.scriptPath('/api/embed', { status: 500, error: 'runner crashed' });
  await expectError(await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'x' }), 500, 'runner crashed');
  fake.scriptPath('/api/embed', null);
  fake.script({ status: 503, error: 'busy' }); // the global script's status, as before
  await expectError(await postJSON('/api/embed', { model: 'nomic-embed-text', input: 'x' }), 503, 'busy');
});

test('legacy /api/embeddings: raw (not normalised) vector, empty prompt, errors', async () => {
  let r = await postJSON('/api/embeddings', { model: 'nomic-embed-text', prompt: 'hello' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  const o = await r.json();
  assert.deepEqual(Object.keys(o), ['embedding']);
  assert.deepEqual(o.embedding, embeddingRaw('hello', 8));
  assert.ok(Math.abs(norm(o.embedding) - 1) > 0.01, 'not normalised');
  const n = embedVector('hello', 8);
  o.embedding.forEach((x, i) => assert.ok(Math.abs(x / norm(o.embedding) - n[i]) < 1e-6, '/api/embed is this, normalised'));
  for (const body of [{ model: 'nomic-embed-text', prompt: '' }, { model: 'nomic-embed-text' }]) {
    r = await postJSON('/api/embeddings', body);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '{"embedding":[]}');
  }
  await expectError(await postJSON('/api/embeddings', ''), 400, 'missing request body');
  await expectError(await postJSON('/api/embeddings', { prompt: 'x' }), 400, 'model is required');
  await expectError(await postJSON('/api/embeddings', { model: 'nope', prompt: 'x' }), 404, 'model "nope" not found, try pulling it first');
  await expectError(await postJSON('/api/embeddings', { model: 'nomic-embed-text', prompt: ['x'] }), 400,
    'json: cannot unmarshal array into Go struct field EmbeddingRequest.prompt of type string');
  assert.deepEqual(fake.requestsTo('/api/embeddings', 'POST')[0].body, { model: 'nomic-embed-text', prompt: 'hello' });
});

// ---------------------------------------------------------------- /api/show, /api/ps, /api/version, /

test('show: every field, capabilities per model, verbose, legacy name, errors', async () => {
  let r = await postJSON('/api/show', { model: 'llama3.2' });
  assert.equal(r.status, 200);
  let s = await r.json();
  assert.deepEqual(Object.keys(s), ['license', 'modelfile', 'parameters', 'template', 'details', 'model_info', 'capabilities', 'modified_at']);
  assert.equal(typeof s.license, 'string');
  assert.match(s.modelfile, /^# Modelfile generated by "ollama show"\nFROM llama3\.2:latest\n/);
  assert.match(s.parameters, /^stop\s+"<\|eot_id\|>"\ntemperature\s+0\.6$/);
  assert.equal(s.template, '{{ .Prompt }}');
  assert.deepEqual(s.details, { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' });
  assert.equal(s.model_info['general.architecture'], 'llama');
  assert.equal(s.model_info['llama.context_length'], 131072);
  assert.deepEqual(s.model_info['tokenizer.ggml.tokens'], [], 'long arrays emptied without verbose');
  assert.deepEqual(s.capabilities, ['completion', 'tools']);
  assert.ok(!Number.isNaN(Date.parse(s.modified_at)));

  s = await (await postJSON('/api/show', { name: 'llama3.2', verbose: true })).json();
  assert.equal(s.model_info['tokenizer.ggml.tokens'].length, 8);
  assert.ok(Array.isArray(s.tensors) && s.tensors.length > 0);

  s = await (await postJSON('/api/show', { model: 'nomic-embed-text' })).json();
  assert.deepEqual(s.capabilities, ['embedding']);
  assert.equal(s.model_info['nomicbert.embedding_length'], 8);
  s = await (await postJSON('/api/show', { model: 'qwen3:latest' })).json();
  assert.deepEqual(s.capabilities, ['completion', 'tools', 'thinking']);

  // configurable per model, or by the naming convention
  fake.setModels([
    { name: 'vis', capabilities: ['completion', 'vision'], context_length: 999, system: 'be brief' },
    'my-embed-model', 'deepseek-r1:7b', 'qwen2.5-coder:7b', 'plain',
  ]);
  const caps = {};
  for (const m of ['vis', 'my-embed-model', 'deepseek-r1:7b', 'qwen2.5-coder:7b', 'plain']) {
    s = await (await postJSON('/api/show', { model: m })).json();
    caps[m] = s.capabilities;
    if (m === 'vis') {
      assert.equal(s.model_info['llama.context_length'], 999);
      assert.equal(s.system, 'be brief');
    }
  }
  assert.deepEqual(caps, {
    vis: ['completion', 'vision'],
    'my-embed-model': ['embedding'],
    'deepseek-r1:7b': ['completion', 'tools', 'thinking'],
    'qwen2.5-coder:7b': ['completion', 'tools', 'insert'],
    plain: ['completion', 'tools'],
  });
  assert.deepEqual(fake.model('vis').capabilities, ['completion', 'vision']);

  await expectError(await postJSON('/api/show', { model: 'nope' }), 404, "model 'nope' not found");
  await expectError(await postJSON('/api/show', {}), 400, 'model is required');
  await expectError(await postJSON('/api/show', ''), 400, 'missing request body');
  await expectError(await postJSON('/api/show', { model: 'plain', verbose: 'yes' }), 400, /ShowRequest.verbose of type bool/);
});

test('ps: always an array, with exactly the fields Ollama sends', async () => {
  let r = await fetch(`${fake.url}/api/ps`);
  assert.equal(await r.text(), '{"models":[]}');
  fake.setLoaded(['qwen3', 'not-installed']);
  r = await fetch(`${fake.url}/api/ps`);
  const ps = await r.json();
  assert.equal(ps.models.length, 1);
  const m = ps.models[0];
  assert.deepEqual(Object.keys(m), ['name', 'model', 'size', 'digest', 'details', 'expires_at', 'size_vram', 'context_length']);
  assert.equal(m.name, 'qwen3:latest');
  assert.equal(m.model, 'qwen3:latest');
  assert.match(m.digest, /^[0-9a-f]{64}$/);
  assert.ok(Date.parse(m.expires_at) > Date.now());
  assert.equal(m.size_vram, m.size);
  assert.equal(m.context_length, 4096);
  assert.equal(m.details.family, 'qwen3');
});

test('version (GET, HEAD, configurable) and the root health check', async () => {
  let r = await fetch(`${fake.url}/api/version`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(await r.text(), '');
  fake.setVersion('0.5.7');
  assert.deepEqual(await (await fetch(`${fake.url}/api/version`)).json(), { version: '0.5.7' });
  const other = await startFake({ version: '0.12.3', models: [] });
  try {
    assert.deepEqual(await (await fetch(`${other.url}/api/version`)).json(), { version: '0.12.3' });
  } finally {
    await other.close();
  }
  r = await fetch(`${fake.url}/`);
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await r.text(), 'Ollama is running');
  const head = fake.requestsTo('/api/version', 'HEAD')[0];
  assert.equal(head.status, 200);
  assert.equal(head.finished, true);
});

// ---------------------------------------------------------------- pull / push

test('pull: NDJSON progress per layer, then the model is in /api/tags', async () => {
  assert.equal((await tagNames()).includes('mistral:latest'), false);
  const r = await postJSON('/api/pull', { model: 'mistral' }, { authorization: 'Bearer client-secret' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  const lines = await ndjson(r);
  assert.deepEqual(lines[0], { status: 'pulling manifest' });
  assert.deepEqual(lines.slice(-3), [{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' }]);
  const layers = fake.model('mistral').layers;
  const progress = lines.slice(1, -3);
  assert.equal(progress.length, layers.length * 3, 'pullSteps 2: three lines per layer');
  layers.forEach((l, i) => {
    const mine = progress.slice(i * 3, i * 3 + 3);
    for (const p of mine) {
      assert.equal(p.status, `pulling ${l.digest.slice(7, 19)}`);
      assert.equal(p.digest, l.digest);
      assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(p.total, l.size);
    }
    assert.equal('completed' in mine[0], false, 'completed 0 is omitted');
    assert.ok(mine[1].completed > 0 && mine[1].completed < l.size);
    assert.equal(mine[2].completed, l.size);
  });
  assert.ok((await tagNames()).includes('mistral:latest'));
  // its layers are now blobs the fake has
  assert.equal((await fetch(`${fake.url}/api/blobs/${layers[0].digest}`, { method: 'HEAD' })).status, 200);
  const rec = fake.requestsTo('/api/pull')[0];
  assert.deepEqual(rec.body, { model: 'mistral' });
  assert.equal(rec.headers.authorization, 'Bearer client-secret');
  assert.equal(rec.linesWritten, lines.length);
  assert.equal(rec.finished, true);

  // stream:false: only the last status; legacy "name"; an installed model pulls again fine
  const r2 = await postJSON('/api/pull', { name: 'llama3.2', stream: false });
  assert.equal(r2.status, 200);
  assert.equal(r2.headers.get('content-type'), 'application/json');
  assert.equal(await r2.text(), '{"status":"success"}');
  assert.equal((await tagNames()).filter((n) => n === 'llama3.2:latest').length, 1);
});

test('pull: the model appears only with the success line', async () => {
  // stall just before "success": everything else written, the model not installed yet
  const n = 1 + 5 * 3 + 2;
  fake.scriptPath('/api/pull', { stallAfter: n });
  const ac = new AbortController();
  const res = await fetch(`${fake.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'phi4' }), signal: ac.signal });
  const rec = await fake.waitForRequest((r) => r.path === '/api/pull' && r.linesWritten === n, 5000);
  assert.equal(rec.finished, false);
  assert.equal((await tagNames()).includes('phi4:latest'), false);
  ac.abort();
  await res.body?.cancel().catch(() => {});
  await until(() => rec.closedAt !== null, 'the aborted pull recorded');
  assert.equal((await tagNames()).includes('phi4:latest'), false, 'an interrupted pull installs nothing');
  fake.scriptPath('/api/pull', null);
  const lines = await ndjson(await postJSON('/api/pull', { model: 'phi4' }));
  assert.equal(lines.at(-1).status, 'success');
  assert.ok((await tagNames()).includes('phi4:latest'));
});

test('pull: unknown or unpullable names fail mid-stream; invalid names 400', async () => {
  fake.setPullable(['mistral', { name: 'e5-embed', capabilities: ['embedding'] }]);
  let r = await postJSON('/api/pull', { model: 'does-not-exist' });
  assert.equal(r.status, 200);
  let lines = await ndjson(r);
  assert.deepEqual(lines, [{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }]);
  assert.equal((await tagNames()).includes('does-not-exist:latest'), false);
  // stream:false: the error as a 500
  r = await postJSON('/api/pull', { model: 'does-not-exist', stream: false });
  assert.equal(r.status, 500);
  assert.deepEqual(await r.json(), { error: 'pull model manifest: file does not exist' });
  // listed names pull, with their description
  lines = await ndjson(await postJSON('/api/pull', { model: 'e5-embed' }));
  assert.equal(lines.at(-1).status, 'success');
  assert.deepEqual((await (await postJSON('/api/show', { model: 'e5-embed' })).json()).capabilities, ['embedding']);
  // a function decides
  fake.setPullable((name) => (name.startsWith('ok-') ? { capabilities: ['completion', 'tools', 'thinking'] } : false));
  assert.equal((await ndjson(await postJSON('/api/pull', { model: 'ok-think' }))).at(-1).status, 'success');
  assert.deepEqual(fake.model('ok-think').capabilities, ['completion', 'tools', 'thinking']);
  assert.equal((await ndjson(await postJSON('/api/pull', { model: 'nope' }))).at(-1).error, 'pull model manifest: file does not exist');
  fake.setPullable(false);
  assert.equal((await ndjson(await postJSON('/api/pull', { model: 'mistral' }))).at(-1).error, 'pull model manifest: file does not exist');
  // before anything is streamed
  await expectError(await postJSON('/api/pull', {}), 400, 'invalid model name');
  await expectError(await postJSON('/api/pull', { model: 'bad name!' }), 400, 'invalid model name');
  await expectError(await postJSON('/api/pull', ''), 400, 'missing request body');
  await expectError(await postJSON('/api/pull', { model: 'x', stream: 'yes' }), 400, /PullRequest.stream of type bool/);
});

test('pull: configurable delay between progress lines; scripted error, drop and status', async () => {
  fake.setProgressDelay(15);
  const t0 = performance.now();
  const res = await postJSON('/api/pull', { model: 'slowpoke' });
  const times = [];
  let buf = '';
  for await (const piece of res.body) {
    buf += Buffer.from(piece).toString();
    while (buf.includes('\n')) { buf = buf.slice(buf.indexOf('\n') + 1); times.push(performance.now() - t0); }
  }
  assert.equal(times.length, 19);
  assert.ok(times.at(-1) - times[0] >= 15 * 18 * 0.9, `19 lines over ${times.at(-1) - times[0]} ms`);
  fake.setProgressDelay(0);
  const fast = await startFake({ progressDelayMs: 0, pullSteps: 1, models: [] });
  try {
    const text = await (await fetch(`${fast.url}/api/pull`, { method: 'POST', body: '{"model":"a"}' })).text();
    assert.equal(text.trim().split('\n').length, 1 + 5 * 2 + 3, 'pullSteps 1: two lines per layer');
  } finally {
    await fast.close();
  }

  fake.scriptPath('/api/pull', { errorAfter: 3, errorMessage: 'net/http: TLS handshake timeout' });
  let lines = await ndjson(await postJSON('/api/pull', { model: 'flaky' }));
  assert.equal(lines.length, 4);
  assert.deepEqual(lines[3], { error: 'net/http: TLS handshake timeout' });
  assert.equal((await tagNames()).includes('flaky:latest'), false);
  await expectError(await postJSON('/api/pull', { model: 'flaky', stream: false }), 500, 'net/http: TLS handshake timeout');

  fake.scriptPath('/api/pull', { dropAfter: 2 });
  const got = await rawRequest({ path: '/api/pull', body: { model: 'flaky' } });
  assert.equal(got.aborted, true);
  assert.deepEqual(got.text.trim().split('\n').map((l) => JSON.parse(l).status), ['pulling manifest', `pulling ${got.text.split('"digest":"sha256:')[1].slice(0, 12)}`]);

  fake.scriptPath('/api/pull', { status: 503, error: 'registry unavailable' });
  await expectError(await postJSON('/api/pull', { model: 'flaky' }), 503, 'registry unavailable');
  fake.scriptPath('/api/pull', { lines: [{ status: 'custom' }, { status: 'success' }] });
  lines = await ndjson(await postJSON('/api/pull', { model: 'flaky' }));
  assert.deepEqual(lines, [{ status: 'custom' }, { status: 'success' }]);
  // the global chat script does not touch pull
  fake.scriptPath('/api/pull', null);
  fake.script((body) => ({ tokens: [body.messages[0].content] }));
  assert.equal((await ndjson(await postJSON('/api/pull', { model: 'flaky' }))).at(-1).status, 'success');
});

test('push: progress per layer; an unknown model fails mid-stream', async () => {
  let lines = await ndjson(await postJSON('/api/push', { model: 'llama3.2', insecure: true }));
  assert.deepEqual(lines[0], { status: 'retrieving manifest' });
  assert.deepEqual(lines.slice(-2), [{ status: 'pushing manifest' }, { status: 'success' }]);
  const layers = fake.model('llama3.2').layers;
  const progress = lines.slice(1, -2);
  assert.equal(progress.length, layers.length * 3);
  assert.deepEqual([...new Set(progress.map((p) => p.status))], layers.map((l) => `pushing ${l.digest.slice(7, 19)}`));
  assert.ok(progress.every((p) => p.total > 0 && p.digest.startsWith('sha256:')));
  lines = await ndjson(await postJSON('/api/push', { name: 'nobody/nothing:v1' }));
  assert.deepEqual(lines, [
    { status: 'retrieving manifest' },
    { status: "couldn't retrieve manifest" },
    { error: 'open /root/.ollama/models/manifests/registry.ollama.ai/nobody/nothing/v1: no such file or directory' },
  ]);
  const r = await postJSON('/api/push', { model: 'llama3.2', stream: false });
  assert.equal(await r.text(), '{"status":"success"}');
  await expectError(await postJSON('/api/push', {}), 400, 'model is required');
  fake.scriptPath('/api/push', { errorAfter: 1, errorMessage: 'unauthorized: access denied' });
  lines = await ndjson(await postJSON('/api/push', { model: 'llama3.2' }));
  assert.deepEqual(lines, [{ status: 'retrieving manifest' }, { error: 'unauthorized: access denied' }]);
  assert.deepEqual(fake.requestsTo('/api/push')[0].body, { model: 'llama3.2', insecure: true });
});

// ---------------------------------------------------------------- create / copy / delete

test('create: from an installed model, from a missing one (pulled first), from uploaded files', async () => {
  let lines = await ndjson(await postJSON('/api/create', { model: 'mine', from: 'qwen3', system: 'You are terse.' }));
  const base = fake.model('qwen3').layers.filter((l) => !l.mediaType.includes('docker'));
  assert.deepEqual(lines.slice(0, base.length), base.map((l) => ({ status: `using existing layer ${l.digest}` })));
  assert.match(lines[base.length].status, /^creating new layer sha256:[0-9a-f]{64}$/);
  assert.deepEqual(lines.slice(-2), [{ status: 'writing manifest' }, { status: 'success' }]);
  assert.equal(lines.length, base.length + 3);
  assert.ok((await tagNames()).includes('mine:latest'));
  const shown = await (await postJSON('/api/show', { model: 'mine' })).json();
  assert.deepEqual(shown.capabilities, ['completion', 'tools', 'thinking'], 'inherited from the base');
  assert.equal(shown.system, 'You are terse.');

  // a base model that is not installed is pulled first (and stays)
  lines = await ndjson(await postJSON('/api/create', { model: 'mine2', from: 'gemma3' }));
  assert.deepEqual(lines[0], { status: 'pulling manifest' });
  const statuses = lines.map((l) => l.status);
  assert.ok(statuses.indexOf('success') < statuses.indexOf('writing manifest', statuses.indexOf('success')), 'pull success, then create');
  assert.ok(statuses.some((st) => st?.startsWith('using existing layer')));
  assert.equal(lines.at(-1).status, 'success');
  const names = await tagNames();
  assert.ok(names.includes('gemma3:latest') && names.includes('mine2:latest'));
  fake.setPullable(false);
  lines = await ndjson(await postJSON('/api/create', { model: 'mine3', from: 'ghost' }));
  assert.deepEqual(lines, [{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }]);
  assert.equal((await tagNames()).includes('mine3:latest'), false);

  // from files: blobs uploaded first
  const gguf = Buffer.from('GGUF fake model bytes');
  const d = sha(gguf);
  assert.equal((await fetch(`${fake.url}/api/blobs/${d}`, { method: 'POST', body: gguf })).status, 201);
  lines = await ndjson(await postJSON('/api/create', { model: 'from-file', files: { 'model.gguf': d }, template: '{{ .Prompt }}' }));
  assert.deepEqual(lines.slice(0, 2), [{ status: 'parsing GGUF' }, { status: `using existing layer ${d}` }]);
  assert.match(lines[2].status, /^creating new layer /);
  assert.deepEqual(lines.slice(3), [{ status: 'writing manifest' }, { status: 'success' }]);
  assert.equal(fake.model('from-file').layers[0].digest, d);
  assert.equal(fake.model('from-file').layers[0].size, gguf.length);
  // stream:false
  const r = await postJSON('/api/create', { model: 'from-file2', files: { 'model.gguf': d }, stream: false });
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(await r.text(), '{"status":"success"}');
  assert.ok((await tagNames()).includes('from-file2:latest'));
});

test('create: errors', async () => {
  const missing = `sha256:${'ab'.repeat(32)}`;
  let lines = await ndjson(await postJSON('/api/create', { model: 'x', files: { 'm.gguf': missing } }));
  assert.deepEqual(lines, [{ status: 'parsing GGUF' }, { error: `open /root/.ollama/models/blobs/sha256-${'ab'.repeat(32)}: no such file or directory` }]);
  await expectError(await postJSON('/api/create', { model: 'x', files: { 'm.gguf': missing }, stream: false }), 500, /no such file or directory$/);
  assert.equal((await tagNames()).includes('x:latest'), false);
  await expectError(await postJSON('/api/create', { model: 'x' }), 400, "neither 'from' or 'files' was specified");
  await expectError(await postJSON('/api/create', { from: 'qwen3' }), 400, 'invalid model name');
  await expectError(await postJSON('/api/create', { model: 'x', files: { '../m.gguf': missing } }), 400, 'file path must be relative');
  await expectError(await postJSON('/api/create', { model: 'x', files: { 'm.gguf': '' } }), 400, 'invalid digest format');
  await expectError(await postJSON('/api/create', { model: 'x', files: {} }), 400, 'unknown type');
  await expectError(await postJSON('/api/create', ''), 400, 'missing request body');
  fake.scriptPath('/api/create', { errorAfter: 0, errorMessage: 'disk full' });
  lines = await ndjson(await postJSON('/api/create', { model: 'x', from: 'qwen3' }));
  assert.deepEqual(lines, [{ error: 'disk full' }]);
  assert.equal((await tagNames()).includes('x:latest'), false);
});

test('copy: 200 with an empty body, the copy listed; unknown source 404', async () => {
  let r = await postJSON('/api/copy', { source: 'llama3.2', destination: 'llama-backup:v1' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), '0');
  assert.equal(await r.text(), '');
  const tags = (await (await fetch(`${fake.url}/api/tags`)).json()).models;
  const src = tags.find((m) => m.name === 'llama3.2:latest');
  const dst = tags.find((m) => m.name === 'llama-backup:v1');
  assert.ok(dst);
  assert.equal(dst.digest, src.digest);
  assert.deepEqual(dst.details, src.details);
  assert.deepEqual(fake.model('llama-backup:v1').layers, fake.model('llama3.2').layers);
  await expectError(await postJSON('/api/copy', { source: 'nope', destination: 'x' }), 404, 'model "nope" not found');
  await expectError(await postJSON('/api/copy', { source: 'llama3.2', destination: '' }), 400, 'destination "" is invalid');
  await expectError(await postJSON('/api/copy', { destination: 'x' }), 400, 'source "" is invalid');
  await expectError(await postJSON('/api/copy', ''), 400, 'missing request body');
  const rec = fake.requestsTo('/api/copy')[0];
  assert.deepEqual(rec.body, { source: 'llama3.2', destination: 'llama-backup:v1' });
  assert.equal(rec.status, 200);
  assert.equal(rec.finished, true);
});

test('delete: 200 with an empty body and the model gone; unknown 404', async () => {
  let r = await sendJSON('DELETE', '/api/delete', { model: 'qwen3' });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '');
  assert.equal((await tagNames()).includes('qwen3:latest'), false);
  await expectError(await postJSON('/api/show', { model: 'qwen3' }), 404, "model 'qwen3' not found");
  await expectError(await sendJSON('DELETE', '/api/delete', { model: 'qwen3' }), 404, "model 'qwen3' not found");
  r = await sendJSON('DELETE', '/api/delete', { name: 'LLAMA3.2' });
  assert.equal(r.status, 200);
  assert.deepEqual(await tagNames(), ['nomic-embed-text:latest', 'hf.co/org/repo:Q4']);
  await expectError(await sendJSON('DELETE', '/api/delete', {}), 400, 'name "" is invalid');
  await expectError(await sendJSON('DELETE', '/api/delete'), 400, 'missing request body');
  await expectError(await sendJSON('DELETE', '/api/delete', '{"model":'), 400, /^invalid character/);
  const rec = fake.requestsTo('/api/delete', 'DELETE')[0];
  assert.deepEqual(rec.body, { model: 'qwen3' });
  assert.equal(rec.status, 200);
});

// ---------------------------------------------------------------- blobs

test('blobs: HEAD 404 → POST 201 → HEAD 200; what the record holds', async () => {
  const content = Buffer.from('hello blob');
  const d = sha(content);
  let r = await fetch(`${fake.url}/api/blobs/${d}`, { method: 'HEAD' });
  assert.equal(r.status, 404);
  assert.equal(fake.hasBlob(d), false);
  r = await fetch(`${fake.url}/api/blobs/${d}`, { method: 'POST', body: content, headers: { authorization: 'Bearer leak?' } });
  assert.equal(r.status, 201);
  assert.equal(await r.text(), '');
  r = await fetch(`${fake.url}/api/blobs/${d}`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(fake.hasBlob(d), true);
  // the dash form names the same file
  assert.equal((await fetch(`${fake.url}/api/blobs/sha256-${d.slice(7)}`, { method: 'HEAD' })).status, 200);
  const rec = fake.blobUploads()[0];
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, `/api/blobs/${d}`);
  assert.equal(rec.rawBody, '');
  assert.equal(rec.body, null);
  assert.equal(rec.bodyBytes, content.length);
  assert.equal(rec.headers.authorization, 'Bearer leak?');
  assert.deepEqual(rec.blob, {
    digest: d, bytes: content.length, sha256: d, matched: true, complete: true, existed: false, stalled: false,
  });
  assert.equal(rec.status, 201);
  assert.equal(rec.finished, true);
  // uploading it again: 200 at once (Ollama does not read the body then)
  r = await fetch(`${fake.url}/api/blobs/${d}`, { method: 'POST', body: content });
  assert.equal(r.status, 200);
  assert.equal(fake.blobUploads()[1].blob.existed, true);
  // model layers and addBlob count as blobs
  assert.equal((await fetch(`${fake.url}/api/blobs/${fake.model('llama3.2').layers[0].digest}`, { method: 'HEAD' })).status, 200);
  const added = fake.addBlob('some content');
  assert.equal(added, sha(Buffer.from('some content')));
  assert.equal((await fetch(`${fake.url}/api/blobs/${added}`, { method: 'HEAD' })).status, 200);
});

test('blobs: digest mismatch 400, invalid digest 400', async () => {
  const claimed = sha(Buffer.from('what I said'));
  const actual = sha(Buffer.from('what I sent'));
  let r = await fetch(`${fake.url}/api/blobs/${claimed}`, { method: 'POST', body: 'what I sent' });
  await expectError(r, 400, `digest mismatch, expected "${claimed}", got "${actual}"`);
  assert.equal((await fetch(`${fake.url}/api/blobs/${claimed}`, { method: 'HEAD' })).status, 404);
  assert.deepEqual(fake.blobUploads()[0].blob, {
    digest: claimed, bytes: 11, sha256: actual, matched: false, complete: true, existed: false, stalled: false,
  });
  // Ollama compares the path digest with "sha256:<hex>" as given: the dash form never matches
  const ok = Buffer.from('dash');
  r = await fetch(`${fake.url}/api/blobs/sha256-${sha(ok).slice(7)}`, { method: 'POST', body: ok });
  await expectError(r, 400, /^digest mismatch/);
  for (const bad of ['abc', `sha256:${'z'.repeat(64)}`, `md5:${'a'.repeat(64)}`]) {
    await expectError(await fetch(`${fake.url}/api/blobs/${bad}`, { method: 'POST', body: 'x' }), 400, 'invalid digest format');
    const h = await fetch(`${fake.url}/api/blobs/${bad}`, { method: 'HEAD' });
    assert.equal(h.status, 400);
  }
  // an empty body hashes to e3b0…
  const empty = sha(Buffer.alloc(0));
  assert.equal((await fetch(`${fake.url}/api/blobs/${empty}`, { method: 'POST' })).status, 201);
  assert.equal(fake.blobUploads().at(-1).blob.bytes, 0);
});

test('blobs: a 300 MiB upload is hashed as it streams, not buffered', { timeout: 120000 }, async () => {
  const MiB = 1024 * 1024;
  const total = 300;
  const chunks = [0, 1, 2, 3].map((k) => Buffer.alloc(MiB, 17 + k * 61));
  const h = createHash('sha256');
  for (let i = 0; i < total; i++) h.update(chunks[i % 4]);
  const d = `sha256:${h.digest('hex')}`;
  global.gc?.();
  const base = process.memoryUsage();
  let peak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss - base.rss, m.arrayBuffers - base.arrayBuffers);
  };
  const res = await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: fake.port, path: `/api/blobs/${d}`, method: 'POST', agent: false,
      headers: { 'content-length': total * MiB, 'content-type': 'application/octet-stream' },
    }, (r) => {
      let text = '';
      r.on('data', (x) => { text += x; });
      r.on('end', () => resolve({ status: r.statusCode, text }));
    });
    req.on('error', reject);
    let i = 0;
    const pump = () => {
      while (i < total) {
        const more = req.write(chunks[i % 4]);
        i++;
        if (i % 16 === 0) sample();
        if (!more) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
  sample();
  assert.equal(res.status, 201, res.text);
  const rec = fake.blobUploads()[0];
  assert.equal(rec.blob.bytes, total * MiB);
  assert.equal(rec.blob.matched, true);
  assert.equal(rec.bodyBytes, total * MiB);
  assert.equal(rec.rawBody, '');
  assert.ok(peak < 120 * MiB, `memory grew by ${Math.round(peak / MiB)} MiB while ${total} MiB went through`);
  assert.equal(fake.hasBlob(d), true);
});

test('blobs: scripted uploads (stall after N bytes, slow reads, early or late status); client abort recorded', async () => {
  const MiB = 1024 * 1024;
  const chunk = Buffer.alloc(MiB, 7);
  const upload = (digest, mib) => {
    const req = http.request({ host: '127.0.0.1', port: fake.port, path: `/api/blobs/${digest}`, method: 'POST', agent: false,
      headers: { 'content-length': mib * MiB } });
    const done = new Promise((resolve) => {
      req.on('response', (r) => { let t = ''; r.on('data', (x) => { t += x; }); r.on('end', () => resolve({ status: r.statusCode, text: t })); });
      req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    let i = 0;
    const pump = () => {
      while (i < mib) {
        i++;
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
    return { req, done };
  };
  const d = sha(Buffer.from('irrelevant'));

  // stallAfterBytes: the fake stops reading; the client is back-pressured; nothing answered
  fake.scriptPath('/api/blobs', { stallAfterBytes: MiB });
  let up = upload(d, 64);
  let rec = await fake.waitForRequest((r) => r.blob?.stalled === true, 5000);
  const frozen = rec.blob.bytes;
  assert.ok(frozen >= MiB && frozen < 64 * MiB);
  assert.equal(rec.status, 0);
  // another round trip through the fake: the stalled upload still has not moved
  assert.equal((await fetch(`${fake.url}/api/blobs/${d}`, { method: 'HEAD' })).status, 404);
  assert.equal(rec.blob.bytes, frozen, 'nothing read after the stall');
  assert.equal(rec.blob.complete, false);
  assert.equal(rec.blob.sha256, null);
  up.req.destroy(); // a stalled reader does not notice this (nor would Ollama); close() ends it
  assert.ok((await up.done).error);

  // stallMs: a stall that ends; reading resumes and the upload completes
  fake.scriptPath('/api/blobs', { stallAfterBytes: MiB, stallMs: 100 });
  const four = Buffer.concat([chunk, chunk, chunk, chunk]);
  up = upload(sha(four), 4);
  rec = await fake.waitForRequest((r) => r.blob?.stalled === true && r.blob.digest === sha(four), 5000);
  assert.equal((await up.done).status, 201);
  assert.equal(rec.blob.bytes, 4 * MiB);
  assert.equal(rec.blob.matched, true);

  // readDelayMs + client abort mid-body
  fake.scriptPath('/api/blobs', { readDelayMs: 20 });
  up = upload(d, 32);
  rec = await fake.waitForRequest((r) => r.path === `/api/blobs/${d}` && r.id > rec.id && r.blob?.bytes > 0, 5000);
  up.req.destroy();
  await until(() => rec.closedAt !== null, 'closedAt of the aborted upload');
  assert.equal(rec.blob.complete, false);
  assert.equal(rec.blob.matched, null);
  assert.ok(rec.blob.bytes < 32 * MiB);
  assert.equal(rec.aborted, true);

  // a status before the body is read (Ollama's early answers) ...
  fake.scriptPath('/api/blobs', { status: 500, error: 'no space left on device' });
  up = upload(d, 4);
  let out = await up.done;
  assert.equal(out.status, 500);
  assert.deepEqual(JSON.parse(out.text), { error: 'no space left on device' });
  assert.equal(fake.blobUploads().at(-1).blob.bytes < 4 * MiB, true);
  // ... or after it, with drainFirst
  fake.scriptPath('/api/blobs', { status: 500, error: 'disk I/O error', drainFirst: true });
  up = upload(d, 4);
  out = await up.done;
  assert.equal(out.status, 500);
  rec = fake.blobUploads().at(-1);
  assert.equal(rec.blob.bytes, 4 * MiB);
  assert.equal(rec.blob.complete, true);
  assert.equal(rec.blob.sha256, sha(Buffer.concat([chunk, chunk, chunk, chunk])));
  // HEAD can be scripted through the same path
  fake.scriptPath('/api/blobs', (body, r) => (r.method === 'HEAD' ? { status: 500, error: 'x' } : null));
  assert.equal((await fetch(`${fake.url}/api/blobs/${d}`, { method: 'HEAD' })).status, 500);
});

// ---------------------------------------------------------------- routing, records, per-route scripts

test('new endpoints: wrong method 405, unknown path 404 (gin plain text)', async () => {
  for (const [method, p] of [['GET', '/api/pull'], ['GET', '/api/push'], ['GET', '/api/create'], ['GET', '/api/copy'],
    ['POST', '/api/delete'], ['GET', '/api/delete'], ['GET', '/api/embeddings'], ['GET', '/api/show'], ['POST', '/api/ps'],
    ['HEAD', '/api/ps'], ['POST', '/api/version'], ['DELETE', '/api/tags'], ['GET', `/api/blobs/sha256:${'a'.repeat(64)}`],
    ['PUT', '/api/generate'], ['DELETE', '/api/blobs/x']]) {
    const r = await rawRequest({ method, path: p, body: method === 'GET' || method === 'HEAD' ? undefined : '{}' });
    assert.equal(r.status, 405, `${method} ${p}`);
    assert.equal(r.headers['content-type'], 'text/plain');
    if (method !== 'HEAD') assert.equal(r.text, '405 method not allowed');
  }
  for (const p of ['/api/blobs', '/api/blobs/', '/api/blobs/a/b', '/api/pulls', '/api/embed/x', '/v1/embeddings']) {
    const r = await rawRequest({ method: 'GET', path: p });
    assert.equal(r.status, 404, p);
    assert.equal(r.text, '404 page not found');
  }
});

test('records: method, path, query, headers (Authorization too), parsed body, bodyBytes', async () => {
  const auth = { authorization: 'Bearer sk-client', 'x-api-key': 'k' };
  const calls = [
    ['POST', '/api/generate?x=1', { model: 'llama3.2', prompt: 'p', stream: false }],
    ['POST', '/api/embed', { model: 'nomic-embed-text', input: ['a'] }],
    ['POST', '/api/embeddings', { model: 'nomic-embed-text', prompt: 'a' }],
    ['POST', '/api/show', { model: 'llama3.2' }],
    ['POST', '/api/pull', { model: 'x1', stream: false }],
    ['POST', '/api/push', { model: 'llama3.2', stream: false }],
    ['POST', '/api/create', { model: 'x2', from: 'llama3.2', stream: false }],
    ['POST', '/api/copy', { source: 'llama3.2', destination: 'x3' }],
    ['DELETE', '/api/delete', { model: 'x3' }],
    ['GET', '/api/ps', undefined],
  ];
  for (const [method, p, body] of calls) {
    const r = await sendJSON(method, p, body, auth);
    assert.ok(r.status < 300, `${method} ${p}: ${r.status}`);
    await r.arrayBuffer();
  }
  assert.equal(fake.requests.length, calls.length);
  fake.requests.forEach((rec, i) => {
    const [method, p, body] = calls[i];
    assert.equal(rec.method, method);
    assert.equal(rec.path, p.split('?')[0]);
    assert.equal(rec.query, p.split('?')[1] ?? '');
    assert.equal(rec.headers.authorization, 'Bearer sk-client');
    assert.equal(rec.headers['x-api-key'], 'k');
    assert.deepEqual(rec.body, body);
    assert.equal(rec.rawBody, body === undefined ? '' : JSON.stringify(body));
    assert.equal(rec.bodyBytes, Buffer.byteLength(rec.rawBody));
    assert.equal(rec.status, 200);
    assert.equal(rec.finished, true);
    assert.equal(rec.closedAt, null);
  });
});

test('scriptPath on plain routes (status, body, drop, hang); reset() clears it', async () => {
  fake.scriptPath('/api/tags', { status: 500, error: 'model list cache unavailable' });
  await expectError(await fetch(`${fake.url}/api/tags`), 500, 'model list cache unavailable');
  fake.scriptPath('/api/version', { body: { version: 'weird' } });
  assert.deepEqual(await (await fetch(`${fake.url}/api/version`)).json(), { version: 'weird' });
  fake.scriptPath('/api/ps', { dropAfter: 0 });
  const dropped = await rawRequest({ method: 'GET', path: '/api/ps' });
  assert.equal(dropped.aborted, true);
  fake.scriptPath('/api/show', (body) => (body.model === 'slow' ? { hang: true } : null));
  assert.equal((await postJSON('/api/show', { model: 'llama3.2' })).status, 200);
  const ac = new AbortController();
  const p = fetch(`${fake.url}/api/show`, { method: 'POST', body: '{"model":"slow"}', signal: ac.signal }).catch((e) => e);
  const rec = await fake.waitForRequest((r) => r.path === '/api/show' && r.body?.model === 'slow', 3000);
  assert.equal(rec.status, 0);
  ac.abort();
  assert.equal((await p).name, 'AbortError');
  await until(() => rec.closedAt !== null, 'closedAt');
  fake.scriptPath('/api/delete', { status: 403, error: 'forbidden' });
  await expectError(await sendJSON('DELETE', '/api/delete', { model: 'qwen3' }), 403, 'forbidden');
  assert.ok(fake.modelNames().includes('qwen3:latest'));
  fake.reset();
  assert.equal((await fetch(`${fake.url}/api/tags`)).status, 200);
  assert.deepEqual(await (await fetch(`${fake.url}/api/version`)).json(), { version: '0.33.0' });
  assert.equal((await fetch(`${fake.url}/api/ps`)).status, 200);
});

test('validModelName follows Ollama name syntax', () => {
  for (const n of ['llama3.2', 'llama3.2:latest', 'library/llama3.2:3b', 'hf.co/org/repo:Q4', 'localhost:5000/ns/m:t', 'a_b-c.d']) {
    assert.equal(validModelName(n), true, n);
  }
  for (const n of ['', 'bad name', 'x:', ':tag', 'a/b/c/d', '-x', 'm:t:u', 'ns/!']) {
    assert.equal(validModelName(n), false, n);
  }
});

test('CLI: --progress-delay-ms and --embedding-length', async () => {
  const script = fileURLToPath(new URL('./fake.mjs', import.meta.url));
  const p = spawn(process.execPath, [script, '--port', '0', '--models', 'e', '--embedding-length', '4', '--progress-delay-ms', '1'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no port line')), 5000);
      createInterface({ input: p.stdout }).once('line', (l) => { clearTimeout(t); resolve(l); });
    });
    const base = `http://127.0.0.1:${JSON.parse(line).port}`;
    const e = await (await fetch(`${base}/api/embed`, { method: 'POST', body: '{"model":"e","input":"x"}' })).json();
    assert.deepEqual(e.embeddings, [embedVector('x', 4)]);
    const text = await (await fetch(`${base}/api/pull`, { method: 'POST', body: '{"model":"n"}' })).text();
    assert.equal(JSON.parse(text.trim().split('\n').at(-1)).status, 'success');
  } finally {
    const code = await new Promise((resolve) => { p.on('exit', resolve); p.kill('SIGTERM'); });
    assert.equal(code, 0);
  }
});

test('the official ollama JS client (tests/node_modules, optional) reads every endpoint', async (t) => {
  let Ollama;
  try {
    ({ Ollama } = await import('ollama'));
  } catch {
    t.skip('npm package "ollama" not installed (cd tests && npm ci)');
    return;
  }
  const client = new Ollama({ host: fake.url });
  assert.deepEqual(await client.version(), { version: '0.33.0' });
  assert.deepEqual((await client.list()).models.map((m) => m.name).slice(0, 2), ['llama3.2:latest', 'qwen3:latest']);
  assert.deepEqual((await client.show({ model: 'qwen3' })).capabilities, ['completion', 'tools', 'thinking']);
  assert.deepEqual(await client.ps(), { models: [] });

  let out = '';
  for await (const part of await client.generate({ model: 'llama3.2', prompt: 'hi', stream: true })) out += part.response;
  assert.equal(out, 'Hello from llama3.2');
  assert.equal((await client.generate({ model: 'llama3.2', prompt: 'hi', options: { num_predict: 1 } })).done_reason, 'length');

  const e = await client.embed({ model: 'nomic-embed-text', input: ['a', 'b'], dimensions: 4 });
  assert.deepEqual(e.embeddings, [embedVector('a', 8, 4), embedVector('b', 8, 4)]);
  assert.deepEqual((await client.embeddings({ model: 'nomic-embed-text', prompt: 'a' })).embedding, embeddingRaw('a', 8));

  const statuses = [];
  for await (const p of await client.pull({ model: 'mistral', stream: true })) statuses.push(p.status);
  assert.equal(statuses.at(-1), 'success');
  assert.deepEqual(await client.pull({ model: 'mistral' }), { status: 'success' });
  fake.setPullable(false);
  await assert.rejects(async () => {
    for await (const p of await client.pull({ model: 'ghost', stream: true })) void p;
  }, /pull model manifest: file does not exist/);
  assert.deepEqual(await client.push({ model: 'mistral' }), { status: 'success' });
  assert.deepEqual(await client.create({ model: 'mine', from: 'mistral', system: 'hi' }), { status: 'success' });
  assert.deepEqual(await client.copy({ source: 'mine', destination: 'mine2' }), { status: 'success' });
  assert.deepEqual(await client.delete({ model: 'mine' }), { status: 'success' });
  await assert.rejects(client.delete({ model: 'mine' }), (err) => err.status_code === 404 && err.error === "model 'mine' not found");
  const names = (await client.list()).models.map((m) => m.name);
  assert.ok(names.includes('mine2:latest') && names.includes('mistral:latest') && !names.includes('mine:latest'));
  assert.deepEqual(fake.requestsTo('/api/delete').map((r) => r.body), [{ name: 'mine' }, { name: 'mine' }], 'the client sends the legacy "name"');
});

test('openConnections counts open TCP connections, kept-alive ones too, until they close', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: fake.port, path: '/api/version', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const base = fake.openConnections;
  await Promise.all([get(), get()]);
  assert.equal(fake.openConnections, base + 2, 'two kept-alive connections stay open');
  agent.destroy();
  const end = performance.now() + 2000;
  while (fake.openConnections !== base && performance.now() < end) await sleep(10);
  assert.equal(fake.openConnections, base, 'both closed');
});
