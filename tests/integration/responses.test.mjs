// POST /v1/responses (the OpenAI Responses API, stateless) through the real
// gateway to the fake Ollama: the response object, the numbered event
// stream, tools, reasoning, max_output_tokens, errors before and after the
// first event, what is refused, aliases, keys and scopes, token limits, the
// access log (DESIGN.md, "Other dialects").
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, post, readSSE, jsonOf, expectApiError, bearer, waitFor, sseRecords,
  startGateway, startFake,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { keepalive_interval_s: 1, first_token_timeout_s: 20, idle_stream_timeout_s: 20 } },
  keys: [{ name: 'full' }, { name: 'scoped', models: ['llama3.2'] }, { name: 'tpm50', tpm: 50 }],
});

const auth = (name = 'full') => ({ headers: bearer(env.gw.secret(name)) });
const responses = (body, name) => post(env.gw.url, '/v1/responses', body, auth(name));

/** The events of a streamed answer: [{event, data}], checking the framing
 * and the numbering as it goes. */
async function events(res) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const sse = await readSSE(res);
  assert.equal(sse.partial, false);
  assert.equal(sse.done, false, 'no [DONE] on the Responses API');
  const out = [];
  for (const r of sse.records) {
    if (r.data === null) continue;
    const data = JSON.parse(r.data);
    assert.equal(r.event, data.type, 'event: names the type');
    assert.equal(data.sequence_number, out.length, 'sequence_number counts every event from 0');
    out.push({ event: r.event, data });
  }
  return { list: out, types: out.map((e) => e.event.replace(/^response\./, '')), comments: sse.comments };
}

function lastNative() {
  return env.fake.requests.filter((r) => r.path === '/api/chat').at(-1).body;
}

test('non-streamed text: a response object with usage from Ollama\'s counts', needGateway, async () => {
  env.fake.script({ tokens: ['Hello', ' there'], metrics: { prompt_eval_count: 11, eval_count: 2 } });
  const r = await jsonOf(await responses({ model: 'llama3.2', input: 'Say hello', instructions: 'Be nice.' }));
  assert.equal(r.status, 200, r.text);
  const j = r.json;
  assert.match(j.id, /^resp_[A-Za-z0-9]{8,}$/);
  assert.equal(j.object, 'response');
  assert.equal(j.status, 'completed');
  assert.equal(j.model, 'llama3.2');
  assert.ok(Math.abs(j.created_at - Date.now() / 1000) < 120);
  assert.equal(j.output.length, 1);
  assert.equal(j.output[0].type, 'message');
  assert.equal(j.output[0].role, 'assistant');
  assert.deepEqual(j.output[0].content.map((c) => [c.type, c.text]), [['output_text', 'Hello there']]);
  assert.deepEqual([j.usage.input_tokens, j.usage.output_tokens, j.usage.total_tokens], [11, 2, 13]);
  const n = lastNative();
  assert.equal(n.stream, false);
  assert.deepEqual(n.messages, [{ role: 'system', content: 'Be nice.' }, { role: 'user', content: 'Say hello' }]);
});

test('streamed text: the event sequence the SDK accumulates, ending in response.completed', needGateway, async () => {
  env.fake.script({ tokens: ['Hel', 'lo'], metrics: { prompt_eval_count: 7, eval_count: 2 } });
  const ev = await events(await responses({ model: 'llama3.2', input: 'hi', stream: true }));
  assert.deepEqual(ev.types, ['created', 'in_progress', 'output_item.added', 'content_part.added',
    'output_text.delta', 'output_text.delta', 'output_text.done', 'content_part.done', 'output_item.done',
    'completed']);
  const [created] = ev.list;
  assert.equal(created.data.response.status, 'in_progress');
  const done = ev.list.at(-1).data.response;
  assert.equal(done.id, created.data.response.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.output[0].content[0].text, 'Hello');
  assert.deepEqual([done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens], [7, 2, 9]);
  assert.equal(ev.list.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join(''), 'Hello');
  assert.equal(lastNative().stream, true);
});

test('keep-alives while the first token is awaited are SSE comments', needGateway, async () => {
  env.fake.script({ tokens: ['late'], firstLineDelayMs: 2500 });
  const ev = await events(await responses({ model: 'llama3.2', input: 'hi', stream: true }));
  assert.ok(ev.comments.length >= 1, 'at least one comment');
  for (const c of ev.comments) assert.equal(c, 'keep-alive');
  assert.equal(ev.types.at(-1), 'completed');
});

test('function tools: translated out, function_call items back (streamed and not)', needGateway, async () => {
  const tools = [
    { type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    { type: 'web_search' },
    { type: 'namespace', name: 'crm', description: 'CRM', tools: [{ type: 'function', name: 'lookup' }] },
  ];
  env.fake.script({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_abc' }] });
  const r = await jsonOf(await responses({ model: 'llama3.2', input: 'Weather in Paris?', tools, tool_choice: 'auto' }));
  assert.equal(r.status, 200, r.text);
  const calls = r.json.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, r.text);
  assert.equal(calls[0].call_id, 'call_abc');
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Paris' });
  assert.deepEqual(lastNative().tools.map((t) => t.function.name), ['get_weather', 'lookup']);
  assert.equal(calls[0].namespace, undefined, 'a top-level function has no namespace');

  // a call to a namespace group's function is answered with its namespace
  env.fake.script({ tokens: [], toolCalls: [{ name: 'lookup', arguments: {} }] });
  const ns = await jsonOf(await responses({ model: 'llama3.2', input: 'Look it up', tools }));
  assert.equal(ns.json.output[0].name, 'lookup');
  assert.equal(ns.json.output[0].namespace, 'crm');

  env.fake.script({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }], omitToolCallIds: true });
  const ev = await events(await responses({ model: 'llama3.2', input: 'Oslo?', tools, stream: true }));
  assert.deepEqual(ev.types, ['created', 'in_progress', 'output_item.added', 'function_call_arguments.delta',
    'function_call_arguments.done', 'output_item.done', 'completed']);
  const item = ev.list.at(-2).data.item;
  assert.equal(item.type, 'function_call');
  assert.match(item.call_id, /^call_/);
  assert.deepEqual(JSON.parse(item.arguments), { city: 'Oslo' });

  // the round trip: the call and its output go back as input items
  env.fake.script({ tokens: ['It is sunny.'] });
  const back = await jsonOf(await responses({
    model: 'llama3.2',
    tools,
    input: [
      { role: 'user', content: 'Oslo?' },
      { type: 'function_call', call_id: item.call_id, name: 'get_weather', arguments: item.arguments },
      { type: 'function_call_output', call_id: item.call_id, output: '{"sky":"clear"}' },
    ],
  }));
  assert.equal(back.status, 200, back.text);
  assert.equal(back.json.output[0].content[0].text, 'It is sunny.');
  const msgs = lastNative().messages;
  assert.equal(msgs[1].role, 'assistant');
  assert.deepEqual(msgs[1].tool_calls[0].function, { name: 'get_weather', arguments: { city: 'Oslo' } });
  assert.deepEqual(msgs[2], { role: 'tool', content: '{"sky":"clear"}', tool_call_id: item.call_id, tool_name: 'get_weather' });
});

test('custom (freeform) tools, as Codex CLI sends apply_patch: a function with one string input to Ollama, custom_tool_call items back (streamed and not), the round trip', needGateway, async () => {
  const grammar = 'start: begin_patch hunk+ end_patch';
  const tools = [
    { type: 'custom', name: 'apply_patch', description: 'Edit files.', format: { type: 'grammar', syntax: 'lark', definition: grammar } },
    { type: 'function', name: 'exec_command', parameters: { type: 'object', properties: { cmd: { type: 'string' } } } },
  ];
  const patch = '*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n';
  env.fake.script({ tokens: [], toolCalls: [{ name: 'apply_patch', arguments: { input: patch }, id: 'call_p' }] });
  const r = await jsonOf(await responses({ model: 'llama3.2', input: 'Make a.txt', tools }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.output.map((o) => o.type), ['custom_tool_call']);
  assert.equal(r.json.output[0].call_id, 'call_p');
  assert.equal(r.json.output[0].name, 'apply_patch');
  assert.equal(r.json.output[0].input, patch, 'the input is the patch itself, not JSON');
  assert.match(r.json.output[0].id, /^ctc_/);
  const offered = lastNative().tools.find((t) => t.function.name === 'apply_patch').function;
  assert.equal(offered.description, 'Edit files.');
  assert.deepEqual(offered.parameters.required, ['input']);
  assert.equal(offered.parameters.properties.input.type, 'string');
  assert.ok(offered.parameters.properties.input.description.endsWith(`lark grammar:\n${grammar}`));

  env.fake.script({ tokens: [], toolCalls: [{ name: 'apply_patch', arguments: { input: patch } }], omitToolCallIds: true });
  const ev = await events(await responses({ model: 'llama3.2', input: 'Make a.txt', tools, stream: true }));
  assert.deepEqual(ev.types, ['created', 'in_progress', 'output_item.added', 'custom_tool_call_input.delta',
    'custom_tool_call_input.done', 'output_item.done', 'completed']);
  const [added, delta, done, itemDone, completed] = ev.list.slice(2).map((e) => e.data);
  assert.equal(added.item.type, 'custom_tool_call');
  assert.equal(added.item.input, '');
  assert.equal(delta.delta, patch);
  assert.equal(delta.item_id, added.item.id);
  assert.equal(done.input, patch);
  assert.equal(itemDone.item.input, patch);
  assert.equal(itemDone.item.status, 'completed');
  assert.deepEqual(completed.response.output, [itemDone.item]);

  // the round trip: Codex sends the call and its output back as input items
  env.fake.script({ tokens: ['Created a.txt.'] });
  const back = await jsonOf(await responses({
    model: 'llama3.2',
    tools,
    input: [
      { role: 'user', content: 'Make a.txt' },
      { type: 'custom_tool_call', call_id: itemDone.item.call_id, name: 'apply_patch', input: patch },
      { type: 'custom_tool_call_output', call_id: itemDone.item.call_id, output: 'Success. Updated the following files:\nA a.txt\n' },
    ],
  }));
  assert.equal(back.status, 200, back.text);
  assert.equal(back.json.output[0].content[0].text, 'Created a.txt.');
  const msgs = lastNative().messages;
  assert.deepEqual(msgs[1].tool_calls[0].function, { name: 'apply_patch', arguments: { input: patch } });
  assert.deepEqual(msgs[2], {
    role: 'tool', content: 'Success. Updated the following files:\nA a.txt\n', tool_call_id: itemDone.item.call_id, tool_name: 'apply_patch',
  });
});

test('reasoning: reasoning.effort -> think; thinking -> a reasoning item with summary_text', needGateway, async () => {
  env.fake.script({ thinking: ['Let me', ' think'], tokens: ['42'] });
  const r = await jsonOf(await responses({ model: 'qwen3', input: 'Answer?', reasoning: { effort: 'high', summary: 'auto' } }));
  assert.equal(r.status, 200, r.text);
  assert.equal(lastNative().think, 'high');
  assert.deepEqual(r.json.output.map((o) => o.type), ['reasoning', 'message']);
  assert.deepEqual(r.json.output[0].summary, [{ type: 'summary_text', text: 'Let me think' }]);

  env.fake.script({ thinking: ['Let me', ' think'], tokens: ['42'] });
  const ev = await events(await responses({ model: 'qwen3', input: 'Answer?', reasoning: { effort: 'low' }, stream: true }));
  assert.deepEqual(ev.types.slice(0, 9), ['created', 'in_progress', 'output_item.added', 'reasoning_summary_part.added',
    'reasoning_summary_text.delta', 'reasoning_summary_text.delta', 'reasoning_summary_text.done',
    'reasoning_summary_part.done', 'output_item.done']);
  const final = ev.list.at(-1).data.response;
  assert.equal(final.output[0].summary[0].text, 'Let me think');
  assert.equal(final.output[1].content[0].text, '42');
});

test('max_output_tokens -> num_predict; done_reason length -> incomplete', needGateway, async () => {
  env.fake.script({ tokens: ['a', 'b', 'c', 'd'], honourOptions: true });
  const r = await jsonOf(await responses({ model: 'llama3.2', input: 'x', max_output_tokens: 2 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(lastNative().options.num_predict, 2);
  assert.equal(r.json.status, 'incomplete');
  assert.deepEqual(r.json.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.json.output[0].content[0].text, 'ab');

  env.fake.script({ tokens: ['a', 'b', 'c', 'd'], honourOptions: true });
  const ev = await events(await responses({ model: 'llama3.2', input: 'x', max_output_tokens: 2, stream: true }));
  assert.equal(ev.types.at(-1), 'incomplete');
  assert.equal(ev.list.at(-1).data.response.incomplete_details.reason, 'max_output_tokens');
});

test('errors before the first event are OpenAI-shaped HTTP errors', needGateway, async () => {
  env.fake.script({ status: 500, error: 'model exploded' });
  await expectApiError(await responses({ model: 'llama3.2', input: 'x', stream: true }), 502,
    { type: 'api_error', code: 'upstream_error' });
  await expectApiError(await responses({ model: 'no-such-model', input: 'x' }), 404,
    { code: 'model_not_found' });
  await expectApiError(await responses({ model: 'llama3.2', input: 'x', temperature: 'hot' }), 400,
    { type: 'invalid_request_error', param: 'temperature' });
});

test('an error after the first event: response.failed, then the stream ends', needGateway, async () => {
  env.fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 1, errorMessage: 'GPU fell off' });
  const ev = await events(await responses({ model: 'llama3.2', input: 'x', stream: true }));
  assert.equal(ev.types.at(-1), 'failed');
  assert.deepEqual(ev.types.slice(0, 2), ['created', 'in_progress']);
  const failed = ev.list.at(-1).data.response;
  assert.equal(failed.status, 'failed');
  assert.match(failed.error.message, /GPU fell off/);
  assert.ok(!ev.types.includes('completed'));
});

test('previous_response_id and conversation: 400, the gateway stores nothing; nothing sent upstream', needGateway, async () => {
  for (const [field, value] of [['previous_response_id', 'resp_123'], ['conversation', 'conv_1']]) {
    const { error } = await expectApiError(await responses({ model: 'llama3.2', input: 'x', [field]: value }), 400,
      { type: 'invalid_request_error', param: field });
    assert.match(error.message, /stores nothing/);
  }
  assert.equal(env.fake.requests.filter((r) => r.path === '/api/chat').length, 0);
});

test('an alias: the model as asked in the answer, the alias\'s target and options upstream', needGateway, async () => {
  env.fake.script({ tokens: ['ok'] });
  const r = await jsonOf(await responses({ model: 'gpt-4o-mini', input: 'x', temperature: 0.2 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.model, 'gpt-4o-mini');
  const n = lastNative();
  assert.equal(n.model, 'qwen3');
  assert.deepEqual(n.options, { num_ctx: 8192, temperature: 0.2 });
});

test('keys: no key 401, a scoped key 403 outside its scope, 200 inside; the access log names the route', needGateway, async () => {
  await expectApiError(await post(env.gw.url, '/v1/responses', { model: 'llama3.2', input: 'x' }), 401,
    { code: 'invalid_api_key' });
  await expectApiError(await responses({ model: 'qwen3', input: 'x' }, 'scoped'), 403,
    { type: 'permission_error', code: 'model_not_allowed' });
  env.fake.script({ tokens: ['ok'], metrics: { prompt_eval_count: 4, eval_count: 1 } });
  const r = await post(env.gw.url, '/v1/responses', { model: 'llama3.2', input: 'x' },
    { headers: { ...bearer(env.gw.secret('scoped')), 'x-request-id': 'resp-log-1' } });
  assert.equal(r.status, 200);
  await r.text();
  const line = await waitFor(() => env.gw.accessLog('/v1/responses').find((l) => l.request_id === 'resp-log-1'), 5000);
  assert.equal(line.status, 200);
  assert.equal(line.key_name, 'scoped');
  assert.equal(line.method, 'POST');
  assert.equal(line.stream, false);
  assert.equal(line.prompt_tokens, 4);
  assert.equal(line.completion_tokens, 1);
});

test('tokens per minute: Ollama\'s counts are charged, the next request is 429', needGateway, async () => {
  env.fake.script({ tokens: ['x'], metrics: { prompt_eval_count: 60, eval_count: 1 } });
  const ev = await events(await post(env.gw.url, '/v1/responses', { model: 'llama3.2', input: 'x', stream: true },
    { headers: { ...bearer(env.gw.secret('tpm50')), 'x-request-id': 'resp-tpm-1' } }));
  assert.equal(ev.types.at(-1), 'completed');
  await waitFor(() => env.gw.accessLog('/v1/responses').find((l) => l.request_id === 'resp-tpm-1'), 5000);
  await expectApiError(await responses({ model: 'llama3.2', input: 'x' }, 'tpm50'), 429,
    { type: 'rate_limit_error', code: 'rate_limit_exceeded' });
});

test('cancel: a client that leaves mid-stream stops the upstream generation', needGateway, async () => {
  env.fake.script({ tokens: Array.from({ length: 400 }, (_, i) => ` t${i}`), delayMs: 25 });
  const ac = new AbortController();
  const res = await post(env.gw.url, '/v1/responses', { model: 'llama3.2', input: 'x', stream: true },
    { ...auth(), signal: ac.signal });
  assert.equal(res.status, 200);
  let n = 0;
  let tAbort = 0;
  try {
    for await (const r of sseRecords(res.body)) {
      if (r.event === 'response.output_text.delta' && ++n === 5) {
        tAbort = performance.now();
        ac.abort();
      }
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  assert.ok(tAbort > 0, 'got 5 deltas before aborting');
  const rec = env.fake.chats()[0];
  await waitFor(() => rec.closedAt !== null, 3000, 5, 'the fake saw the gateway close');
  assert.ok(rec.closedAt - tAbort < 500, `upstream closed ${Math.round(rec.closedAt - tAbort)} ms after the client left`);
  assert.ok(rec.linesWritten < 200, 'generation stopped early');
});

test('failover before the first event: a busy backend, the next one answers', needGateway, async () => {
  const [a, b] = [await startFake({}), await startFake({})];
  const gw = await startGateway({ backends: [{ name: 'A', url: a.url }, { name: 'B', url: b.url }] });
  try {
    a.script({ status: 503, error: 'server busy, please try again.  maximum pending requests exceeded' });
    for (const stream of [false, true]) {
      const res = await post(gw.url, '/v1/responses', { model: 'llama3.2', input: 'x', stream });
      if (stream) {
        const ev = await events(res);
        assert.equal(ev.types.at(-1), 'completed');
        assert.equal(ev.list.at(-1).data.response.output[0].content[0].text, 'Hello from llama3.2');
      } else {
        const r = await jsonOf(res);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.output[0].content[0].text, 'Hello from llama3.2');
      }
    }
    assert.ok(a.chats().length >= 1, 'A was tried first at least once');
    assert.equal(b.chats().length, 2, 'B answered both');
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
  }
});
