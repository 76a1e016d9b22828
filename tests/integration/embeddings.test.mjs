// POST /v1/embeddings through the real gateway to the fake Ollama's
// /api/embed: aliases and their options, float and base64 answers, what the
// backend received, the request rules' 400s (never sent on), key scopes,
// unknown models, backend errors and broken backend answers, and large
// requests and answers.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  useGateway, needGateway, post, get, jsonOf, bearer, expectApiError, chat, simpleChat, waitFor,
} from './harness.mjs';
import { DEFAULT_MODELS, embedVector } from '../fake_ollama/fake.mjs';

const BIG_DIM = 1024;

const env = useGateway({ before, after, beforeEach }, {
  fake: {
    models: [...DEFAULT_MODELS, {
      name: 'big-embed:latest', capabilities: ['embedding'], context_length: 8192, embedding_length: BIG_DIM,
    }],
  },
  config: {
    aliases: {
      'text-embedding-3-large': { model: 'nomic-embed-text', options: { num_ctx: 4 } },
      'text-embedding-big': 'big-embed',
    },
  },
  keys: [{ name: 'full' }, { name: 'embed-only', models: ['text-embedding-3-*'] }, { name: 'chat-only', models: ['gpt-3.5-turbo'] }],
});

function embed(body, key = 'full', opts = {}) {
  return post(env.gw.url, '/v1/embeddings', body, { headers: bearer(env.gw.secret(key)), timeoutMs: 60000, ...opts });
}

/** The /api/embed requests the fake received. */
function embedsSent() {
  return env.fake.requests.filter((r) => r.path === '/api/embed');
}

/** A successful embeddings list: shape, order, model, usage. Returns the JSON. */
async function expectList(res, model, count) {
  const r = await jsonOf(res);
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const j = r.json;
  assert.deepEqual(Object.keys(j), ['object', 'data', 'model', 'usage']);
  assert.equal(j.object, 'list');
  assert.equal(j.model, model, 'the name the client asked for');
  assert.equal(j.data.length, count);
  j.data.forEach((d, i) => {
    assert.deepEqual(Object.keys(d), ['object', 'index', 'embedding']);
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
  });
  assert.deepEqual(Object.keys(j.usage), ['prompt_tokens', 'total_tokens']);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens);
  return j;
}

/** base64 of little-endian float32 → numbers. */
function floatsOf(b64) {
  const buf = Buffer.from(b64, 'base64');
  assert.equal(buf.length % 4, 0);
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(4 * i));
}

function assertVector(got, want, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    // the float form reads back as the same float32
    assert.equal(Math.fround(got[i]), want[i], `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

test('a string through an alias: floats, usage, and what the backend got', needGateway, async () => {
  const j = await expectList(await embed({ model: 'text-embedding-3-small', input: 'hello embedding world' }),
    'text-embedding-3-small', 1);
  assertVector(j.data[0].embedding, embedVector('hello embedding world', 8), 'vector');
  assert.deepEqual(j.usage, { prompt_tokens: 3, total_tokens: 3 });
  const sent = embedsSent();
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].body, { model: 'nomic-embed-text', input: ['hello embedding world'], truncate: true });
  for (const h of ['authorization', 'api-key', 'x-api-key']) assert.equal(sent[0].headers[h], undefined);
  // the access-log line is written as the request completes, just after the answer
  const log = await waitFor(() => env.gw.accessLog('/v1/embeddings').at(-1), 5000, 20, 'the access-log line');
  assert.equal(log.status, 200);
  assert.equal(log.model, 'text-embedding-3-small');
  assert.equal(log.prompt_tokens, 3, 'tokens are counted for the key');
  assert.equal(log.completion_tokens, 0);
  assert.equal(log.stream, false);
});

test('an array in order, base64 decoding to the same float32 values', needGateway, async () => {
  const input = ['first', 'the second one', '', 'fourth'];
  for (const encoding_format of ['float', 'base64']) {
    const j = await expectList(await embed({ model: 'nomic-embed-text', input, encoding_format, user: 'u-1' }),
      'nomic-embed-text', 4);
    input.forEach((text, i) => {
      const v = j.data[i].embedding;
      if (encoding_format === 'base64') {
        assert.equal(typeof v, 'string');
        assertVector(floatsOf(v), embedVector(text, 8), `base64 ${i}`);
      } else {
        assertVector(v, embedVector(text, 8), `float ${i}`);
      }
    });
    assert.deepEqual(j.usage, { prompt_tokens: 6, total_tokens: 6 });
  }
  const sent = embedsSent();
  assert.equal(sent.length, 2);
  for (const s of sent) assert.deepEqual(s.body, { model: 'nomic-embed-text', input, truncate: true }, 'user and encoding_format stay here');
});

test('"" is one input: the backend gets [""] and the client one vector', needGateway, async () => {
  const j = await expectList(await embed({ model: 'text-embedding-3-small', input: '' }), 'text-embedding-3-small', 1);
  assertVector(j.data[0].embedding, embedVector('', 8), 'empty text');
  assert.deepEqual(embedsSent()[0].body.input, ['']);
});

test('dimensions are sent on; alias options go into native options', needGateway, async () => {
  let j = await expectList(await embed({ model: 'text-embedding-3-small', input: ['a b'], dimensions: 4 }),
    'text-embedding-3-small', 1);
  assertVector(j.data[0].embedding, embedVector('a b', 8, 4), 'dimensions 4');
  assert.equal(embedsSent()[0].body.dimensions, 4);
  // the alias's num_ctx 4 makes the fake truncate to four words
  j = await expectList(await embed({ model: 'text-embedding-3-large', input: 'one two three four five six', encoding_format: 'base64' }),
    'text-embedding-3-large', 1);
  assertVector(floatsOf(j.data[0].embedding), embedVector('one two three four', 8), 'truncated');
  assert.deepEqual(j.usage, { prompt_tokens: 4, total_tokens: 4 });
  assert.deepEqual(embedsSent()[1].body, {
    model: 'nomic-embed-text', input: ['one two three four five six'], truncate: true, options: { num_ctx: 4 },
  });
});

test('bad requests → 400 naming the field; nothing reaches the backend', needGateway, async () => {
  const cases = [
    [{ input: 'x' }, 'model', /Missing required parameter: 'model'/],
    [{ model: 7, input: 'x' }, 'model', /expected a string, but got a number/],
    [{ model: 'text-embedding-3-small' }, 'input', /Missing required parameter: 'input'/],
    [{ model: 'text-embedding-3-small', input: [] }, 'input', /must not be an empty array/],
    [{ model: 'text-embedding-3-small', input: [1, 2, 3] }, 'input', /Token arrays are not supported/],
    [{ model: 'text-embedding-3-small', input: [[1, 2], [3]] }, 'input', /Token arrays are not supported/],
    [{ model: 'text-embedding-3-small', input: ['a', 5] }, 'input[1]', /'input\[1\]': expected a string, but got a number/],
    [{ model: 'text-embedding-3-small', input: { text: 'a' } }, 'input', /a string or an array of strings/],
    [{ model: 'text-embedding-3-small', input: 'x', encoding_format: 'int8' }, 'encoding_format', /Supported values are: 'float' and 'base64'/],
    [{ model: 'text-embedding-3-small', input: 'x', dimensions: 0 }, 'dimensions', /integer from 1/],
    [{ model: 'text-embedding-3-small', input: 'x', dimensions: '8' }, 'dimensions', /expected an integer/],
    ['{"model":"text-embedding-3-small","input":', null, /could not parse the JSON body/],
  ];
  for (const [body, param, message] of cases) {
    const { error } = await expectApiError(await embed(body), 400, { type: 'invalid_request_error', param, code: null }, JSON.stringify(body));
    assert.match(error.message, message);
  }
  assert.equal(embedsSent().length, 0);
});

test('keys: none → 401; outside the scope → 403; unknown model → 404', needGateway, async () => {
  await expectApiError(await post(env.gw.url, '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' }), 401,
    { type: 'invalid_request_error', code: 'invalid_api_key' });
  await expectApiError(await embed({ model: 'text-embedding-3-small', input: 'x' }, 'chat-only'), 403,
    { type: 'permission_error', code: 'model_not_allowed', param: 'model' });
  // a scope on the alias does not open the model behind it
  await expectApiError(await embed({ model: 'nomic-embed-text', input: 'x' }, 'embed-only'), 403,
    { type: 'permission_error', code: 'model_not_allowed', param: 'model' });
  await expectList(await embed({ model: 'text-embedding-3-small', input: 'x' }, 'embed-only'), 'text-embedding-3-small', 1);
  assert.equal(embedsSent().length, 1, 'refused requests never reach the backend');
  await expectApiError(await embed({ model: 'text-embedding-ada-002', input: 'x' }), 404,
    { type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
  // an embeddings key cannot chat either
  await expectApiError(await chat(env.gw.url, simpleChat('gpt-3.5-turbo'), { headers: bearer(env.gw.secret('embed-only')) }), 403,
    { type: 'permission_error', code: 'model_not_allowed' });
});

test('backend errors become OpenAI errors that name the backend', needGateway, async () => {
  const { fake } = env;
  fake.scriptPath('/api/embed', { status: 500, error: 'llama runner process has terminated' });
  let { error } = await expectApiError(await embed({ model: 'text-embedding-3-small', input: 'x' }), 502,
    { type: 'api_error', code: 'upstream_error' });
  assert.match(error.message, /fake0/);
  assert.match(error.message, /llama runner process has terminated/);
  fake.scriptPath('/api/embed', { status: 400, error: 'this model does not support embeddings' });
  ({ error } = await expectApiError(await embed({ model: 'text-embedding-3-small', input: 'x' }), 400,
    { type: 'invalid_request_error', param: 'model' }));
  assert.match(error.message, /does not support embeddings/);
  fake.scriptPath('/api/embed', { status: 404, error: 'model "nomic-embed-text" not found, try pulling it first' });
  await expectApiError(await embed({ model: 'text-embedding-3-small', input: 'x' }), 404,
    { type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
});

test('a broken /api/embed answer → 502 upstream_error, never half a list', needGateway, async () => {
  const { fake } = env;
  const cases = [
    [{ model: 'x', embeddings: [[0.5, 0.25]] }, /sent 1 embeddings for 2 inputs/],
    [{ model: 'x', embeddings: [[0.5], [0.25], [1]] }, /sent more than 2 embeddings for 2 inputs/],
    [{ model: 'x' }, /without "embeddings"/],
    [{ embeddings: [['a'], [1]] }, /not an array of arrays of numbers/],
    [{ embeddings: [[1e39], [1]] }, /not a 32-bit float/],
    ['this is not json', /not one JSON object/],
  ];
  for (const [body, message] of cases) {
    fake.scriptPath('/api/embed', { body, contentType: typeof body === 'string' ? 'text/plain' : undefined });
    const { error } = await expectApiError(await embed({ model: 'text-embedding-3-small', input: ['a', 'b'] }), 502,
      { type: 'api_error', code: 'upstream_error', param: null }, JSON.stringify(body));
    assert.match(error.message, message);
    assert.match(error.message, /Backend "fake0"/);
  }
});

test('large: a 9 MB request of 1500 inputs, 1500 vectors of 1024 floats back, both encodings', needGateway, async () => {
  const input = Array.from({ length: 1500 }, (_, i) => `input ${i} ${'lorem ipsum dolor '.repeat(330)}`);
  const body = { model: 'text-embedding-big', input };
  assert.ok(JSON.stringify(body).length > 8e6);
  for (const encoding_format of ['float', 'base64']) {
    const j = await expectList(await embed({ ...body, encoding_format }), 'text-embedding-big', 1500);
    for (const i of [0, 777, 1499]) {
      const v = j.data[i].embedding;
      assertVector(encoding_format === 'base64' ? floatsOf(v) : v, embedVector(input[i], BIG_DIM), `${encoding_format} ${i}`);
    }
    assert.equal(j.usage.prompt_tokens, 1500 * (2 + 990));
  }
  const sent = embedsSent();
  assert.equal(sent.length, 2);
  assert.equal(sent[0].body.input.length, 1500);
  assert.equal(sent[0].body.input[1499], input[1499]);
});

test('GET /v1/embeddings → 405 saying to POST', needGateway, async () => {
  const { error } = await expectApiError(await get(`${env.gw.url}/v1/embeddings`, { headers: bearer(env.gw.secret('full')) }), 405,
    { type: 'invalid_request_error', code: 'method_not_allowed' });
  assert.match(error.message, /use POST/);
});
