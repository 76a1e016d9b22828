// The Vercel AI SDK (ai v6 + @ai-sdk/openai-compatible) against the real
// gateway and the fake Ollama.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { useGateway, needGateway } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function provider() {
  return createOpenAICompatible({ name: 'gateway', baseURL: `${env.gw.url}/v1`, apiKey: 'unused', includeUsage: true });
}

test('generateText through an alias', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const r = await generateText({ model: provider().chatModel('gpt-3.5-turbo'), prompt: 'Say hello', maxRetries: 0 });
  assert.equal(r.text, 'Hello from llama3.2');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, 26);
  assert.equal(r.usage.outputTokens, 3);
  assert.equal(fake.chats()[0].body.model, 'llama3.2');
  assert.equal(fake.chats()[0].body.stream, false);
});

test('streamText through an alias', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const errors = [];
  const r = streamText({
    model: provider().chatModel('gpt-3.5-turbo'), prompt: 'Say hello', maxRetries: 0, onError: ({ error }) => errors.push(error),
  });
  const parts = [];
  for await (const t of r.textStream) parts.push(t);
  assert.deepEqual(errors, []);
  assert.equal(parts.join(''), 'Hello from llama3.2');
  assert.equal(await r.finishReason, 'stop');
  const usage = await r.usage;
  assert.equal(usage.inputTokens, 26);
  assert.equal(usage.outputTokens, 3);
  assert.equal(fake.chats()[0].body.stream, true);
});

test('streamText with reasoning (thinking model alias)', needGateway, async () => {
  const { fake } = env;
  fake.script({ thinking: ['Considering', ' it.'], tokens: ['Answer.'] });
  const r = streamText({ model: provider().chatModel('gpt-4o-mini'), prompt: 'Why?', maxRetries: 0 });
  let text = '';
  let reasoning = '';
  for await (const p of r.fullStream) {
    if (p.type === 'text-delta') text += p.text;
    if (p.type === 'reasoning-delta') reasoning += p.text;
    if (p.type === 'error') throw p.error;
  }
  assert.equal(text, 'Answer.');
  assert.equal(reasoning, 'Considering it.');
});

test('generateText with a tool: two steps, tool result sent back', needGateway, async () => {
  const { fake } = env;
  fake.script((body) => (body.messages.some((m) => m.role === 'tool')
    ? { tokens: ['Sunny in Tokyo.'] }
    : { toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }] }));
  const seen = [];
  const r = await generateText({
    model: provider().chatModel('gpt-3.5-turbo'),
    prompt: 'Weather in Tokyo?',
    maxRetries: 0,
    tools: {
      get_weather: tool({
        description: 'weather',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => { seen.push(city); return { sky: 'sunny' }; },
      }),
    },
    stopWhen: stepCountIs(3),
  });
  assert.deepEqual(seen, ['Tokyo']);
  assert.equal(r.text, 'Sunny in Tokyo.');
  assert.equal(r.steps.length, 2);
  assert.equal(r.steps[0].finishReason, 'tool-calls');
  const second = fake.chats()[1].body;
  const t = second.messages.find((m) => m.role === 'tool');
  assert.equal(t.tool_name, 'get_weather');
  assert.deepEqual(JSON.parse(t.content), { sky: 'sunny' });
});

test('streamText surfaces an in-stream error', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['a', 'b'], errorAfter: 1, errorMessage: 'runner crashed' });
  const r = streamText({ model: provider().chatModel('gpt-3.5-turbo'), prompt: 'x', maxRetries: 0, onError: () => {} });
  const errs = [];
  for await (const p of r.fullStream) if (p.type === 'error') errs.push(p.error);
  assert.equal(errs.length >= 1, true, 'an error part');
  assert.match(String(errs[0]?.message ?? JSON.stringify(errs[0])), /runner crashed/);
});

test('unknown model → an API error with status 404', needGateway, async () => {
  await assert.rejects(
    generateText({ model: provider().chatModel('no-such-model'), prompt: 'x', maxRetries: 0 }),
    (e) => { assert.equal(e.statusCode, 404, String(e)); return true; },
  );
});
