// OpenAI legacy /v1/completions through the real gateway to the fake Ollama's
// /api/generate, streamed and not: the native body sent, the answer's shape,
// echo, logprobs, thinking dropped, and every error before and after the
// first byte.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { useGateway, needGateway, post, jsonOf, readSSE, expectApiError } from './harness.mjs';
import { DEFAULT_MODELS } from '../fake_ollama/fake.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { keepalive_interval_s: 1, first_token_timeout_s: 20, idle_stream_timeout_s: 20 } },
  // a model with Ollama's "insert" capability, for suffix
  fake: { models: [...DEFAULT_MODELS, { name: 'qwen2.5-coder:1.5b', capabilities: ['completion', 'insert'] }] },
});

const completions = (base, body) => post(base, '/v1/completions', body);
const generates = (fake) => fake.requestsTo('/api/generate');

/** The whole answer's invariants; returns the object. */
function assertCompletion(r, model) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const j = r.json;
  assert.deepEqual(Object.keys(j), ['id', 'object', 'created', 'model', 'choices', 'usage']);
  assert.match(j.id, /^cmpl-[A-Za-z0-9_-]{8,}$/);
  assert.equal(j.object, 'text_completion');
  assert.ok(Number.isInteger(j.created) && Math.abs(j.created - Date.now() / 1000) < 120, 'created is now, in seconds');
  assert.equal(j.model, model);
  assert.equal(j.choices.length, 1);
  assert.deepEqual(Object.keys(j.choices[0]), ['text', 'index', 'logprobs', 'finish_reason']);
  assert.equal(j.choices[0].index, 0);
  return j;
}

/**
 * A streamed answer's invariants: SSE data records only, [DONE] last, the
 * same id/object/created/model on every chunk, one choice (index 0) with a
 * string text and finish_reason null until the final chunk (empty text), then
 * only the usage chunk. Returns {texts, final, usage}.
 */
function assertStream(res, sse, { model, finish = 'stop', usage = false }) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.deepEqual(sse.errors, [], 'no error frame');
  assert.deepEqual(sse.unparsable, []);
  assert.equal(sse.done, true, 'data: [DONE] was sent');
  assert.equal(sse.dataRecords.at(-1).data, '[DONE]');
  assert.equal(sse.partial, false);
  for (const r of sse.records) assert.ok(r.fields.every((f) => f === 'data'), `only data: fields, got ${r.fields}`);
  const all = sse.chunks;
  const { id, created } = all[0];
  assert.match(id, /^cmpl-[A-Za-z0-9_-]{8,}$/);
  for (const c of all) {
    assert.equal(c.id, id);
    assert.equal(c.created, created);
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, model);
  }
  const withChoices = all.filter((c) => c.choices.length);
  for (const c of withChoices) {
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].index, 0);
    assert.equal(typeof c.choices[0].text, 'string');
  }
  const final = withChoices.at(-1).choices[0];
  assert.equal(final.text, '');
  assert.equal(final.finish_reason, finish);
  const texts = withChoices.slice(0, -1).map((c) => {
    assert.equal(c.choices[0].finish_reason, null);
    return c.choices[0].text;
  });
  const rest = all.slice(all.indexOf(withChoices.at(-1)) + 1);
  assert.equal(rest.length, usage ? 1 : 0, 'only the usage chunk after the final chunk');
  if (usage) assert.deepEqual(rest[0].choices, []);
  return { texts, final, usage: usage ? rest[0].usage : undefined };
}

test('non-stream through an alias: the whole text_completion, and exactly the native body', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Hello', ' from', ' llama3.2'], metrics: { prompt_eval_count: 26, eval_count: 3 } });
  const j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'gpt-3.5-turbo', prompt: 'Say hello', user: 'u1' })), 'gpt-3.5-turbo');
  assert.deepEqual(j.choices[0], { text: 'Hello from llama3.2', index: 0, logprobs: null, finish_reason: 'stop' });
  assert.deepEqual(j.usage, { prompt_tokens: 26, completion_tokens: 3, total_tokens: 29 });
  const up = generates(fake);
  assert.equal(up.length, 1);
  // no sampling default injected, "stream" explicit, nothing unknown forwarded
  assert.deepEqual(up[0].body, { model: 'llama3.2', stream: false, prompt: 'Say hello' });
});

test('sampling, stop, seed, suffix and alias options reach /api/generate', needGateway, async () => {
  const { fake, gw } = env;
  let j = assertCompletion(await jsonOf(await completions(gw.url, {
    model: 'qwen2.5-coder:1.5b', prompt: ['def add(a, b):'], suffix: '\n    return c', max_tokens: 50,
    stop: ['\n\n', 'END'], seed: 7, temperature: 0.2, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: -0.5,
    n: 1, best_of: 1,
  })), 'qwen2.5-coder:1.5b');
  assert.equal(j.choices[0].finish_reason, 'stop');
  assert.deepEqual(generates(fake)[0].body, {
    model: 'qwen2.5-coder:1.5b', stream: false, prompt: 'def add(a, b):', suffix: '\n    return c',
    options: { temperature: 0.2, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: -0.5, seed: 7, num_predict: 50, stop: ['\n\n', 'END'] },
  });
  // an alias's options go under the client's (gpt-4o* -> qwen3 with num_ctx 8192)
  j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'gpt-4o-mini', prompt: 'p', stop: 'x' })), 'gpt-4o-mini');
  assert.deepEqual(generates(fake)[1].body, { model: 'qwen3', stream: false, prompt: 'p', options: { num_ctx: 8192, stop: ['x'] } });
});

test('max_tokens stops with finish_reason length; a stop string with stop', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['one', ' two', ' three', ' four'] });
  let j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'llama3.2', prompt: 'Count', max_tokens: 2 })), 'llama3.2');
  assert.equal(j.choices[0].text, 'one two');
  assert.equal(j.choices[0].finish_reason, 'length');
  j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'llama3.2', prompt: 'Count', stop: ' three' })), 'llama3.2');
  assert.equal(j.choices[0].text, 'one two');
  assert.equal(j.choices[0].finish_reason, 'stop');
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'Count', max_tokens: 3, stream: true });
  const s = assertStream(res, await readSSE(res), { model: 'llama3.2', finish: 'length' });
  assert.deepEqual(s.texts, ['one', ' two', ' three']);
});

test('stream: text deltas, one final chunk, [DONE]; the same id on every chunk', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['Hel', 'lo', ' "world"\n'] });
  const res = await completions(gw.url, { model: 'gpt-3.5-turbo', prompt: 'Say hello', stream: true });
  const s = assertStream(res, await readSSE(res), { model: 'gpt-3.5-turbo' });
  assert.deepEqual(s.texts, ['Hel', 'lo', ' "world"\n']);
  assert.deepEqual(generates(fake)[0].body, { model: 'llama3.2', stream: true, prompt: 'Say hello' });
  // ids are unique per response
  const a = await readSSE(await completions(gw.url, { model: 'llama3.2', prompt: 'x', stream: true }));
  const b = await readSSE(await completions(gw.url, { model: 'llama3.2', prompt: 'x', stream: true }));
  assert.notEqual(a.chunks[0].id, b.chunks[0].id);
});

test('stream with include_usage: a usage chunk with choices [] before [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b'], metrics: { prompt_eval_count: 11, eval_count: 2 } });
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true, stream_options: { include_usage: true } });
  const s = assertStream(res, await readSSE(res), { model: 'llama3.2', usage: true });
  assert.deepEqual(s.texts, ['a', 'b']);
  assert.deepEqual(s.usage, { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
  // include_usage without a stream changes nothing
  const j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream_options: { include_usage: true } })), 'llama3.2');
  assert.deepEqual(j.usage, { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
});

test('echo: the prompt first, in the text or as the first chunk', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: [' 4', '.'] });
  const j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'llama3.2', prompt: 'Q: "2+2"?\nA:', echo: true })), 'llama3.2');
  assert.equal(j.choices[0].text, 'Q: "2+2"?\nA: 4.');
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'Q: "2+2"?\nA:', echo: true, stream: true });
  const s = assertStream(res, await readSSE(res), { model: 'llama3.2' });
  assert.deepEqual(s.texts, ['Q: "2+2"?\nA:', ' 4', '.']);
  for (const r of generates(fake)) assert.equal(r.body.echo, undefined, 'echo is the gateway\'s, not sent');
});

test('thinking is no part of a legacy completion: dropped', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ thinking: ['Let me', ' think'], tokens: ['4'] });
  const j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'qwen3', prompt: '2+2=' })), 'qwen3');
  assert.equal(j.choices[0].text, '4');
  const res = await completions(gw.url, { model: 'qwen3', prompt: '2+2=', stream: true });
  const s = assertStream(res, await readSSE(res), { model: 'qwen3' });
  assert.deepEqual(s.texts, ['4']);
});

test('logprobs: forwarded as top_logprobs, answered in the legacy shape', needGateway, async () => {
  const { fake, gw } = env;
  const lp = (token, logprob, top) => ({ token, logprob, top_logprobs: top.map(([t, l]) => ({ token: t, logprob: l })) });
  fake.script({
    lines: [
      { model: 'llama3.2', created_at: '', message: { role: 'assistant', content: 'Hi' }, done: false, logprobs: [lp('Hi', -0.5, [['Hi', -0.5], ['Yo', -1.5]])] },
      { model: 'llama3.2', created_at: '', message: { role: 'assistant', content: ' là' }, done: false, logprobs: [lp(' là', -0.25, [[' la', -2]])] },
      { model: 'llama3.2', created_at: '', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 2 },
    ],
  });
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'p', logprobs: 1, stream: true });
  const sse = await readSSE(res);
  assertStream(res, sse, { model: 'llama3.2' });
  const lps = sse.chunks.filter((c) => c.choices[0]?.text).map((c) => c.choices[0].logprobs);
  assert.deepEqual(lps, [
    { tokens: ['Hi'], token_logprobs: [-0.5], top_logprobs: [{ Hi: -0.5, Yo: -1.5 }], text_offset: [0] },
    { tokens: [' là'], token_logprobs: [-0.25], top_logprobs: [{ ' la': -2, ' là': -0.25 }], text_offset: [2] },
  ]);
  const up = generates(fake)[0].body;
  assert.equal(up.logprobs, true);
  assert.equal(up.top_logprobs, 1);
  // the whole answer: Ollama concatenates them
  fake.script({
    lines: [{ model: 'llama3.2', created_at: '', message: { role: 'assistant', content: 'Hi!' }, done: true, done_reason: 'length', logprobs: [lp('Hi', -0.5, []), lp('!', -0.125, [])] }],
  });
  const j = assertCompletion(await jsonOf(await completions(gw.url, { model: 'llama3.2', prompt: 'p', logprobs: 0 })), 'llama3.2');
  assert.deepEqual(j.choices[0], {
    text: 'Hi!', index: 0, finish_reason: 'length',
    logprobs: { tokens: ['Hi', '!'], token_logprobs: [-0.5, -0.125], top_logprobs: [{ Hi: -0.5 }, { '!': -0.125 }], text_offset: [0, 2] },
  });
});

test('400s before any backend is asked, naming the field', needGateway, async () => {
  const { fake, gw } = env;
  const cases = [
    [{ model: 'llama3.2' }, 'prompt'],
    [{ model: 'llama3.2', prompt: '' }, 'prompt'],
    [{ model: 'llama3.2', prompt: ['a', 'b'] }, 'prompt'],
    [{ model: 'llama3.2', prompt: [1, 2, 3] }, 'prompt'],
    [{ model: 'llama3.2', prompt: [[1, 2]] }, 'prompt'],
    [{ model: 'llama3.2', prompt: [] }, 'prompt'],
    [{ model: 'llama3.2', prompt: 'p', n: 2 }, 'n'],
    [{ model: 'llama3.2', prompt: 'p', best_of: 3 }, 'best_of'],
    [{ model: 'llama3.2', prompt: 'p', echo: true, logprobs: 2 }, 'echo'],
    [{ model: 'llama3.2', prompt: 'p', logprobs: 21 }, 'logprobs'],
    [{ model: 'llama3.2', prompt: 'p', temperature: 'hot' }, 'temperature'],
    [{ model: 'llama3.2', prompt: 'p', suffix: 3 }, 'suffix'],
    [{ prompt: 'p' }, 'model'],
  ];
  for (const [body, param] of cases) {
    await expectApiError(await completions(gw.url, body), 400, { type: 'invalid_request_error', param }, JSON.stringify(body));
  }
  await expectApiError(await completions(gw.url, '{"model":'), 400, { type: 'invalid_request_error', param: null }, 'bad JSON');
  assert.equal(generates(fake).length, 0, 'no request reached the backend');
});

test('upstream refusals: unknown model 404, suffix on a model without insert 400', needGateway, async () => {
  const { fake, gw } = env;
  await expectApiError(await completions(gw.url, { model: 'no-such-model', prompt: 'p' }), 404, { code: 'model_not_found', param: 'model' });
  const e = await expectApiError(await completions(gw.url, { model: 'llama3.2', prompt: 'p', suffix: 'x' }), 400, { type: 'invalid_request_error', param: 'suffix' });
  assert.match(e.error.message, /does not support insert/);
  fake.script({ status: 404, error: "model 'llama3.2' not found" });
  await expectApiError(await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true }), 404, { code: 'model_not_found' });
  fake.script({ status: 500, error: 'llama runner process has terminated' });
  await expectApiError(await completions(gw.url, { model: 'llama3.2', prompt: 'p' }), 502, { type: 'api_error', code: 'upstream_error' });
});

test('an error line mid-stream: an in-band error frame and no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c'], errorAfter: 1, errorMessage: 'an error was encountered while running the model: boom' });
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true });
  assert.equal(res.status, 200);
  const sse = await readSSE(res);
  assert.equal(sse.done, false, 'no [DONE] after an error');
  assert.equal(sse.errors.length, 1);
  const e = sse.chunks.at(-1).error;
  assert.equal(e.type, 'api_error');
  assert.equal(e.code, 'upstream_error');
  assert.match(e.message, /boom/);
  assert.deepEqual(sse.chunks.slice(0, -1).map((c) => c.choices[0].text), ['a']);
  // before the first line, the same failure is a whole HTTP error
  fake.script({ tokens: ['a'], errorAfter: 0 });
  await expectApiError(await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true }), 502, { code: 'upstream_error' });
});

test('the backend hangs up mid-stream: an error frame, no [DONE]', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['a', 'b', 'c'], dropAfter: 2 });
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true });
  const sse = await readSSE(res);
  assert.equal(sse.done, false);
  assert.equal(sse.errors.length, 1);
  assert.equal(sse.chunks.at(-1).error.code, 'upstream_error');
  assert.deepEqual(sse.chunks.slice(0, -1).map((c) => c.choices[0].text), ['a', 'b']);
});

test('keep-alive comments while the first token is late', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['late'], firstDelayMs: 2600 });
  const t0 = performance.now();
  const res = await completions(gw.url, { model: 'llama3.2', prompt: 'p', stream: true });
  assert.ok(performance.now() - t0 < 2000, 'SSE headers before the first token');
  const sse = await readSSE(res);
  const firstData = sse.records.findIndex((r) => r.data !== null);
  const comments = sse.records.slice(0, firstData).flatMap((r) => r.comments);
  assert.ok(comments.length >= 2, `>= 2 keep-alive comments, got ${comments.length}`);
  assert.deepEqual(assertStream(res, sse, { model: 'llama3.2' }).texts, ['late']);
});
