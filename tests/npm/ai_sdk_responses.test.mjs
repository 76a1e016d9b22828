// The Vercel AI SDK's OpenAI provider (@ai-sdk/openai, whose default model
// speaks the Responses API) against the real gateway and the fake Ollama:
// generateText, streamText, and a tool round trip run by the SDK itself.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { useGateway, needGateway, waitFor } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function model(name) {
  return createOpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'unused' }).responses(name);
}

const responsesCalls = () => env.gw.accessLog('/v1/responses');

test('generateText over /v1/responses through an alias', needGateway, async () => {
  env.fake.script({ tokens: ['Hello', ' there'], metrics: { prompt_eval_count: 20, eval_count: 2 } });
  const before = responsesCalls().length;
  const r = await generateText({ model: model('gpt-3.5-turbo'), prompt: 'Say hello', maxRetries: 0 });
  assert.equal(r.text, 'Hello there');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, 20);
  assert.equal(r.usage.outputTokens, 2);
  assert.equal(env.fake.chats().at(-1).body.model, 'llama3.2');
  await waitFor(() => responsesCalls().length === before + 1, 5000, 20, 'the provider used /v1/responses');
});

test('streamText over /v1/responses: text, finish reason, usage', needGateway, async () => {
  env.fake.script({ tokens: ['Hel', 'lo'], metrics: { prompt_eval_count: 9, eval_count: 2 } });
  const errors = [];
  const r = streamText({ model: model('llama3.2'), prompt: 'Say hello', maxRetries: 0, onError: ({ error }) => errors.push(error) });
  const parts = [];
  for await (const t of r.textStream) parts.push(t);
  assert.deepEqual(errors, []);
  assert.equal(parts.join(''), 'Hello');
  assert.equal(await r.finishReason, 'stop');
  const usage = await r.usage;
  assert.equal(usage.inputTokens, 9);
  assert.equal(usage.outputTokens, 2);
});

test('a tool round trip run by the SDK (two /v1/responses calls)', needGateway, async () => {
  let n = 0;
  env.fake.script(() => (n++ === 0
    ? { tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Lima' } }] }
    : { tokens: ['Lima is sunny.'] }));
  const seen = [];
  const r = await generateText({
    model: model('llama3.2'),
    prompt: 'Weather in Lima?',
    maxRetries: 0,
    stopWhen: stepCountIs(3),
    tools: {
      get_weather: tool({
        description: 'Weather for a city',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => { seen.push(city); return { city, sky: 'sunny' }; },
      }),
    },
  });
  assert.deepEqual(seen, ['Lima']);
  assert.equal(r.text, 'Lima is sunny.');
  const second = env.fake.chats().at(-1).body;
  const tool_ = second.messages.find((m) => m.role === 'tool');
  assert.ok(tool_, `a tool message went back: ${JSON.stringify(second.messages)}`);
  assert.equal(tool_.tool_name, 'get_weather');
  assert.match(tool_.content, /sunny/);
});
