// The official `openai` Node SDK (v6) speaking the Responses API
// (client.responses) to the real gateway and the fake Ollama: create,
// stream + finalResponse (the SDK's own accumulator judges the event
// order), a function-call round trip, errors.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { useGateway, needGateway } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function client(opts = {}) {
  return new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 20000, ...opts });
}

const TOOLS = [{
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
}];

test('responses.create: output_text, usage, the model as asked', needGateway, async () => {
  const r = await client().responses.create({ model: 'gpt-3.5-turbo', input: 'Say hello', instructions: 'Be brief.' });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'gpt-3.5-turbo');
  assert.equal(r.output_text, 'Hello from llama3.2');
  assert.equal(r.usage.input_tokens, 26);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
});

test('responses.create stream: iterate the events', needGateway, async () => {
  const stream = await client().responses.create({ model: 'llama3.2', input: 'Say hello', stream: true });
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  assert.equal(text, 'Hello from llama3.2');
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
});

test('responses.stream + finalResponse: the SDK accumulates our events', needGateway, async () => {
  const s = client().responses.stream({ model: 'llama3.2', input: 'Say hello' });
  const deltas = [];
  const snapshots = [];
  s.on('response.output_text.delta', (e) => { deltas.push(e.delta); snapshots.push(e.snapshot); });
  const final = await s.finalResponse();
  assert.deepEqual(deltas, ['Hello', ' from', ' llama3.2']);
  assert.deepEqual(snapshots, ['Hello', 'Hello from', 'Hello from llama3.2']);
  assert.equal(final.status, 'completed');
  assert.equal(final.output_text, 'Hello from llama3.2');
  assert.equal(final.output.length, 1);
  assert.equal(final.usage.input_tokens, 26);
});

test('responses.stream with reasoning: a reasoning item, then the message', needGateway, async () => {
  env.fake.script({ thinking: ['Let me', ' see'], tokens: ['42'] });
  const s = client().responses.stream({ model: 'qwen3', input: 'Answer?', reasoning: { effort: 'medium', summary: 'auto' } });
  const final = await s.finalResponse();
  assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);
  assert.equal(final.output[0].summary[0].text, 'Let me see');
  assert.equal(final.output_text, '42');
});

test('a function-call round trip: the call streamed, its output sent back, the final answer', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }] });
  const c = client();
  const input = [{ role: 'user', content: 'Weather in Tokyo?' }];
  const s = c.responses.stream({ model: 'llama3.2', input, tools: TOOLS });
  const argDeltas = [];
  s.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.snapshot));
  const first = await s.finalResponse();
  const calls = first.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Tokyo' });
  assert.deepEqual(argDeltas, [calls[0].arguments]);

  fake.script({ tokens: ['Sunny in Tokyo.'] });
  const second = await c.responses.create({
    model: 'llama3.2',
    tools: TOOLS,
    input: [...input, ...first.output, { type: 'function_call_output', call_id: calls[0].call_id, output: '{"sky":"clear"}' }],
  });
  assert.equal(second.output_text, 'Sunny in Tokyo.');
  const sent = fake.requests.filter((r) => r.path === '/api/chat').at(-1).body;
  assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
  assert.equal(sent.messages[2].tool_name, 'get_weather');
  assert.deepEqual(sent.tools.map((t) => t.function.name), ['get_weather']);
});

test('errors: NotFoundError for an unknown model, BadRequestError for previous_response_id', needGateway, async () => {
  await assert.rejects(client().responses.create({ model: 'no-such-model', input: 'x' }), NotFoundError);
  await assert.rejects(
    client().responses.create({ model: 'llama3.2', input: 'x', previous_response_id: 'resp_1' }),
    (e) => e instanceof BadRequestError && e.param === 'previous_response_id' && /stores nothing/.test(e.message),
  );
});

test('an error mid-stream: the stream ends in response.failed', needGateway, async () => {
  env.fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 1, errorMessage: 'GPU fell off' });
  const stream = await client().responses.create({ model: 'llama3.2', input: 'x', stream: true });
  const types = [];
  let failed = null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.failed') failed = ev.response;
  }
  assert.equal(types.at(-1), 'response.failed');
  assert.equal(failed.status, 'failed');
  assert.match(failed.error.message, /GPU fell off/);
});
