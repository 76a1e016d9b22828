// The official `openai` Node SDK (v6) against a gateway with API keys (issue
// #3): the SDK's error classes for 401, 403 and 429, and a valid key for chat
// (non-stream and stream) and models.list().
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, PermissionDeniedError, RateLimitError } from 'openai';
import { useGateway, needGateway } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { auth_failures_per_minute: 0 } },
  keys: [{ name: 'full' }, { name: 'scoped', models: 'gpt-3.5-turbo' }, { name: 'limited', rpm: 2 }],
});

/** A client (no retries); the headers of every request it sends are kept in .sent. */
function client(apiKey, opts = {}) {
  const sent = [];
  const c = new OpenAI({
    baseURL: `${env.gw.url}/v1`,
    apiKey,
    maxRetries: 0,
    timeout: 20000,
    fetch: (url, init) => {
      sent.push(new Headers(init?.headers));
      return fetch(url, init);
    },
    ...opts,
  });
  c.sent = sent;
  return c;
}

const messages = [{ role: 'user', content: 'Say hello' }];

test('no key → AuthenticationError (401 invalid_api_key); nothing reaches the backend', needGateway, async () => {
  const c = client('placeholder', { defaultHeaders: { Authorization: null } });
  await assert.rejects(c.chat.completions.create({ model: 'gpt-3.5-turbo', messages }), (e) => {
    assert.ok(e instanceof AuthenticationError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
  assert.equal(c.sent.length, 1, 'no retry');
  assert.equal(c.sent[0].get('authorization'), null, 'the SDK really sent no key');
  await assert.rejects(c.models.list(), (e) => e instanceof AuthenticationError && e.status === 401);
  assert.equal(env.fake.chats().length, 0);
});

test('a wrong key → AuthenticationError, stream or not; the message does not echo it', needGateway, async () => {
  const good = env.gw.secret('full');
  const wrong = `${good.slice(0, -1)}${good.at(-1) === 'A' ? 'B' : 'A'}`;
  for (const key of [wrong, 'sk-not-an-og-key', `og-zzzzzzzzzzzz-${'A'.repeat(43)}`]) {
    const c = client(key);
    await assert.rejects(c.chat.completions.create({ model: 'gpt-3.5-turbo', messages }), (e) => {
      assert.ok(e instanceof AuthenticationError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 401);
      assert.equal(e.code, 'invalid_api_key');
      assert.ok(!e.message.includes(key), `the message echoes the key: ${e.message}`);
      return true;
    });
    await assert.rejects(c.chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true }),
      (e) => e instanceof AuthenticationError && e.status === 401);
    assert.equal(c.sent.length, 2, 'no retries');
  }
  assert.equal(env.fake.chats().length, 0);
});

test('a valid key: chat (non-stream and stream) and models.list()', needGateway, async () => {
  const c = client(env.gw.secret('full'));
  const r = await c.chat.completions.create({ model: 'gpt-3.5-turbo', messages });
  assert.equal(r.choices[0].message.content, 'Hello from llama3.2');
  assert.equal(r.model, 'gpt-3.5-turbo');
  const stream = await c.chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Hello from llama3.2');
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  for (const want of ['gpt-3.5-turbo', 'llama3.2:latest', 'qwen3:latest']) assert.ok(ids.includes(want), `${want} in ${ids}`);
  const one = await c.models.retrieve('gpt-3.5-turbo');
  assert.equal(one.id, 'gpt-3.5-turbo');
  assert.equal(c.sent[0].get('authorization'), `Bearer ${env.gw.secret('full')}`);
  assert.equal(env.fake.chats().length, 2);
});

test('out-of-scope model → PermissionDeniedError (403 model_not_allowed); models.list() filtered', needGateway, async () => {
  const c = client(env.gw.secret('scoped'));
  await assert.rejects(c.chat.completions.create({ model: 'qwen3', messages }), (e) => {
    assert.ok(e instanceof PermissionDeniedError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 403);
    assert.equal(e.code, 'model_not_allowed');
    assert.equal(e.type, 'permission_error');
    assert.equal(e.param, 'model');
    return true;
  });
  await assert.rejects(c.chat.completions.create({ model: 'llama3.2', messages, stream: true }),
    (e) => e instanceof PermissionDeniedError && e.status === 403);
  await assert.rejects(c.models.retrieve('qwen3:latest'), (e) => e instanceof PermissionDeniedError && e.status === 403);
  assert.equal(env.fake.chats().length, 0, 'nothing reached the backend');
  const ok = await c.chat.completions.create({ model: 'gpt-3.5-turbo', messages });
  assert.equal(ok.choices[0].message.content, 'Hello from llama3.2');
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['gpt-3.5-turbo']);
});

test('over rpm → RateLimitError (429) with Retry-After; rate-limit headers on the successes', needGateway, async () => {
  const c = client(env.gw.secret('limited'));
  const a = await c.chat.completions.create({ model: 'gpt-3.5-turbo', messages }).withResponse();
  assert.equal(a.response.headers.get('x-ratelimit-limit-requests'), '2');
  assert.equal(a.response.headers.get('x-ratelimit-remaining-requests'), '1');
  const b = await c.chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true }).withResponse();
  for await (const chunk of b.data) void chunk;
  assert.equal(b.response.headers.get('x-ratelimit-remaining-requests'), '0');
  await assert.rejects(c.chat.completions.create({ model: 'gpt-3.5-turbo', messages }), (e) => {
    assert.ok(e instanceof RateLimitError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.type, 'rate_limit_error');
    assert.match(e.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    return true;
  });
  assert.equal(c.sent.length, 3, 'maxRetries 0: no retry');
  assert.equal(env.fake.chats().length, 2);
});
