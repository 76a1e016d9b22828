// The official `openai` Node SDK (v6) against the real gateway and the fake Ollama.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import OpenAI, { APIError, BadRequestError, NotFoundError, APIUserAbortError } from 'openai';
import { zodFunction } from 'openai/helpers/zod';
import { z } from 'zod';
import { useGateway, needGateway, waitFor } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function client(opts = {}) {
  return new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 20000, ...opts });
}

const messages = [{ role: 'user', content: 'Say hello' }];

test('chat.completions.create (non-stream) through an alias', needGateway, async () => {
  const c = await client().chat.completions.create({ model: 'gpt-3.5-turbo', messages });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.model, 'gpt-3.5-turbo');
  assert.equal(c.choices[0].message.content, 'Hello from llama3.2');
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.deepEqual(c.usage, { prompt_tokens: 26, completion_tokens: 3, total_tokens: 29 });
});

test('chat.completions.create stream: iterate chunks, join content', needGateway, async () => {
  const stream = await client().chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true });
  let text = '';
  let finish = null;
  let n = 0;
  for await (const chunk of stream) {
    n++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, 'gpt-3.5-turbo');
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'Hello from llama3.2');
  assert.equal(finish, 'stop');
  assert.ok(n >= 2);
});

test('chat.completions.stream helper: finalContent and finalChatCompletion', needGateway, async () => {
  const s = client().chat.completions.stream({ model: 'gpt-3.5-turbo', messages });
  const deltas = [];
  s.on('content', (d) => deltas.push(d));
  const final = await s.finalChatCompletion();
  assert.deepEqual(deltas, ['Hello', ' from', ' llama3.2']);
  assert.equal(final.choices[0].message.content, 'Hello from llama3.2');
  assert.equal(final.choices[0].message.role, 'assistant');
  assert.equal(final.choices[0].finish_reason, 'stop');
});

test('stream helper with tools: finalChatCompletion returns tool calls with parsed arguments', needGateway, async () => {
  const { fake } = env;
  fake.script({
    toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }, { name: 'get_weather', arguments: { city: 'Lima' } }],
    toolCallsOn: 'done',
  });
  const s = client().chat.completions.stream({
    model: 'gpt-3.5-turbo',
    messages: [{ role: 'user', content: 'Weather in Tokyo and Lima?' }],
    tools: [zodFunction({ name: 'get_weather', parameters: z.object({ city: z.string() }) })],
  });
  const final = await s.finalChatCompletion();
  const ch = final.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.tool_calls.length, 2);
  assert.deepEqual(ch.message.tool_calls.map((t) => t.function.parsed_arguments), [{ city: 'Tokyo' }, { city: 'Lima' }]);
  assert.deepEqual(ch.message.tool_calls.map((t) => JSON.parse(t.function.arguments)), [{ city: 'Tokyo' }, { city: 'Lima' }]);
  for (const t of ch.message.tool_calls) {
    assert.equal(t.type, 'function');
    assert.equal(t.function.name, 'get_weather');
    assert.match(t.id, /^call_/);
  }
  // the upstream request carried the tool with its JSON schema
  const up = fake.chats()[0].body;
  assert.equal(up.tools[0].function.name, 'get_weather');
  assert.equal(up.tools[0].function.parameters.type, 'object');
});

test('runTools: a full tool round trip (tool result sent back, final answer)', needGateway, async () => {
  const { fake } = env;
  fake.script((body) => (body.messages.some((m) => m.role === 'tool')
    ? { tokens: ['It is ', 'sunny.'] }
    : { toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }] }));
  const calls = [];
  const runner = client().chat.completions.runTools({
    model: 'gpt-3.5-turbo',
    messages: [{ role: 'user', content: 'Weather in Tokyo?' }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        parse: JSON.parse,
        function: (args) => { calls.push(args); return { temp: 21, sky: 'sunny' }; },
      },
    }],
    stream: true,
  });
  const content = await runner.finalContent();
  assert.equal(content, 'It is sunny.');
  assert.deepEqual(calls, [{ city: 'Tokyo' }]);
  const second = fake.chats()[1].body;
  const a = second.messages.find((m) => m.role === 'assistant');
  const t = second.messages.find((m) => m.role === 'tool');
  assert.deepEqual(a.tool_calls[0].function.arguments, { city: 'Tokyo' }, 'arguments sent back as an object');
  assert.equal(t.tool_name, 'get_weather');
  assert.equal(t.tool_call_id, a.tool_calls[0].id);
  assert.deepEqual(JSON.parse(t.content), { temp: 21, sky: 'sunny' });
});

test('stream_options.include_usage gives usage on the last chunk', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['a', 'b'], metrics: { prompt_eval_count: 9, eval_count: 2 } });
  const stream = await client().chat.completions.create({
    model: 'gpt-3.5-turbo', messages, stream: true, stream_options: { include_usage: true },
  });
  let last;
  for await (const chunk of stream) last = chunk;
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
  const s = client().chat.completions.stream({ model: 'gpt-3.5-turbo', messages, stream_options: { include_usage: true } });
  const final = await s.finalChatCompletion();
  assert.deepEqual(final.usage, { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
});

test('abort mid-stream: the fake sees the close within 500 ms', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: Array.from({ length: 300 }, (_, i) => ` t${i}`), delayMs: 20 });
  const stream = await client().chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true });
  let n = 0;
  let tAbort = 0;
  try {
    for await (const chunk of stream) {
      void chunk;
      if (++n === 5) {
        tAbort = performance.now();
        stream.controller.abort();
      }
    }
  } catch (e) {
    assert.ok(e instanceof APIUserAbortError || e.name === 'AbortError', `abort error: ${e}`);
  }
  assert.ok(tAbort > 0);
  const rec = fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 3000, 5, 'fake saw the close').catch(() => {});
  assert.notEqual(rec.closedAt, null, 'upstream never closed');
  assert.ok(rec.closedAt - tAbort < 500, `closed ${Math.round(rec.closedAt - tAbort)} ms after abort`);
});

test('abort with an AbortSignal before the first token', needGateway, async () => {
  const { fake } = env;
  fake.script({ hang: true });
  const ac = new AbortController();
  const p = client().chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true }, { signal: ac.signal });
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  const tAbort = performance.now();
  ac.abort();
  await assert.rejects(p, (e) => e instanceof APIUserAbortError);
  await waitFor(() => rec.closedAt !== null, 3000, 5).catch(() => {});
  assert.notEqual(rec.closedAt, null);
  assert.ok(rec.closedAt - tAbort < 500, `closed ${Math.round(rec.closedAt - tAbort)} ms after abort`);
});

test('NotFoundError for an unknown model', needGateway, async () => {
  await assert.rejects(
    client().chat.completions.create({ model: 'no-such-model', messages }),
    (e) => {
      assert.ok(e instanceof NotFoundError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.type, 'invalid_request_error');
      assert.ok(e.requestID || e.headers?.get?.('x-request-id'), 'x-request-id visible to the SDK');
      return true;
    },
  );
});

test('BadRequestError for a bad field, naming it', needGateway, async () => {
  await assert.rejects(
    client().chat.completions.create({ model: 'gpt-3.5-turbo', messages, temperature: 'hot' }),
    (e) => {
      assert.ok(e instanceof BadRequestError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 400);
      assert.equal(e.param, 'temperature');
      return true;
    },
  );
});

test('an in-stream error raises APIError while iterating', needGateway, async () => {
  const { fake } = env;
  fake.script({ tokens: ['partial', ' answer'], errorAfter: 1, errorMessage: 'model runner crashed' });
  const stream = await client().chat.completions.create({ model: 'gpt-3.5-turbo', messages, stream: true });
  let text = '';
  await assert.rejects(
    (async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(),
    (e) => {
      assert.ok(e instanceof APIError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /model runner crashed/);
      assert.ok(!/^"|"$/.test(e.message), 'message is not a quoted JSON string');
      return true;
    },
  );
  assert.equal(text, 'partial');
});

test('the SDK does not retry a 502 marked x-should-retry: false', needGateway, async () => {
  const { fake } = env;
  fake.script({ status: 500, error: 'option "temperature" must be of type float32' });
  await assert.rejects(client({ maxRetries: 2 }).chat.completions.create({ model: 'gpt-3.5-turbo', messages }), (e) => e.status === 502);
  assert.equal(fake.chats().length, 1, 'one attempt only');
});
