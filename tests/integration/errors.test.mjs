// Errors: OpenAI-shaped bodies with the right status (DESIGN.md error table),
// before the stream (JSON) and after its first byte (a final SSE error frame,
// no [DONE]).
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, chat, post, jsonOf, readSSE, simpleChat, waitFor, get,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: {
    limits: { max_body_bytes: 4096, first_token_timeout_s: 2, idle_stream_timeout_s: 2, keepalive_interval_s: 30 },
  },
});

/** Assert an OpenAI error response; returns the error object. */
async function expectError(res, status, { type, code, param } = {}) {
  const r = await jsonOf(res);
  assert.equal(r.status, status, `status (body: ${r.text})`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(r.headers.get('x-request-id'), 'x-request-id on error responses');
  assert.ok(r.json && typeof r.json.error === 'object' && r.json.error !== null, `OpenAI error body: ${r.text}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  if (type !== undefined) assert.equal(e.type, type);
  if (code !== undefined) assert.equal(e.code, code);
  if (param !== undefined) assert.equal(e.param, param);
  return { error: e, headers: r.headers };
}

/** Assert a stream that ended with an error frame and no [DONE]; returns the error object. */
function expectStreamError(sse, code) {
  assert.equal(sse.done, false, 'no [DONE] after an error');
  assert.equal(sse.errors.length, 1, 'exactly one error frame');
  const last = sse.dataRecords.at(-1);
  assert.equal(JSON.parse(last.data).error !== undefined, true, 'the error frame is the last data record');
  const e = sse.errors[0].error;
  assert.equal(typeof e, 'object');
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  if (code) assert.equal(e.code, code);
  const cc = sse.chunks.filter((c) => c.choices?.length);
  assert.ok(!cc.some((c) => c.choices[0].finish_reason), 'no finish chunk: the answer was not complete');
  assert.equal(sse.partial, false, 'the error frame ends with a blank line');
  return e;
}

test('malformed JSON → 400 invalid_request_error, nothing sent upstream', needGateway, async () => {
  const { fake, gw } = env;
  await expectError(await chat(gw.url, '{"model":"llama3.2","messages":['), 400, { type: 'invalid_request_error' });
  await expectError(await chat(gw.url, '[1,2]'), 400, { type: 'invalid_request_error' });
  await expectError(await chat(gw.url, ''), 400, { type: 'invalid_request_error' });
  assert.equal(fake.chats().length, 0);
});

test('wrong field types → 400 naming the field', needGateway, async () => {
  const { fake, gw } = env;
  const cases = [
    [simpleChat('llama3.2', { temperature: 'hot' }), 'temperature'],
    [{ model: 'llama3.2', messages: 3 }, 'messages'],
    [simpleChat('llama3.2', { n: 2 }), 'n'],
    [simpleChat('llama3.2', { stream: 'yes' }), 'stream'],
    [simpleChat('llama3.2', { max_tokens: 'many' }), 'max_tokens'],
    [simpleChat('llama3.2', { stop: 5 }), 'stop'],
    [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 7, messages: [{ role: 'user', content: 'x' }] }, 'model'],
  ];
  for (const [body, param] of cases) {
    const { error } = await expectError(await chat(gw.url, body), 400, { type: 'invalid_request_error' });
    assert.ok(error.param === param || error.param?.startsWith(`${param}`), `param for ${JSON.stringify(body)}: ${error.param}`);
  }
  assert.equal(fake.chats().length, 0, 'rejected requests never reach a backend');
});

test('bad message content and tool-call arguments → 400', needGateway, async () => {
  const { fake, gw } = env;
  await expectError(await chat(gw.url, { model: 'llama3.2', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] }), 400, { type: 'invalid_request_error' });
  const { error } = await expectError(await chat(gw.url, {
    model: 'llama3.2',
    messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: 'not json' } }] }],
  }), 400, { type: 'invalid_request_error' });
  assert.equal(error.param, 'messages[0].tool_calls[0].function.arguments');
  assert.equal(fake.chats().length, 0);
});

test('unknown model → 404 model_not_found, nothing reaches /api/chat', needGateway, async () => {
  const { fake, gw } = env;
  const { error } = await expectError(await chat(gw.url, simpleChat('no-such-model')), 404,
    { type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
  assert.match(error.message, /no-such-model/);
  await expectError(await chat(gw.url, simpleChat('no-such-model', { stream: true })), 404, { code: 'model_not_found' });
  assert.equal(fake.chats().length, 0);
});

test('body over max_body_bytes → 413 request_too_large', needGateway, async () => {
  const { fake, gw } = env;
  const big = simpleChat('llama3.2');
  big.messages[0].content = 'x'.repeat(10000);
  await expectError(await chat(gw.url, big), 413, { type: 'invalid_request_error', code: 'request_too_large' });
  assert.equal(fake.chats().length, 0);
  // the gateway still serves normally afterwards
  const ok = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
  assert.equal(ok.status, 200);
});

test('backend 400 → 400 invalid_request_error', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 400, error: 'something the backend disliked' });
  const { error } = await expectError(await chat(gw.url, simpleChat('llama3.2')), 400, { type: 'invalid_request_error' });
  assert.match(error.message, /something the backend disliked/);
});

test('backend 404 (model vanished since discovery) → 404 model_not_found', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 404, error: "model 'llama3.2' not found" });
  await expectError(await chat(gw.url, simpleChat('llama3.2')), 404, { code: 'model_not_found' });
});

test('backend 500 → 502 upstream_error naming the backend', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 500, error: 'kaboom in the runner' });
  const { error } = await expectError(await chat(gw.url, simpleChat('llama3.2')), 502, { type: 'api_error', code: 'upstream_error' });
  assert.match(error.message, /fake0/, 'message says which backend');
  assert.match(error.message, /kaboom in the runner/, 'message says why');
  assert.equal(fake.chats().length, 1, 'a single backend: no second attempt');
  // the same before the first byte of a stream: a JSON error, not SSE
  fake.reset();
  fake.script({ status: 500, error: 'kaboom again' });
  await expectError(await chat(gw.url, simpleChat('llama3.2', { stream: true })), 502, { code: 'upstream_error' });
});

test('deterministic backend 500s: invalid format → 400 response_format; option type error → 502 x-should-retry false', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 500, error: 'invalid format: "xml"; expected "json" or a valid JSON Schema object' });
  await expectError(await chat(gw.url, simpleChat('llama3.2')), 400, { type: 'invalid_request_error', param: 'response_format' });
  fake.script({ status: 500, error: 'option "temperature" must be of type float32' });
  const { headers } = await expectError(await chat(gw.url, simpleChat('llama3.2')), 502, { code: 'upstream_error' });
  assert.equal(headers.get('x-should-retry'), 'false');
});

test('backend 503 → 503 backend_unavailable', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 503, error: 'server busy, please try again.  maximum pending requests exceeded' });
  await expectError(await chat(gw.url, simpleChat('llama3.2')), 503, { type: 'api_error', code: 'backend_unavailable' });
});

test('backend non-JSON error page → 502, raw body not passed through', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ status: 502, body: '<html>nginx bad gateway</html>', contentType: 'text/html' });
  const { error } = await expectError(await chat(gw.url, simpleChat('llama3.2')), 502, { code: 'upstream_error' });
  assert.ok(!error.message.includes('<html>'), error.message);
});

test('backend hangs (non-stream) → 504 upstream_timeout after first_token_timeout_s; upstream closed', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ hang: true });
  const t0 = performance.now();
  await expectError(await chat(gw.url, simpleChat('llama3.2')), 504, { type: 'api_error', code: 'upstream_timeout' });
  const dt = performance.now() - t0;
  assert.ok(dt >= 1800 && dt < 4500, `timed out after ${Math.round(dt)} ms (limit 2 s)`);
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 1000, 10, 'gateway closed the upstream request');
});

test('backend hangs (stream, no keep-alive yet) → 504 upstream_timeout', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ hang: true });
  await expectError(await chat(gw.url, simpleChat('llama3.2', { stream: true })), 504, { code: 'upstream_timeout' });
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 1000, 10, 'gateway closed the upstream request');
});

test('mid-stream error line → content so far, then an error frame, no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['one', ' two', ' three'], errorAfter: 2, errorMessage: 'an error was encountered while running the model: CUDA out of memory' });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  assert.equal(res.status, 200);
  const sse = await readSSE(res);
  assert.equal(sse.content, 'one two');
  const e = expectStreamError(sse, 'upstream_error');
  assert.equal(e.type, 'api_error');
  assert.match(e.message, /CUDA out of memory/);
});

test('mid-stream error before any content (error is the first line) → error frame or JSON error', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['x'], errorAfter: 0, errorMessage: 'runner died' });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  if (res.status === 200) {
    expectStreamError(await readSSE(res), 'upstream_error');
  } else {
    await expectError(res, 502, { code: 'upstream_error' });
  }
});

test('garbage line mid-stream → error frame, no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c'], garbageAfter: 1 });
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  assert.equal(sse.content, 'a');
  expectStreamError(sse, 'upstream_error');
});

test('backend drops the connection mid-stream → error frame, no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c', 'd'], dropAfter: 2 });
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  assert.equal(sse.content, 'ab');
  expectStreamError(sse, 'upstream_error');
});

test('backend ends the stream without a done line → error frame, no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ lines: [{ model: 'llama3.2', created_at: '', message: { role: 'assistant', content: 'cut' }, done: false }] });
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  assert.equal(sse.content, 'cut');
  expectStreamError(sse, 'upstream_error');
});

test('backend drops the connection on a non-stream request → 502', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a'], dropAfter: 0 });
  await expectError(await chat(gw.url, simpleChat('llama3.2')), 502, { code: 'upstream_error' });
});

test('idle timeout mid-stream → error frame upstream_timeout, no [DONE], upstream closed', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c'], stallAfter: 1 });
  const t0 = performance.now();
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  const dt = performance.now() - t0;
  assert.equal(sse.content, 'a');
  expectStreamError(sse, 'upstream_timeout');
  assert.ok(dt >= 1800 && dt < 4500, `idle timeout after ${Math.round(dt)} ms (limit 2 s)`);
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 1000, 10, 'gateway closed the upstream request');
});

test('x-request-id on every response: echoed when sent, generated and unique otherwise', needGateway, async () => {
  const { gw } = env;
  const mine = 'req-test-0123456789';
  const answers = [
    await chat(gw.url, simpleChat('llama3.2'), { headers: { 'x-request-id': mine } }),
    await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: { 'x-request-id': mine } }),
    await chat(gw.url, '{bad', { headers: { 'x-request-id': mine } }),
    await chat(gw.url, simpleChat('nope'), { headers: { 'x-request-id': mine } }),
    await get(`${gw.url}/v1/models`, { headers: { 'x-request-id': mine } }),
  ];
  for (const r of answers) {
    assert.equal(r.headers.get('x-request-id'), mine, `${r.url} ${r.status}`);
    await r.arrayBuffer();
  }
  const ids = [];
  for (const r of [await chat(gw.url, simpleChat('llama3.2')), await chat(gw.url, simpleChat('llama3.2')),
    await get(`${gw.url}/healthz`), await chat(gw.url, simpleChat('nope'))]) {
    const id = r.headers.get('x-request-id');
    assert.ok(id && id.length >= 8, `generated x-request-id: ${id}`);
    ids.push(id);
    await r.arrayBuffer();
  }
  assert.equal(new Set(ids).size, ids.length, 'generated ids are unique');
});

test('unknown route → 404 OpenAI-shaped error; wrong method → 404/405', needGateway, async () => {
  const { gw } = env;
  await expectError(await get(`${gw.url}/v1/nope`), 404);
  const r = await get(`${gw.url}/v1/chat/completions`);
  assert.ok([404, 405].includes(r.status), `GET /v1/chat/completions → ${r.status}`);
  await r.arrayBuffer();
});

test('the gateway survives all of the above: still healthy', needGateway, async () => {
  const { gw } = env;
  assert.equal((await get(`${gw.url}/healthz`)).status, 200);
  const r = await jsonOf(await post(gw.url, '/v1/chat/completions', simpleChat('llama3.2')));
  assert.equal(r.status, 200);
  assert.equal(gw.exitCode, null);
});
