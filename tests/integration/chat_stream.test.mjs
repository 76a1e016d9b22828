// Streamed /v1/chat/completions through the real gateway to the fake Ollama.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, chat, readSSE, choiceChunks, deltas, toolCallDeltas, simpleChat, waitFor,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { keepalive_interval_s: 1, first_token_timeout_s: 20, idle_stream_timeout_s: 20 } },
});

const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

/**
 * The invariants every well-formed stream has (PROTOCOL.md §4, §5.1-3, 11-13).
 * Returns the deltas in order with `role` removed from the first one and a
 * leading role-only chunk dropped, finish chunk excluded.
 */
function assertWellFormed(res, sse, { model, finish = 'stop' }) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.deepEqual(sse.errors, [], 'no error frame');
  assert.deepEqual(sse.unparsable, [], 'every data record is JSON or [DONE]');
  assert.equal(sse.done, true, 'data: [DONE] was sent');
  assert.equal(sse.dataRecords.at(-1).data, '[DONE]', '[DONE] is the last data record');
  assert.deepEqual(sse.afterDone, []);
  assert.equal(sse.partial, false, 'every record ends with a blank line');
  for (const r of sse.records) {
    assert.ok(r.fields.every((f) => f === 'data'), `only data: fields, got ${r.fields}`);
  }
  const all = sse.chunks;
  assert.ok(all.length >= 2, 'at least a content and a finish chunk');
  const id = all[0].id;
  assert.match(id, /^chatcmpl-[A-Za-z0-9_-]{8,}$/);
  const created = all[0].created;
  assert.ok(Number.isInteger(created), 'created is an integer');
  assert.ok(Math.abs(created - Date.now() / 1000) < 120, 'created is about now (seconds)');
  for (const c of all) {
    assert.equal(c.id, id, 'same id on every chunk');
    assert.equal(c.created, created, 'same created on every chunk');
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, model, 'model is the name the client asked for');
    assert.ok(Array.isArray(c.choices), 'choices is an array');
  }
  const cc = choiceChunks(sse);
  for (const c of cc) {
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].index, 0);
  }
  const last = cc.at(-1);
  assert.deepEqual(last.choices[0].delta, {}, 'finish chunk has an empty delta');
  assert.equal(last.choices[0].finish_reason, finish);
  for (const c of cc.slice(0, -1)) {
    assert.equal(c.choices[0].finish_reason ?? null, null, 'finish_reason null before the finish chunk');
  }
  // the finish chunk comes after every choice chunk; only the usage chunk may follow
  const lastIdx = all.indexOf(last);
  for (const c of all.slice(lastIdx + 1)) assert.deepEqual(c.choices, [], 'only a usage chunk after finish');
  const ds = cc.slice(0, -1).map((c) => ({ ...c.choices[0].delta }));
  const roles = cc.filter((c) => 'role' in c.choices[0].delta);
  assert.equal(roles.length, 1, 'role appears exactly once');
  assert.equal(roles[0], cc[0], 'role is on the first chunk');
  assert.equal(cc[0].choices[0].delta.role, 'assistant');
  if (ds.length) delete ds[0].role;
  if (ds.length && (Object.keys(ds[0]).length === 0 || (Object.keys(ds[0]).length === 1 && ds[0].content === ''))) {
    ds.shift();
  }
  return ds;
}

// reply.c: a stream to an HTTP/1.1 client goes out chunked and leaves
// libmicrohttpd's response block out (every other test here); an HTTP/1.0
// client cannot take chunks, so its stream is read through that block, goes
// out as it comes, and ends with the connection.
test('an HTTP/1.0 client gets the whole stream unchunked, ended by the close', needGateway, async () => {
  const { fake, gw } = env;
  const tokens = Array.from({ length: 40 }, (_, i) => ` t${i}-${'x'.repeat(40)}`);
  fake.script({ tokens, delayMs: 5 });
  const body = JSON.stringify(simpleChat('llama3.2', { stream: true }));
  const s = net.connect({ port: gw.port, host: '127.0.0.1' });
  let text = '';
  s.setEncoding('latin1');
  s.on('data', (d) => { text += d; });
  const closed = new Promise((resolve, reject) => { s.on('close', resolve); s.on('error', reject); });
  s.write(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const timer = setTimeout(() => s.destroy(new Error('no close within 20 s')), 20000);
  await closed;
  clearTimeout(timer);
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'a response head');
  const head = text.slice(0, end).toLowerCase();
  assert.match(head, /^http\/1\.[01] 200/);
  assert.doesNotMatch(head, /transfer-encoding/, 'no chunks for HTTP/1.0');
  assert.doesNotMatch(head, /content-length/, 'streamed as it came, not buffered whole');
  const payload = Buffer.from(text.slice(end + 4), 'latin1');
  assert.ok(payload.length > 1024, 'more than one response block');
  const res = new Response(payload, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  const sse = await readSSE(res);
  const ds = assertWellFormed(res, sse, { model: 'llama3.2' });
  assert.equal(ds.map((d) => d.content).join(''), tokens.join(''));
  assert.equal(fake.chats().at(-1).body.stream, true);
});

// PROTOCOL §5.1, §5.11, §5.12: finish chunk, SSE framing, id/object/created/model on every chunk
test('stream text through an alias: exact chunk sequence, [DONE], body closes', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'] });
  const res = await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }));
  const sse = await readSSE(res);
  const ds = assertWellFormed(res, sse, { model: 'gpt-3.5-turbo' });
  assert.deepEqual(ds, [{ content: 'Hello' }, { content: ' from' }, { content: ' llama3.2' }]);
  assert.equal(sse.chunks.filter((c) => c.usage).length, 0, 'no usage chunk without include_usage');
  assert.equal(fake.chats().length, 1);
  assert.equal(fake.chats()[0].body.model, 'llama3.2', 'alias resolved upstream');
  assert.equal(fake.chats()[0].body.stream, true);
});

test('stream with a backend model name: model echoed as asked', needGateway, async () => {
  const { gw } = env;
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const sse = await readSSE(res);
  const ds = assertWellFormed(res, sse, { model: 'llama3.2' });
  assert.equal(ds.map((d) => d.content).join(''), 'Hello from llama3.2');
});

test('stream ids are unique per response', needGateway, async () => {
  const { gw } = env;
  const a = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  const b = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true })));
  assert.notEqual(a.chunks[0].id, b.chunks[0].id);
});

test('include_usage: usage chunk with choices [] after finish, before [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 11, eval_count: 3 } });
  const res = await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true, stream_options: { include_usage: true } }));
  const sse = await readSSE(res);
  const ds = assertWellFormed(res, sse, { model: 'gpt-3.5-turbo' });
  assert.deepEqual(ds, [{ content: 'a' }, { content: 'b' }, { content: 'c' }]);
  const last = sse.chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
  const finishIdx = sse.chunks.findIndex((c) => c.choices[0]?.finish_reason);
  assert.equal(finishIdx, sse.chunks.length - 2, 'usage chunk right after the finish chunk');
  for (const c of sse.chunks.slice(0, -1)) assert.ok(c.usage === undefined || c.usage === null);
});

test('include_usage with metrics missing: zeros', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a'], metrics: false });
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true, stream_options: { include_usage: true } })));
  assert.deepEqual(sse.chunks.at(-1).usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  assert.equal(sse.done, true);
});

test('done_reason length → finish_reason length; missing done_reason → stop', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a'], doneReason: 'length' });
  let res = await chat(gw.url, simpleChat('llama3.2', { stream: true, max_tokens: 1 }));
  assertWellFormed(res, await readSSE(res), { model: 'llama3.2', finish: 'length' });
  fake.script({ tokens: ['a'], doneReason: null });
  res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  assertWellFormed(res, await readSSE(res), { model: 'llama3.2', finish: 'stop' });
});

test('content on the done line is streamed before the finish chunk', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b'], doneContent: 'c' });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const ds = assertWellFormed(res, await readSSE(res), { model: 'llama3.2' });
  assert.equal(ds.map((d) => d.content ?? '').join(''), 'abc');
});

test('special characters and multi-byte UTF-8 survive exactly', needGateway, async () => {
  const { fake, gw } = env;
  const tokens = ['"quoted"', ' back\\slash', ' new\nline', ' tab\t', ' héllo', ' 日本語', ' 🙂', ' </script>', ' \u0001'];
  fake.script({ tokens });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const ds = assertWellFormed(res, await readSSE(res), { model: 'llama3.2' });
  assert.deepEqual(ds.map((d) => d.content), tokens);
});

test('many small tokens arrive complete and in order', needGateway, async () => {
  const { fake, gw } = env;
  const tokens = Array.from({ length: 2000 }, (_, i) => ` t${i}`);
  fake.script({ tokens });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const ds = assertWellFormed(res, await readSSE(res), { model: 'llama3.2' });
  assert.equal(ds.length, 2000);
  assert.equal(ds.map((d) => d.content).join(''), tokens.join(''));
});

test('tool call on a normal line: index/id/type/name once, arguments JSON string, finish tool_calls', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' }, id: 'call_tokyo001' }] });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true, tools: TOOLS }));
  const sse = await readSSE(res);
  assertWellFormed(res, sse, { model: 'llama3.2', finish: 'tool_calls' });
  const by = toolCallDeltas(sse);
  assert.deepEqual([...by.keys()], [0]);
  const t = by.get(0);
  assert.deepEqual(t.ids, ['call_tokyo001'], 'Ollama\'s id kept, sent once');
  assert.deepEqual(t.types, ['function']);
  assert.deepEqual(t.names, ['get_weather']);
  assert.equal(typeof t.args, 'string');
  assert.deepEqual(JSON.parse(t.args), { city: 'Tokyo' });
  assert.deepEqual(fake.chats()[0].body.tools, TOOLS, 'tools passed through');
});

test('tool call on the done line is not lost; finish tool_calls', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Let me check.'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }], toolCallsOn: 'done' });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true, tools: TOOLS }));
  const sse = await readSSE(res);
  assertWellFormed(res, sse, { model: 'llama3.2', finish: 'tool_calls' });
  assert.equal(sse.content, 'Let me check.');
  const by = toolCallDeltas(sse);
  assert.deepEqual([...by.keys()], [0]);
  assert.equal(by.get(0).ids.length, 1);
  assert.match(by.get(0).ids[0], /^call_/);
  assert.deepEqual(by.get(0).names, ['get_weather']);
  assert.deepEqual(JSON.parse(by.get(0).args), { city: 'Paris' });
});

test('two tool calls (one line, and separate lines) get index 0 and 1 with distinct ids', needGateway, async () => {
  const { fake, gw } = env;
  for (const on of ['line', 'lines', 'done']) {
    fake.reset();
    fake.script({
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }, { name: 'get_time', arguments: { tz: 'UTC', n: [1, 2] } }],
      toolCallsOn: on,
    });
    const res = await chat(gw.url, simpleChat('llama3.2', { stream: true, tools: TOOLS }));
    const sse = await readSSE(res);
    assertWellFormed(res, sse, { model: 'llama3.2', finish: 'tool_calls' });
    const by = toolCallDeltas(sse);
    assert.deepEqual([...by.keys()].sort(), [0, 1], `toolCallsOn=${on}`);
    assert.deepEqual(by.get(0).names, ['get_weather']);
    assert.deepEqual(by.get(1).names, ['get_time']);
    assert.equal(by.get(0).ids.length, 1);
    assert.equal(by.get(1).ids.length, 1);
    assert.notEqual(by.get(0).ids[0], by.get(1).ids[0]);
    assert.deepEqual(by.get(0).types, ['function']);
    assert.deepEqual(by.get(1).types, ['function']);
    assert.deepEqual(JSON.parse(by.get(0).args), { city: 'Tokyo' });
    assert.deepEqual(JSON.parse(by.get(1).args), { tz: 'UTC', n: [1, 2] });
  }
});

test('tool calls without Ollama ids get generated unique call_ ids', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ toolCalls: [{ name: 'get_weather', arguments: {} }, { name: 'get_weather', arguments: { city: 'X' } }], omitToolCallIds: true });
  const sse = await readSSE(await chat(gw.url, simpleChat('llama3.2', { stream: true, tools: TOOLS })));
  const by = toolCallDeltas(sse);
  const ids = [by.get(0).ids[0], by.get(1).ids[0]];
  for (const id of ids) assert.match(id, /^call_[A-Za-z0-9]+$/);
  assert.notEqual(ids[0], ids[1]);
  assert.deepEqual(JSON.parse(by.get(0).args), {}, 'no-argument call has "{}"');
});

test('tool calls with done_reason length keep finish_reason length', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }], doneReason: 'length' });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true, tools: TOOLS }));
  const sse = await readSSE(res);
  assertWellFormed(res, sse, { model: 'llama3.2', finish: 'length' });
  assert.equal(toolCallDeltas(sse).size, 1);
});

test('thinking streams as reasoning_content and reasoning, before the content', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ thinking: ['Let me', ' think.'], tokens: ['Answer', '!'] });
  const res = await chat(gw.url, simpleChat('gpt-4o-mini', { stream: true }));
  const sse = await readSSE(res);
  const ds = assertWellFormed(res, sse, { model: 'gpt-4o-mini' });
  assert.equal(sse.reasoning, 'Let me think.', 'reasoning_content joined');
  assert.equal(sse.reasoningAlt, 'Let me think.', 'reasoning joined');
  assert.equal(sse.content, 'Answer!');
  const firstContent = ds.findIndex((d) => d.content);
  const lastReasoning = ds.map((d) => !!d.reasoning_content).lastIndexOf(true);
  assert.ok(lastReasoning < firstContent, 'reasoning before content');
  // every delta carries both names or neither (a reasoning without its
  // reasoning_content, or the other way round, fails too)
  for (const d of ds) assert.equal(d.reasoning, d.reasoning_content, 'both names carry the same text');
  assert.ok(ds.some((d) => d.reasoning_content !== undefined), 'some delta carries reasoning_content');
  assert.equal(fake.chats()[0].body.model, 'qwen3');
});

test('keep-alive comments while the first token is late', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['late', ' answer'], firstDelayMs: 2600 });
  const t0 = performance.now();
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
  const tHeaders = performance.now() - t0;
  assert.equal(res.status, 200);
  assert.ok(tHeaders < 2000, `SSE headers sent before the first token (after ${Math.round(tHeaders)} ms)`);
  const sse = await readSSE(res);
  const firstData = sse.records.findIndex((r) => r.data !== null);
  const before = sse.records.slice(0, firstData).flatMap((r) => r.comments);
  assert.ok(before.length >= 2, `>= 2 keep-alive comments before the first token, got ${before.length}`);
  for (const c of before) assert.equal(c, 'keep-alive');
  const ds = assertWellFormed(res, sse, { model: 'llama3.2' });
  assert.equal(ds.map((d) => d.content).join(''), 'late answer');
  // spacing: about one per keepalive_interval_s (1 s)
  const times = sse.records.slice(0, firstData).filter((r) => r.comments.length).map((r) => r.at);
  for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] > 500, 'keep-alives are spaced');
});

test('slow client: a large answer read slowly arrives complete and in order (back-pressure)', needGateway, async () => {
  const { fake, gw } = env;
  const N = 2000;
  const pad = 'x'.repeat(32 * 1024);
  const tokens = Array.from({ length: N }, (_, i) => `<${i}>${pad}`);
  fake.script({ tokens });
  const u = new URL(gw.url);
  const res = await new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify(simpleChat('llama3.2', { stream: true })));
  });
  assert.equal(res.statusCode, 200);
  res.pause();
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 5000);
  // Not reading: the gateway must stop reading from the fake once its buffers
  // are full. Wait until the fake's writes have stalled (linesWritten the same
  // for 500 ms) or it finished: a gateway that buffers everything lets the
  // fake write all N lines, and the assertion below fails.
  let seen = -1;
  let seenAt = 0;
  await waitFor(() => {
    if (rec.finished) return true;
    if (rec.linesWritten !== seen) { seen = rec.linesWritten; seenAt = performance.now(); return false; }
    return performance.now() - seenAt >= 500;
  }, 20000, 50, 'the fake\'s writes stalled (or it finished)');
  const writtenWhilePaused = rec.linesWritten;
  assert.ok(!rec.finished && writtenWhilePaused < N,
    `fake wrote ${writtenWhilePaused}/${N} lines (${Math.round(writtenWhilePaused * pad.length / 1048576)} MiB) while the client read nothing: the gateway buffers instead of pausing the upstream`);
  // Now read slowly in small sips, then freely; everything must arrive, in order.
  const sse = await (async () => {
    const chunks = [];
    let sips = 0;
    res.on('data', (d) => {
      chunks.push(d);
      if (sips++ < 20) { res.pause(); setTimeout(() => res.resume(), 20); }
    });
    res.resume();
    let timer;
    await new Promise((r, j) => {
      res.on('end', r);
      res.on('error', j);
      timer = setTimeout(() => j(new Error('slow read timed out')), 40000);
    }).finally(() => clearTimeout(timer));
    return readSSE([Buffer.concat(chunks)]);
  })();
  assert.equal(sse.done, true);
  assert.deepEqual(sse.errors, []);
  const ds = choiceChunks(sse).map((c) => c.choices[0].delta.content ?? '').filter(Boolean);
  assert.equal(ds.length, N);
  for (let i = 0; i < N; i++) {
    if (ds[i] !== tokens[i]) assert.fail(`token ${i} differs: ${ds[i].slice(0, 20)}…`);
  }
  await waitFor(() => rec.finished, 2000, 20, 'fake finished');
});
