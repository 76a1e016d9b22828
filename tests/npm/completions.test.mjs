// The official `openai` Node SDK's legacy completions (client.completions.create)
// against the real gateway and the fake Ollama's /api/generate.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, BadRequestError } from 'openai';
import { useGateway, needGateway } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function client() {
  return new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 20000 });
}

test('completions.create (non-stream): text, finish_reason, usage', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const c = await client().completions.create({ model: 'gpt-3.5-turbo', prompt: 'Say hello', max_tokens: 16 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.model, 'gpt-3.5-turbo');
  assert.match(c.id, /^cmpl-/);
  assert.equal(c.choices.length, 1);
  assert.equal(c.choices[0].text, 'Hello from llama3.2');
  assert.equal(c.choices[0].index, 0);
  assert.equal(c.choices[0].logprobs, null);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.deepEqual(c.usage, { prompt_tokens: 26, completion_tokens: 3, total_tokens: 29 });
  assert.equal(fake.requestsTo('/api/generate')[0].body.options.num_predict, 16);
});

test('completions.create (non-stream) cut by max_tokens: finish_reason length', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 5, eval_count: 2 } });
  const c = await client().completions.create({ model: 'llama3.2', prompt: 'p', max_tokens: 2 });
  assert.equal(c.choices[0].text, 'ab');
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.deepEqual(c.usage, { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
});

test('completions.create stream: text deltas, finish_reason, the usage chunk', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['Once', ' upon', ' a', ' time'], metrics: { prompt_eval_count: 4, eval_count: 4 } });
  const stream = await client().completions.create({
    model: 'gpt-3.5-turbo', prompt: 'Tell a story', stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  const ids = new Set();
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.model, 'gpt-3.5-turbo');
    ids.add(chunk.id);
    for (const ch of chunk.choices) {
      text += ch.text;
      finish = ch.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Once upon a time');
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
  assert.equal(ids.size, 1, 'one id for the whole stream');
});

test('completions.create stream cut by max_tokens, with echo', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: [' 4', '.', ' Done'] });
  const stream = await client().completions.create({ model: 'llama3.2', prompt: '2+2 =', echo: true, max_tokens: 2, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, '2+2 = 4.');
  assert.equal(finish, 'length');
});

test('a rejected prompt is a BadRequestError naming it; a mid-stream failure throws', needGateway, async () => {
  const { fake } = env;
  await assert.rejects(client().completions.create({ model: 'llama3.2', prompt: ['a', 'b'] }), (e) => {
    assert.ok(e instanceof BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'prompt');
    return true;
  });
  fake.script({ tokens: ['a', 'b'], errorAfter: 1, errorMessage: 'boom' });
  const stream = await client().completions.create({ model: 'llama3.2', prompt: 'p', stream: true });
  let text = '';
  await assert.rejects((async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  })(), (e) => {
    assert.ok(e instanceof APIError);
    assert.match(e.message, /boom/);
    return true;
  });
  assert.equal(text, 'a');
});
