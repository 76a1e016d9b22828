// The relay engine's clocks against a backend that dribbles: one byte every
// 100 ms keeps bytes moving but completes no line for seconds, so only clocks
// that count lines (streamed) or the whole answer (non-streamed) can fire.
// Limits are 1 s; each test allows the limit plus a 250 ms tick plus slack
// for a sanitizer build, far below what the dribbled answer would take
// (well over 10 s).
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { useGateway, needGateway, chat, post, jsonOf, readSSE, simpleChat, waitFor } from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { first_token_timeout_s: 1, idle_stream_timeout_s: 1, keepalive_interval_s: 30 } },
});

const LIMIT_MS = 1000 + 250 + 1250;

async function upstreamClosed(fake) {
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 1000, 10, 'the gateway closed the dribbling upstream request');
}

test('streamed: a dribbling first line trips first_token_timeout_s (504)', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b'], dribbleMs: 100 });
  const t0 = performance.now();
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  const ms = performance.now() - t0;
  assert.equal(r.status, 504, r.text);
  assert.equal(r.json.error.code, 'upstream_timeout');
  assert.match(r.json.error.message, /first_token_timeout_s/);
  assert.ok(ms >= 900 && ms < LIMIT_MS, `504 after ${Math.round(ms)} ms (limit 1 s)`);
  await upstreamClosed(fake);
});

test('streamed: a stream that starts, then dribbles, trips idle_stream_timeout_s (error frame)', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['one', ' two', ' three'], dribbleMs: 100, dribbleFrom: 1 });
  const t0 = performance.now();
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  assert.equal(res.status, 200);
  const sse = await readSSE(res, { timeoutMs: 10000 });
  const ms = performance.now() - t0;
  assert.equal(sse.content, 'one', 'the first line went through');
  assert.equal(sse.done, false, 'no [DONE]');
  assert.equal(sse.errors.length, 1, 'one error frame');
  assert.equal(sse.errors[0].error.code, 'upstream_timeout');
  assert.match(sse.errors[0].error.message, /idle_stream_timeout_s/);
  assert.ok(ms >= 900 && ms < LIMIT_MS, `error frame after ${Math.round(ms)} ms (limit 1 s)`);
  await upstreamClosed(fake);
});

test('non-streamed: a dribbled answer must be complete within first_token_timeout_s (504)', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b'], dribbleMs: 100 });
  const t0 = performance.now();
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
  const ms = performance.now() - t0;
  assert.equal(r.status, 504, r.text);
  assert.equal(r.json.error.code, 'upstream_timeout');
  assert.match(r.json.error.message, /finish answering within 1 s \(limits\.first_token_timeout_s\)/);
  assert.ok(ms >= 900 && ms < LIMIT_MS, `504 after ${Math.round(ms)} ms (limit 1 s)`);
  await upstreamClosed(fake);
});

test('native /api/chat, streamed: the dribbling stream ends with Ollama\'s error line', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['one', ' two'], dribbleMs: 100, dribbleFrom: 1 });
  const t0 = performance.now();
  const res = await post(gw.url, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.status, 200);
  const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ms = performance.now() - t0;
  assert.equal(lines[0].message.content, 'one');
  assert.match(lines.at(-1).error ?? '', /idle_stream_timeout_s/);
  assert.ok(ms >= 900 && ms < LIMIT_MS, `error line after ${Math.round(ms)} ms (limit 1 s)`);
  await upstreamClosed(fake);
});

test('lines that keep coming, slower in total than the limits, are never cut', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 400 });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const sse = await readSSE(res, { timeoutMs: 10000 });
  assert.equal(sse.errors.length, 0, JSON.stringify(sse.errors));
  assert.equal(sse.content, 'abcdef');
  assert.equal(sse.done, true);
});
