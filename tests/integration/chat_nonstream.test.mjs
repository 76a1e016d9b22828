// Non-streamed /v1/chat/completions through the real gateway to the fake Ollama.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { useGateway, needGateway, chat, jsonOf, simpleChat } from './harness.mjs';

const env = useGateway({ before, after, beforeEach });

const TOOLS = [{
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
}];

function assertCompletion(r, model) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const j = r.json;
  assert.match(j.id, /^chatcmpl-[A-Za-z0-9_-]{8,}$/);
  assert.equal(j.object, 'chat.completion');
  assert.ok(Number.isInteger(j.created) && Math.abs(j.created - Date.now() / 1000) < 120, 'created is now, in seconds');
  assert.equal(j.model, model);
  assert.equal(j.choices.length, 1);
  assert.equal(j.choices[0].index, 0);
  assert.equal(j.choices[0].message.role, 'assistant');
  return j;
}

test('non-stream text through an alias', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const r = await jsonOf(await chat(gw.url, simpleChat('gpt-3.5-turbo')));
  const j = assertCompletion(r, 'gpt-3.5-turbo');
  assert.equal(j.choices[0].message.content, 'Hello from llama3.2');
  assert.equal(j.choices[0].finish_reason, 'stop');
  assert.equal(j.choices[0].message.tool_calls, undefined);
  assert.deepEqual(j.usage, { prompt_tokens: 26, completion_tokens: 3, total_tokens: 29 });
  const up = fake.chats();
  assert.equal(up.length, 1);
  assert.equal(up[0].body.model, 'llama3.2');
  assert.equal(up[0].body.stream, false, 'stream:false explicit upstream');
});

test('non-stream: usage always present, zeros when Ollama omits metrics', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['x'], metrics: false });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('llama3.2'))), 'llama3.2');
  assert.deepEqual(j.usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  assert.equal(j.choices[0].finish_reason, 'stop');
});

test('non-stream: done_reason length → finish_reason length', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['x'], doneReason: 'length' });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('llama3.2', { max_tokens: 1 }))), 'llama3.2');
  assert.equal(j.choices[0].finish_reason, 'length');
});

test('non-stream tool calls: arguments a JSON string, finish tool_calls, content null', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({
    toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' }, id: 'call_aaaa1111' }, { name: 'get_weather', arguments: { city: 'Oslo' } }],
  });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('llama3.2', { tools: TOOLS }))), 'llama3.2');
  const m = j.choices[0].message;
  assert.equal(j.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 2);
  assert.equal(m.tool_calls[0].id, 'call_aaaa1111');
  assert.match(m.tool_calls[1].id, /^call_/);
  for (const [i, city] of [[0, 'Tokyo'], [1, 'Oslo']]) {
    assert.equal(m.tool_calls[i].type, 'function');
    assert.equal(m.tool_calls[i].function.name, 'get_weather');
    assert.equal(typeof m.tool_calls[i].function.arguments, 'string');
    assert.deepEqual(JSON.parse(m.tool_calls[i].function.arguments), { city });
  }
});

test('non-stream tool call with text keeps the text', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Checking.'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Rome' } }], toolCallsOn: 'done' });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('llama3.2', { tools: TOOLS }))), 'llama3.2');
  assert.equal(j.choices[0].message.content, 'Checking.');
  assert.equal(j.choices[0].message.tool_calls.length, 1);
  assert.equal(j.choices[0].finish_reason, 'tool_calls');
});

test('non-stream thinking: reasoning_content and reasoning', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ thinking: ['Hmm', ', ok.'], tokens: ['Done'] });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('gpt-4o-mini'))), 'gpt-4o-mini');
  const m = j.choices[0].message;
  assert.equal(m.content, 'Done');
  assert.equal(m.reasoning_content, 'Hmm, ok.');
  assert.equal(m.reasoning, 'Hmm, ok.');
});

test('non-stream ids are unique', needGateway, async () => {
  const { gw } = env;
  const a = (await jsonOf(await chat(gw.url, simpleChat('llama3.2')))).json;
  const b = (await jsonOf(await chat(gw.url, simpleChat('llama3.2')))).json;
  assert.notEqual(a.id, b.id);
});

test('non-stream: empty answer is an empty string, not null', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: [] });
  const j = assertCompletion(await jsonOf(await chat(gw.url, simpleChat('llama3.2'))), 'llama3.2');
  assert.equal(j.choices[0].message.content, '');
  assert.equal(j.choices[0].finish_reason, 'stop');
});

test('sequential requests on one keep-alive connection', needGateway, async () => {
  const { gw } = env;
  for (let i = 0; i < 20; i++) {
    const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'Hello from llama3.2');
  }
});

test('concurrent requests all succeed', needGateway, async () => {
  const { fake, gw } = env;
  fake.script((body) => ({ tokens: [body.messages[0].content], delayMs: 5 }));
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => chat(gw.url, {
    model: 'llama3.2', messages: [{ role: 'user', content: `n${i}` }], stream: i % 2 === 0,
  }).then(async (res) => ({ i, status: res.status, text: await res.text() }))));
  for (const r of rs) {
    assert.equal(r.status, 200);
    if (r.i % 2) assert.equal(JSON.parse(r.text).choices[0].message.content, `n${r.i}`);
    else assert.ok(r.text.includes(`"content":"n${r.i}"`) && r.text.endsWith('data: [DONE]\n\n'), r.text.slice(-200));
  }
});
