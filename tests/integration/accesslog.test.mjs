// The access log: one JSON line per request on stdout with DESIGN.md's
// fields, never prompt or answer text.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { useGateway, needGateway, chat, readSSE, jsonOf, get, waitFor } from './harness.mjs';

const env = useGateway({ before, after, beforeEach });

const FIELDS = ['ts', 'request_id', 'client', 'key_id', 'key_name', 'method', 'path', 'status', 'model', 'upstream_model',
  'backend', 'stream', 'prompt_tokens', 'completion_tokens', 'ttft_ms', 'duration_ms', 'error'];

const SECRET_PROMPT = 'SECRET-PROMPT-7f3a';
const SECRET_ANSWER = 'SECRET-ANSWER-9c1e';

async function lineFor(gw, requestId) {
  return waitFor(() => gw.stdoutLines.find((l) => l.request_id === requestId), 3000, 20, `access line for ${requestId}`);
}

function assertFields(l) {
  for (const f of FIELDS) assert.ok(f in l, `field ${f} in ${JSON.stringify(l)}`);
  assert.ok(!Number.isNaN(Date.parse(l.ts)), `ts parses: ${l.ts}`);
  assert.match(l.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  assert.ok(Math.abs(Date.parse(l.ts) - Date.now()) < 60000, 'ts is now');
  assert.equal(typeof l.status, 'number');
  assert.equal(typeof l.duration_ms, 'number');
  assert.ok(l.duration_ms >= 0);
  assert.equal(typeof l.stream, 'boolean');
  // the tests connect from 127.0.0.1, and no proxy is trusted
  assert.equal(l.client, '127.0.0.1');
}

test('stream request: one line with every field, right values, no text', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: [SECRET_ANSWER, ' more'], metrics: { prompt_eval_count: 12, eval_count: 2 }, firstDelayMs: 150 });
  const res = await chat(gw.url, {
    model: 'gpt-3.5-turbo', stream: true, messages: [{ role: 'user', content: SECRET_PROMPT }],
  }, { headers: { 'x-request-id': 'acc-stream-1' } });
  const sse = await readSSE(res);
  assert.equal(sse.done, true);
  const l = await lineFor(gw, 'acc-stream-1');
  assertFields(l);
  assert.equal(l.method, 'POST');
  assert.equal(l.path, '/v1/chat/completions');
  assert.equal(l.status, 200);
  assert.equal(l.model, 'gpt-3.5-turbo');
  assert.equal(l.upstream_model, 'llama3.2');
  assert.equal(l.backend, 'fake0');
  assert.equal(l.stream, true);
  assert.equal(l.prompt_tokens, 12);
  assert.equal(l.completion_tokens, 2);
  assert.equal(typeof l.ttft_ms, 'number');
  assert.ok(l.ttft_ms >= 140, `ttft_ms ${l.ttft_ms} includes the 150 ms first-token delay`);
  assert.ok(l.duration_ms >= l.ttft_ms);
  assert.equal(l.error, null);
  assert.equal(l.key_id, null, 'auth none: no key');
  assert.equal(l.key_name, null, 'auth none: no key name');
  assert.equal(gw.stdoutLines.filter((x) => x.request_id === 'acc-stream-1').length, 1, 'exactly one line');
});

test('non-stream request line', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: [SECRET_ANSWER], metrics: { prompt_eval_count: 5, eval_count: 1 } });
  const r = await jsonOf(await chat(gw.url, { model: 'llama3.2', messages: [{ role: 'user', content: SECRET_PROMPT }] }));
  assert.equal(r.status, 200);
  const l = await lineFor(gw, r.headers.get('x-request-id'));
  assertFields(l);
  assert.equal(l.stream, false);
  assert.equal(l.model, 'llama3.2');
  assert.equal(l.upstream_model, 'llama3.2');
  assert.equal(l.prompt_tokens, 5);
  assert.equal(l.completion_tokens, 1);
  assert.equal(l.status, 200);
});

test('error lines carry the status and the error code', needGateway, async () => {
  const { fake, gw } = env;
  let r = await chat(gw.url, { model: 'nope', messages: [{ role: 'user', content: SECRET_PROMPT }] });
  await r.arrayBuffer();
  let l = await lineFor(gw, r.headers.get('x-request-id'));
  assertFields(l);
  assert.equal(l.status, 404);
  assert.equal(l.model, 'nope');
  assert.equal(l.error, 'model_not_found');

  fake.script({ status: 500, error: 'boom' });
  r = await chat(gw.url, { model: 'llama3.2', messages: [{ role: 'user', content: SECRET_PROMPT }] });
  await r.arrayBuffer();
  l = await lineFor(gw, r.headers.get('x-request-id'));
  assert.equal(l.status, 502);
  assert.equal(l.error, 'upstream_error');
  assert.equal(l.backend, 'fake0');

  fake.script({ tokens: ['a', 'b'], errorAfter: 1 });
  r = await chat(gw.url, { model: 'llama3.2', stream: true, messages: [{ role: 'user', content: SECRET_PROMPT }] });
  await readSSE(r);
  l = await lineFor(gw, r.headers.get('x-request-id'));
  assert.equal(l.status, 200, 'the status that was sent');
  assert.equal(l.error, 'upstream_error', 'a mid-stream error is logged');
});

test('other routes are logged too', needGateway, async () => {
  const { gw } = env;
  const r = await get(`${gw.url}/v1/models`);
  await r.arrayBuffer();
  const l = await lineFor(gw, r.headers.get('x-request-id'));
  assert.equal(l.method, 'GET');
  assert.equal(l.path, '/v1/models');
  assert.equal(l.status, 200);
});

test('no prompt or answer text, no secrets anywhere on stdout or stderr', needGateway, async () => {
  const { gw } = env;
  await chat(gw.url, { model: 'llama3.2', messages: [{ role: 'user', content: SECRET_PROMPT }] }, { headers: { authorization: 'Bearer sk-CLIENTSECRET' } }).then((r) => r.arrayBuffer());
  await waitFor(() => gw.stdoutRaw.length > 3, 3000);
  const all = gw.stdoutRaw.join('\n') + gw.stderr;
  for (const s of [SECRET_PROMPT, SECRET_ANSWER, 'CLIENTSECRET']) assert.ok(!all.includes(s), `${s} leaked into the logs`);
  for (const raw of gw.stdoutRaw) assert.doesNotThrow(() => JSON.parse(raw), raw);
});
