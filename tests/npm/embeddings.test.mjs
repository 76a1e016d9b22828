// embeddings.create of the official `openai` Node SDK (v6) against the real
// gateway and the fake Ollama. The SDK asks for base64 when the caller names
// no encoding_format and decodes the answer to float32 values itself; it
// returns what the gateway sent when the caller names one.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { useGateway, needGateway } from '../integration/harness.mjs';
import { embedVector } from '../fake_ollama/fake.mjs';

const env = useGateway({ before, after, beforeEach });

/** Bodies the SDK sent to the gateway, newest last. */
const sent = [];

function client() {
  return new OpenAI({
    baseURL: `${env.gw.url}/v1`,
    apiKey: 'sk-unused',
    maxRetries: 0,
    timeout: 20000,
    fetch: async (url, init) => {
      sent.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
}

function assertFloats(got, want, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  got.forEach((x, i) => assert.equal(Math.fround(x), want[i], `${what}[${i}]`));
}

test('a string, no encoding_format: the SDK asks for base64 and decodes our answer', needGateway, async () => {
  const r = await client().embeddings.create({ model: 'text-embedding-3-small', input: 'The quick brown fox' });
  assert.equal(sent.at(-1).encoding_format, 'base64', 'what the SDK sends by default');
  assert.equal(r.object, 'list');
  assert.equal(r.model, 'text-embedding-3-small');
  assert.equal(r.data.length, 1);
  assert.equal(r.data[0].object, 'embedding');
  assert.equal(r.data[0].index, 0);
  assert.ok(Array.isArray(r.data[0].embedding), 'decoded to numbers');
  assertFloats(r.data[0].embedding, embedVector('The quick brown fox', 8), 'decoded');
  assert.deepEqual(r.usage, { prompt_tokens: 4, total_tokens: 4 });
});

test('an array with encoding_format float: numbers, in order', needGateway, async () => {
  const input = ['alpha', 'beta gamma', 'delta'];
  const r = await client().embeddings.create({ model: 'text-embedding-3-small', input, encoding_format: 'float' });
  assert.equal(sent.at(-1).encoding_format, 'float');
  assert.equal(r.data.length, 3);
  r.data.forEach((d, i) => {
    assert.equal(d.index, i);
    assertFloats(d.embedding, embedVector(input[i], 8), `float ${i}`);
  });
  assert.deepEqual(r.usage, { prompt_tokens: 4, total_tokens: 4 });
});

test('an array with encoding_format base64: the string as sent, little-endian float32', needGateway, async () => {
  const input = ['one', 'two'];
  const r = await client().embeddings.create({ model: 'nomic-embed-text', input, encoding_format: 'base64', dimensions: 4 });
  assert.equal(r.model, 'nomic-embed-text');
  r.data.forEach((d, i) => {
    assert.equal(typeof d.embedding, 'string');
    const buf = Buffer.from(d.embedding, 'base64');
    const floats = Array.from({ length: buf.length / 4 }, (_, k) => buf.readFloatLE(4 * k));
    assertFloats(floats, embedVector(input[i], 8, 4), `base64 ${i}`);
  });
  const up = env.fake.requests.filter((x) => x.path === '/api/embed').at(-1).body;
  assert.deepEqual(up, { model: 'nomic-embed-text', input, truncate: true, dimensions: 4 });
});

test('token arrays → BadRequestError naming input; unknown model → NotFoundError', needGateway, async () => {
  await assert.rejects(client().embeddings.create({ model: 'text-embedding-3-small', input: [[101, 2023], [102]] }), (e) => {
    assert.ok(e instanceof BadRequestError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'input');
    assert.match(e.message, /Token arrays are not supported/);
    return true;
  });
  await assert.rejects(client().embeddings.create({ model: 'no-such-embedder', input: 'x' }), (e) => {
    assert.ok(e instanceof NotFoundError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  assert.equal(env.fake.requests.filter((x) => x.path === '/api/embed').length, 0);
});
