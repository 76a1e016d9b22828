// The memory budget (limits.max_buffered_bytes) must come back whole after
// every request, whatever path its bytes took: a charge that is never
// released spends the budget a little at a time until every new request is
// refused with 503. A 256 KiB budget and five hundred requests of every kind
// (streamed answers sent as they come and sent whole, non-streamed answers,
// errors, embeddings, Ollama's own API), several MiB of answers in all:
// with a leak of even one answer buffer per request, 503s start within the
// run.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { useGateway, needGateway, chat, post, jsonOf, readSSE, simpleChat } from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { max_body_bytes: 65536, max_buffered_bytes: 256 << 10 } },
});

const ROUNDS = 100;

test('every kind of request gives its budget back', needGateway, async () => {
  const { fake, gw } = env;
  const statuses = new Map();
  const count = (what, status) => {
    const k = `${what} ${status}`;
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
  };
  // 100 tokens: each streamed answer is about 10 KB of events
  const tokens = Array.from({ length: 100 }, (_, i) => ` t${i}`);
  for (let i = 0; i < ROUNDS; i++) {
    // a streamed answer, at whatever pace the fake sends it
    fake.script({ tokens });
    const s = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
    count('stream', s.status);
    count(s.headers.get('content-length') ? 'stream sent whole' : 'stream sent as it came', s.status);
    if (s.status === 200) await readSSE(s);
    fake.script(null);
    // a non-streamed answer
    const n = await jsonOf(await chat(gw.url, simpleChat()));
    count('whole', n.status);
    // an error from the backend, before the first byte
    fake.script({ status: 500, error: 'boom' });
    const e = await jsonOf(await chat(gw.url, simpleChat()));
    count('backend error', e.status);
    fake.script(null);
    // embeddings and the native API
    const emb = await jsonOf(await post(gw.url, '/v1/embeddings', { model: 'llama3.2', input: ['a', 'b'] }));
    count('embeddings', emb.status);
    const nat = await post(gw.url, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] });
    count('native', nat.status);
    await nat.text();
  }
  const refused = [...statuses].filter(([k]) => k.endsWith(' 503'));
  assert.deepEqual(refused, [], `503s (the budget leaked): ${JSON.stringify([...statuses])}`);
  assert.equal(statuses.get('stream 200'), ROUNDS);
  assert.ok(statuses.get('stream sent whole 200') > 0, `some streams sent whole: ${JSON.stringify([...statuses])}`);
  assert.equal(statuses.get('whole 200'), ROUNDS);
  assert.equal(statuses.get('backend error 500') ?? statuses.get('backend error 502'), ROUNDS,
    JSON.stringify([...statuses]));
  assert.equal(statuses.get('embeddings 200'), ROUNDS);
  assert.equal(statuses.get('native 200'), ROUNDS);
});
