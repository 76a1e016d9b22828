// What the gateway sends to Ollama: the native /api/chat body and headers
// as the fake recorded them (DESIGN.md "Translation rules", PROTOCOL.md §5).
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { useGateway, needGateway, chat, jsonOf, simpleChat } from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  backendExtra: { headers: { Authorization: 'Bearer backend-secret', 'X-Backend-Tag': 'tag-1' } },
});

const user = [{ role: 'user', content: 'hi' }];

/** Send body (non-stream unless it says otherwise), return the native body the fake got. */
async function upstream(body, headers) {
  const { fake, gw } = env;
  fake.reset();
  const r = await jsonOf(await chat(gw.url, body, { headers }));
  assert.equal(r.status, 200, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
  const chats = fake.chats();
  assert.equal(chats.length, 1, 'exactly one upstream request');
  assert.equal(chats[0].status, 200, 'the fake (strict, like Ollama) accepted the native body');
  return chats[0];
}

test('stream is always explicit', needGateway, async () => {
  assert.equal((await upstream({ model: 'llama3.2', messages: user })).body.stream, false);
  assert.equal((await upstream({ model: 'llama3.2', messages: user, stream: false })).body.stream, false);
  assert.equal((await upstream({ model: 'llama3.2', messages: user, stream: true })).body.stream, true);
});

test('no sampling defaults injected: options absent when the client set none', needGateway, async () => {
  const b = (await upstream({ model: 'llama3.2', messages: user })).body;
  assert.deepEqual(b.options ?? {}, {});
  assert.equal(b.format, undefined);
  assert.equal(b.think, undefined);
  assert.equal(b.tools, undefined);
  assert.deepEqual(b.messages, [{ role: 'user', content: 'hi' }]);
});

test('sampling fields map to options exactly', needGateway, async () => {
  const b = (await upstream({
    model: 'llama3.2', messages: user, temperature: 0.3, top_p: 0.9, seed: 42,
    presence_penalty: 0.5, frequency_penalty: 0.25, stop: 'END', max_tokens: 50,
  })).body;
  assert.deepEqual(b.options, {
    temperature: 0.3, top_p: 0.9, seed: 42, presence_penalty: 0.5, frequency_penalty: 0.25, stop: ['END'], num_predict: 50,
  });
});

test('temperature 0 is sent (not dropped as falsy)', needGateway, async () => {
  const b = (await upstream({ model: 'llama3.2', messages: user, temperature: 0 })).body;
  assert.deepEqual(b.options, { temperature: 0 });
});

test('max_completion_tokens → num_predict, and wins over max_tokens', needGateway, async () => {
  assert.deepEqual((await upstream({ model: 'llama3.2', messages: user, max_completion_tokens: 60 })).body.options, { num_predict: 60 });
  assert.deepEqual((await upstream({ model: 'llama3.2', messages: user, max_tokens: 10, max_completion_tokens: 70 })).body.options, { num_predict: 70 });
});

test('stop array kept as array', needGateway, async () => {
  assert.deepEqual((await upstream({ model: 'llama3.2', messages: user, stop: ['a', 'b'] })).body.options, { stop: ['a', 'b'] });
});

test('response_format json_object → "json", json_schema → the schema object, text → nothing', needGateway, async () => {
  assert.equal((await upstream({ model: 'llama3.2', messages: user, response_format: { type: 'json_object' } })).body.format, 'json');
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false };
  const b = (await upstream({
    model: 'llama3.2', messages: user, response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema } },
  })).body;
  assert.deepEqual(b.format, schema);
  assert.equal((await upstream({ model: 'llama3.2', messages: user, response_format: { type: 'text' } })).body.format, undefined);
});

test('developer role → system', needGateway, async () => {
  const b = (await upstream({ model: 'llama3.2', messages: [{ role: 'developer', content: 'be brief' }, ...user] })).body;
  assert.deepEqual(b.messages, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
});

test('content parts: text joined, data-URL image → images raw base64, one message', needGateway, async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const b = (await upstream({
    model: 'llama3.2',
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'What is' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
        { type: 'text', text: 'this?' },
      ],
    }],
  })).body;
  assert.equal(b.messages.length, 1);
  assert.equal(b.messages[0].role, 'user');
  assert.equal(b.messages[0].content, 'What is\nthis?');
  assert.deepEqual(b.messages[0].images, [png]);
});

test('assistant tool_calls: string arguments → objects; tool message → tool_name + tool_call_id', needGateway, async () => {
  const b = (await upstream({
    model: 'llama3.2',
    messages: [
      { role: 'user', content: 'weather in Tokyo?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo","days":2}' } }],
      },
      { role: 'tool', tool_call_id: 'call_abc123', content: '{"temp":21}' },
    ],
  })).body;
  assert.equal(b.messages.length, 3);
  const a = b.messages[1];
  assert.equal(a.role, 'assistant');
  assert.equal(a.content, '');
  assert.equal(a.tool_calls.length, 1);
  assert.equal(a.tool_calls[0].id, 'call_abc123');
  assert.equal(a.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(a.tool_calls[0].function.arguments, { city: 'Tokyo', days: 2 });
  const t = b.messages[2];
  assert.equal(t.role, 'tool');
  assert.equal(t.content, '{"temp":21}');
  assert.equal(t.tool_name, 'get_weather');
  assert.equal(t.tool_call_id, 'call_abc123');
});

test('tools passed through; tool_choice none drops them; named choice keeps only that tool', needGateway, async () => {
  const tools = [
    { type: 'function', function: { name: 'a', parameters: { type: 'object', properties: {} } } },
    { type: 'function', function: { name: 'b', description: 'B', parameters: { type: 'object', properties: { x: { type: 'string' } } } } },
  ];
  assert.deepEqual((await upstream({ model: 'llama3.2', messages: user, tools })).body.tools, tools);
  assert.equal((await upstream({ model: 'llama3.2', messages: user, tools, tool_choice: 'none' })).body.tools, undefined);
  assert.deepEqual((await upstream({ model: 'llama3.2', messages: user, tools, tool_choice: { type: 'function', function: { name: 'b' } } })).body.tools, [tools[1]]);
});

test('reasoning_effort → think', needGateway, async () => {
  const cases = [['high', 'high'], ['medium', 'medium'], ['low', 'low'], ['minimal', 'low'], ['none', false]];
  for (const [effort, think] of cases) {
    const b = (await upstream({ model: 'qwen3', messages: user, reasoning_effort: effort })).body;
    assert.equal(b.think, think, `reasoning_effort ${effort}`);
  }
  assert.equal((await upstream({ model: 'qwen3', messages: user })).body.think, undefined, 'unset stays unset');
});

test('alias with options: upstream model and alias default num_ctx applied, client options merged', needGateway, async () => {
  const { fake, gw } = env;
  fake.reset();
  const r = await jsonOf(await chat(gw.url, { model: 'gpt-4o-mini', messages: user, temperature: 0.1 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.model, 'gpt-4o-mini');
  const b = fake.chats()[0].body;
  assert.equal(b.model, 'qwen3');
  assert.deepEqual(b.options, { num_ctx: 8192, temperature: 0.1 });
});

test('client credentials, Origin, Host and cookies are not forwarded; backend headers are', needGateway, async () => {
  const { fake, gw } = env;
  fake.reset();
  const body = JSON.stringify(simpleChat('llama3.2'));
  const status = await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: gw.port,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: {
        Host: 'public.example.com',
        'Content-Type': 'application/json',
        Authorization: 'Bearer client-secret',
        'api-key': 'client-secret-2',
        'x-api-key': 'client-secret-3',
        Origin: 'https://evil.example.com',
        Cookie: 'session=abc',
        'X-Forwarded-For': '203.0.113.9',
        'OpenAI-Organization': 'org-x',
      },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(status, 200);
  const rec = fake.chats()[0];
  const h = rec.headers;
  assert.equal(h.authorization, 'Bearer backend-secret', 'backend\'s configured Authorization, not the client\'s');
  assert.equal(h['x-backend-tag'], 'tag-1');
  for (const k of ['api-key', 'x-api-key', 'origin', 'cookie', 'openai-organization']) {
    assert.equal(h[k], undefined, `${k} must not be forwarded`);
  }
  assert.ok(!/public\.example\.com/.test(h.host ?? ''), `Host forwarded: ${h.host}`);
  assert.ok(!JSON.stringify(h).includes('client-secret'));
  assert.match(h['content-type'] ?? '', /^application\/json/);
});

test('unknown client fields are not forwarded', needGateway, async () => {
  const b = (await upstream({
    model: 'llama3.2', messages: user, user: 'u1', metadata: { a: '1' }, store: false, logit_bias: { 1: 2 }, parallel_tool_calls: true, service_tier: 'auto',
  })).body;
  for (const k of ['user', 'metadata', 'store', 'logit_bias', 'parallel_tool_calls', 'service_tier']) {
    assert.equal(b[k], undefined, k);
  }
});
