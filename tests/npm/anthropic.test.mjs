// Anthropic's clients against the gateway's POST /v1/messages (DESIGN.md,
// "Other dialects"): the official @anthropic-ai/sdk (messages.create,
// messages.stream + finalMessage(), a tool-use round trip, models.list(), its
// error classes for 401 and 529) and the Vercel AI SDK's @ai-sdk/anthropic
// provider (generateText, streamText, a tool loop), with a key and a claude-*
// alias for a local model.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic, { AuthenticationError, InternalServerError } from '@anthropic-ai/sdk';
import { createAnthropic } from '@ai-sdk/anthropic';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { useGateway, needGateway } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { aliases: { 'claude-*': 'llama3.2' }, limits: { auth_failures_per_minute: 0 } },
  keys: [{ name: 'agent' }],
});

function client(apiKey = env.gw.secret('agent'), opts = {}) {
  return new Anthropic({ baseURL: env.gw.url, apiKey, maxRetries: 0, timeout: 20000, ...opts });
}

const MODEL = 'claude-sonnet-4-5';
const ask = { model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'Say hello' }] };

const WEATHER = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test('messages.create: a message from the local model behind claude-*', needGateway, async () => {
  env.fake.script({ tokens: ['Hello', ' there'], metrics: { prompt_eval_count: 11, eval_count: 2 } });
  const m = await client().messages.create(ask);
  assert.match(m.id, /^msg_/);
  assert.equal(m.model, MODEL);
  assert.equal(m.role, 'assistant');
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello there' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.deepEqual(m.usage, { input_tokens: 11, output_tokens: 2 });
  assert.equal(env.fake.chats()[0].body.model, 'llama3.2');
});

test('messages.stream + finalMessage(): text events and the accumulated message', needGateway, async () => {
  env.fake.script({ tokens: ['Hel', 'lo', '!'], metrics: { prompt_eval_count: 7, eval_count: 3 } });
  const texts = [];
  const stream = client().messages.stream(ask).on('text', (t) => texts.push(t));
  const m = await stream.finalMessage();
  assert.deepEqual(texts, ['Hel', 'lo', '!']);
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello!' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.input_tokens, 7, 'input_tokens from message_delta');
  assert.equal(m.usage.output_tokens, 3);
  assert.equal(env.fake.chats()[0].body.stream, true);
});

test('messages.stream with thinking: a thinking block, then the text', needGateway, async () => {
  env.fake.script({ thinking: ['Hmm', '...'], tokens: ['42'] });
  const thoughts = [];
  const stream = client().messages.stream({ ...ask, model: 'qwen3', thinking: { type: 'enabled', budget_tokens: 1024 } })
    .on('thinking', (t) => thoughts.push(t));
  const m = await stream.finalMessage();
  assert.equal(env.fake.chats()[0].body.think, true);
  assert.deepEqual(thoughts, ['Hmm', '...']);
  assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(m.content[0].thinking, 'Hmm...');
  assert.equal(m.content[1].text, '42');
});

test('a tool-use round trip: tool_use streamed with its input, the tool_result sent back', needGateway, async () => {
  const { fake } = env;
  const c = client();
  fake.script({ tokens: ['Let me check.'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await c.messages.stream({ ...ask, messages, tools: [WEATHER] }).finalMessage();
  assert.equal(first.stop_reason, 'tool_use');
  const tu = first.content.find((b) => b.type === 'tool_use');
  assert.ok(tu, JSON.stringify(first.content));
  assert.match(tu.id, /^toolu_/);
  assert.equal(tu.name, 'get_weather');
  assert.deepEqual(tu.input, { city: 'Paris' });

  fake.script({ tokens: ['It is 18°C in Paris.'] });
  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '18°C, sunny' }] });
  const second = await c.messages.create({ ...ask, messages, tools: [WEATHER] });
  assert.equal(second.content[0].text, 'It is 18°C in Paris.');
  const sent = fake.chats().at(-1).body.messages;
  assert.deepEqual(sent.at(-2).tool_calls, [{ id: tu.id, function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
  assert.deepEqual(sent.at(-1), { role: 'tool', content: '18°C, sunny', tool_call_id: tu.id, tool_name: 'get_weather' });
});

test('models.list(): Anthropic model objects', needGateway, async () => {
  const ids = [];
  for await (const m of client().models.list()) {
    assert.equal(m.type, 'model');
    assert.equal(typeof m.display_name, 'string');
    assert.ok(!Number.isNaN(Date.parse(m.created_at)));
    ids.push(m.id);
  }
  assert.ok(ids.includes('llama3.2:latest'), ids.join());
  const one = await client().models.retrieve('qwen3:latest');
  assert.equal(one.id, 'qwen3:latest');
});

test('error classes: a wrong key → AuthenticationError; a busy backend → 529 overloaded_error', needGateway, async () => {
  await assert.rejects(client('og-wrong-key').messages.create(ask), (e) => {
    assert.ok(e instanceof AuthenticationError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 401);
    assert.equal(e.error?.error?.type, 'authentication_error');
    return true;
  });
  env.fake.script({ status: 503, error: 'server busy' });
  await assert.rejects(client().messages.create(ask), (e) => {
    assert.ok(e instanceof InternalServerError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 529);
    assert.equal(e.error?.error?.type, 'overloaded_error');
    return true;
  });
});

// ---------------------------------------------------------------- @ai-sdk/anthropic

function provider() {
  return createAnthropic({ baseURL: `${env.gw.url}/v1`, apiKey: env.gw.secret('agent') });
}

test('@ai-sdk/anthropic generateText', needGateway, async () => {
  env.fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const r = await generateText({ model: provider()(MODEL), prompt: 'Say hello', maxRetries: 0 });
  assert.equal(r.text, 'Hello from llama3.2');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, 26);
  assert.equal(r.usage.outputTokens, 3);
  assert.equal(env.fake.chats()[0].body.model, 'llama3.2');
});

test('@ai-sdk/anthropic streamText', needGateway, async () => {
  env.fake.script({ tokens: ['Hel', 'lo'], metrics: { prompt_eval_count: 5, eval_count: 2 } });
  const errors = [];
  const r = streamText({ model: provider()(MODEL), prompt: 'Say hello', maxRetries: 0, onError: ({ error }) => errors.push(error) });
  const parts = [];
  for await (const t of r.textStream) parts.push(t);
  assert.deepEqual(errors, []);
  assert.equal(parts.join(''), 'Hello');
  assert.equal(await r.finishReason, 'stop');
  assert.equal((await r.usage).outputTokens, 2);
});

test('@ai-sdk/anthropic a tool loop', needGateway, async () => {
  const { fake } = env;
  let call = 0;
  fake.script(() => (++call === 1
    ? { toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }
    : { tokens: ['Cold in Oslo.'] }));
  const seen = [];
  const r = await generateText({
    model: provider()(MODEL),
    prompt: 'Weather in Oslo?',
    maxRetries: 0,
    stopWhen: stepCountIs(3),
    tools: {
      get_weather: tool({
        description: 'Weather for a city',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => { seen.push(city); return { city, celsius: -3 }; },
      }),
    },
  });
  assert.deepEqual(seen, ['Oslo']);
  assert.equal(r.text, 'Cold in Oslo.');
  const last = fake.chats().at(-1).body.messages;
  const toolMsg = last.find((m) => m.role === 'tool');
  assert.equal(toolMsg.tool_name, 'get_weather');
  assert.match(toolMsg.content, /-3/);
});
