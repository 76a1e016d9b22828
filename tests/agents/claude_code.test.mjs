// Claude Code (@anthropic-ai/claude-code, the version pinned in
// package.json) run end to end: `claude -p "…" --model claude-…` against the
// real gateway with a key, the model chosen by the alias claude-* → qwen3 (a
// fake model with the thinking capability: Claude Code enables thinking on
// every request), the fake Ollama behind it; and once through
// claude-opus-* → llama3.2, a model without it, whose thinking switch the
// gateway leaves out. It streams POST
// /v1/messages?beta=true (about 87 KB: its system prompt as text blocks with
// cache_control, 12 tools, thinking, context_management, metadata).
// Each answer is scripted in the fake with a marker no agent prints by
// chance; the test asserts it on the agent's stdout, what Ollama was sent,
// the gateway's access log, and that nothing tried to leave the machine.
import test, { before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { useGateway, needGateway } from '../integration/harness.mjs';
import {
  agentBin, assertRan, assertStreamLog, describeRun, installedVersion, runAgent, uniqueMarker, useAgentScratch,
} from './agents.mjs';

const MODEL = 'claude-sonnet-4-6';
const DEADLINE_MS = 90000;

const env = useGateway({ before, after, beforeEach }, {
  // debug: the gateway's line for a thinking switch it leaves out is the proof
  // that Claude Code asked for thinking on a model that cannot think
  config: { aliases: { 'claude-*': 'qwen3', 'claude-opus-*': 'llama3.2' }, log: { level: 'debug', access: '-' } },
  keys: [{ name: 'claude-code', models: ['claude-*'] }, { name: 'llama-only', models: ['llama3.2'] }],
});

// the offline guard, scratch HOME and working folders, access-log lines before each test
const scratch = useAgentScratch({ before, after, beforeEach, afterEach }, env, 'claude', '/v1/messages');

/** `claude -p prompt` in the scratch working folder, offline, with the gateway's key. */
async function claude(prompt, key = 'claude-code', model = MODEL) {
  const r = await runAgent(agentBin('claude'), ['-p', prompt, '--model', model], {
    cwd: scratch.work,
    deadlineMs: DEADLINE_MS,
    env: {
      HOME: scratch.home,
      ANTHROPIC_BASE_URL: env.gw.url,
      ANTHROPIC_API_KEY: env.gw.secret(key),
      // no telemetry, error reports, update checks or feature fetches
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      // a failure shows at once, not after ten backed-off retries
      CLAUDE_CODE_MAX_RETRIES: '0',
      ...scratch.guard.env,
    },
  });
  return r;
}

const assertRanHere = (r, marker) => assertRan(r, scratch.guard, 'claude', marker);
/** This test's access-log lines for /v1/messages: each a 200 stream by the key, under the alias. */
const assertMessagesLog = (count) => assertStreamLog(env.gw, '/v1/messages', scratch.logBase, count, { key: 'claude-code', model: MODEL, upstream: 'qwen3' });

test(`Claude Code ${installedVersion('@anthropic-ai/claude-code')} prints the fake's streamed answer`, { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  const marker = uniqueMarker('ZEBRA');
  env.fake.script({ thinking: ['The user wants ', 'a word.'], tokens: ['The word is ', marker, '.'] });
  const r = await claude('Say the word.');
  assertRanHere(r, marker);
  assert.ok(!r.stdout.includes('The user wants'), 'thinking is not printed as the answer');

  const chats = env.fake.chats();
  assert.equal(chats.length, 1, 'one request to Ollama');
  const body = chats[0].body;
  assert.equal(body.model, 'qwen3');
  assert.equal(body.stream, true);
  assert.equal(body.think, true, 'thinking reaches a model that has it');
  assert.equal(body.messages[0].role, 'system');
  assert.match(body.messages[0].content, /Claude/, 'the system blocks, cache_control and all, became the system message');
  assert.ok(body.messages.some((m) => m.role === 'user' && m.content.includes('Say the word.')));
  const tools = body.tools.map((t) => t.function.name);
  for (const name of ['Bash', 'Edit', 'Read', 'Write']) assert.ok(tools.includes(name), `${name} in ${tools}`);
  assert.ok(chats[0].bodyBytes > 50000, `Claude Code's whole prompt reached Ollama (${chats[0].bodyBytes} bytes)`);
  await assertMessagesLog(1);
});

test('Claude Code: a Read tool call round trip (the file read in the scratch folder, then the answer)', { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  const content = uniqueMarker('PELICAN');
  const marker = uniqueMarker('HERON');
  const file = path.join(scratch.work, 'note.txt');
  writeFileSync(file, `${content}\n`);
  let n = 0;
  env.fake.script(() => (n++ === 0
    ? { thinking: ['I should ', 'read the note.'], tokens: [], toolCalls: [{ name: 'Read', arguments: { file_path: file } }] }
    : { tokens: ['The note says ', marker, '.'] }));
  const r = await claude('What does note.txt say?');
  assertRanHere(r, marker);

  const chats = env.fake.chats();
  assert.equal(chats.length, 2, 'the tool call, then the answer');
  const second = chats[1].body.messages;
  const call = second.find((m) => m.role === 'assistant' && m.tool_calls);
  assert.ok(call, 'the tool call went back to Ollama');
  assert.equal(call.tool_calls[0].function.name, 'Read');
  assert.deepEqual(call.tool_calls[0].function.arguments, { file_path: file });
  assert.equal(call.thinking, 'I should read the note.', 'the thinking block went back with it');
  const result = second.find((m) => m.role === 'tool');
  assert.ok(result, 'the tool result went back to Ollama');
  assert.equal(result.tool_name, 'Read');
  assert.ok(result.content.includes(content), `the file's content is in the tool result: ${result.content}`);
  await assertMessagesLog(2);
});

test('Claude Code and the gateway\'s errors: a key outside its scope (403) is shown; after an event: error mid-stream it asks again without streaming, and prints that whole answer', { ...needGateway, timeout: 2 * DEADLINE_MS + 30000 }, async () => {
  let r = await claude('Say the word.', 'llama-only');
  assert.notEqual(r.code, 0, describeRun(r, scratch.guard));
  assert.match(r.stdout + r.stderr, /403 The API key og-[a-z0-9]+-\*\*\* may not use the model 'claude-sonnet-4-6'/, describeRun(r, scratch.guard));
  assert.equal(env.fake.chats().length, 0, 'nothing reached Ollama');
  assert.deepEqual(scratch.guard.hits, []);

  const marker = uniqueMarker('WREN');
  env.fake.script((body) => (body.stream
    ? { tokens: ['Half ', 'an ', 'answer'], errorAfter: 2, errorMessage: 'the model runner crashed' }
    : { tokens: ['The whole answer: ', marker] }));
  r = await claude('Say the word.');
  assertRanHere(r, marker);
  assert.ok(!r.stdout.includes('Half an'), 'the broken stream is not taken for an answer');
  assert.deepEqual(env.fake.chats().map((c) => c.body.stream), [true, false], 'a streamed try, then a whole one');
});

test('Claude Code on a model that cannot think (claude-opus-* → llama3.2): its thinking switch is left out, the answer is printed', { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  // discovery has read llama3.2's capabilities from /api/show
  await env.gw.waitForStderr(/backend \S+: llama3\.2\S* cannot think/, 20000);
  const from = env.gw.stderr.length;
  const marker = uniqueMarker('OSPREY');
  env.fake.script({ tokens: ['The word is ', marker, '.'] });
  const r = await claude('Say the word.', 'claude-code', 'claude-opus-4-6');
  assertRanHere(r, marker);
  const chats = env.fake.chats();
  assert.equal(chats.length, 1, 'one request to Ollama');
  assert.equal(chats[0].body.model, 'llama3.2');
  assert.equal(chats[0].body.think, undefined, 'no think for a model without the capability (Ollama would answer 400)');
  // Claude Code did ask for thinking: the gateway says it left the switch out
  await env.gw.waitForStderr(/request \S+: llama3\.2\S* on backend \S+ cannot think/, 5000, from);
});
