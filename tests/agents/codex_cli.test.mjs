// Codex CLI (@openai/codex, the version pinned in package.json) run end to
// end: `codex exec --skip-git-repo-check "…"` with a config.toml in a scratch
// CODEX_HOME whose model provider is the gateway's /v1 (wire_api
// "responses", env_key naming the variable that holds a gateway key), the
// model gpt-5.5 (one Codex knows, so it sends what it sends its own models:
// developer messages, function tools, the freeform apply_patch tool,
// tool_search and web_search, reasoning.effort and summary, text.verbosity,
// store false, include, prompt_cache_key, client_metadata; about 38 KB)
// chosen by the alias gpt-5* → qwen3, the fake Ollama behind it.
// Each answer is scripted in the fake with a marker no agent prints by
// chance; the test asserts it on the agent's stdout, what Ollama was sent,
// the gateway's access log, and that nothing tried to leave the machine.
import test, { before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { useGateway, needGateway } from '../integration/harness.mjs';
import {
  agentBin, assertRan, assertStreamLog, describeRun, installedVersion, runAgent, uniqueMarker, useAgentScratch,
} from './agents.mjs';

const MODEL = 'gpt-5.5';
const DEADLINE_MS = 90000;

const env = useGateway({ before, after, beforeEach }, {
  config: { aliases: { 'gpt-5*': 'qwen3' } },
  keys: [{ name: 'codex', models: ['gpt-5*'] }, { name: 'llama-only', models: ['llama3.2'] }],
});

// the offline guard, scratch HOME and working folders, access-log lines before each test
const scratch = useAgentScratch({ before, after, beforeEach, afterEach }, env, 'codex', '/v1/responses');

/**
 * The README's config.toml, plus what keeps Codex offline (no update check,
 * no analytics, no plugin or app fetches) and makes a failure show at once
 * rather than after five backed-off retries.
 */
function writeConfig() {
  writeFileSync(path.join(scratch.home, 'config.toml'), `model = "${MODEL}"
model_provider = "gateway"
check_for_update_on_startup = false

[model_providers.gateway]
name = "ollama-gateway"
base_url = "${env.gw.url}/v1"
env_key = "OG_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
apps = false
`);
}

/** `codex exec` in the scratch working folder, offline, with the gateway's key. */
async function codex(prompt, extraArgs = [], key = 'codex') {
  writeConfig();
  const r = await runAgent(agentBin('codex'), ['exec', '--skip-git-repo-check', ...extraArgs, prompt], {
    cwd: scratch.work,
    deadlineMs: DEADLINE_MS,
    env: { HOME: scratch.home, CODEX_HOME: scratch.home, OG_KEY: env.gw.secret(key), ...scratch.guard.env },
  });
  return r;
}

const assertRanHere = (r, marker) => assertRan(r, scratch.guard, 'codex', marker);
/** This test's access-log lines for /v1/responses: each a 200 stream by the key, under the alias. */
const assertResponsesLog = (count) => assertStreamLog(env.gw, '/v1/responses', scratch.logBase, count, { key: 'codex', model: MODEL, upstream: 'qwen3' });

test(`Codex CLI ${installedVersion('@openai/codex')} prints the fake's streamed answer`, { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  const marker = uniqueMarker('ZEBRA');
  env.fake.script({ thinking: ['The user wants ', 'a word.'], tokens: ['The word is ', marker, '.'] });
  const r = await codex('Say the word.');
  assertRanHere(r, marker);

  const chats = env.fake.chats();
  assert.equal(chats.length, 1, 'one request to Ollama');
  const body = chats[0].body;
  assert.equal(body.model, 'qwen3');
  assert.equal(body.stream, true);
  assert.ok(body.think, `reasoning.effort reached Ollama as think (${JSON.stringify(body.think)})`);
  assert.equal(body.messages[0].role, 'system', 'the developer message is a system message');
  assert.match(body.messages[0].content, /Codex/);
  assert.ok(body.messages.some((m) => m.role === 'user' && m.content.includes('Say the word.')));
  const tools = body.tools.map((t) => t.function.name);
  assert.ok(tools.includes('exec_command'), `exec_command in ${tools}`);
  assert.ok(!tools.includes('web_search'), 'the hosted web_search tool is left out');
  await assertResponsesLog(1);
});

test('Codex CLI: an exec_command round trip (the file read in the scratch folder, then the answer)', { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  const content = uniqueMarker('PELICAN');
  const marker = uniqueMarker('HERON');
  writeFileSync(path.join(scratch.work, 'note.txt'), `${content}\n`);
  let n = 0;
  env.fake.script(() => (n++ === 0
    ? { tokens: [], toolCalls: [{ name: 'exec_command', arguments: { cmd: 'cat note.txt' } }] }
    : { tokens: ['The note says ', marker, '.'] }));
  // exec's defaults, said out loud: never ask for approval, a read-only sandbox
  const r = await codex('What does note.txt say?', ['--sandbox', 'read-only']);
  assertRanHere(r, marker);

  const chats = env.fake.chats();
  assert.equal(chats.length, 2, 'the tool call, then the answer');
  const second = chats[1].body.messages;
  const call = second.find((m) => m.role === 'assistant' && m.tool_calls);
  assert.ok(call, 'the function call went back to Ollama');
  assert.equal(call.tool_calls[0].function.name, 'exec_command');
  assert.deepEqual(call.tool_calls[0].function.arguments, { cmd: 'cat note.txt' });
  const result = second.find((m) => m.role === 'tool');
  assert.ok(result, 'the function call output went back to Ollama');
  assert.equal(result.tool_name, 'exec_command');
  assert.ok(result.content.includes(content), `the file's content is in the output: ${result.content}`);
  await assertResponsesLog(2);
});

test('Codex CLI: an apply_patch round trip (its freeform tool: the file written in the scratch folder, then the answer)', { ...needGateway, timeout: DEADLINE_MS + 30000 }, async () => {
  const content = uniqueMarker('OSPREY');
  const marker = uniqueMarker('HERON');
  const patch = `*** Begin Patch\n*** Add File: made.txt\n+${content}\n*** End Patch\n`;
  let n = 0;
  env.fake.script(() => (n++ === 0
    ? { tokens: [], toolCalls: [{ name: 'apply_patch', arguments: { input: patch } }] }
    : { tokens: ['Wrote ', marker, '.'] }));
  const r = await codex('Create made.txt.', ['--sandbox', 'workspace-write']);
  assertRanHere(r, marker);
  assert.equal(readFileSync(path.join(scratch.work, 'made.txt'), 'utf8'), `${content}\n`, 'Codex applied the patch');

  const chats = env.fake.chats();
  assert.equal(chats.length, 2, 'the tool call, then the answer');
  const offered = chats[0].body.tools.find((t) => t.function.name === 'apply_patch');
  assert.ok(offered, 'the custom apply_patch tool was offered to Ollama');
  assert.deepEqual(offered.function.parameters.required, ['input']);
  assert.match(offered.function.parameters.properties.input.description, /Begin Patch/, 'with its grammar');
  const second = chats[1].body.messages;
  const call = second.find((m) => m.role === 'assistant' && m.tool_calls);
  assert.deepEqual(call.tool_calls[0].function, { name: 'apply_patch', arguments: { input: patch } });
  const result = second.find((m) => m.role === 'tool');
  assert.ok(result, 'the custom tool call output went back to Ollama');
  assert.equal(result.tool_name, 'apply_patch');
  assert.match(result.content, /made\.txt/, `the patch's result: ${result.content}`);
  await assertResponsesLog(2);
});

test('Codex CLI shows the gateway\'s errors: a key outside its scope (403), a backend failing mid-stream (response.failed)', { ...needGateway, timeout: 2 * DEADLINE_MS + 30000 }, async () => {
  let r = await codex('Say the word.', [], 'llama-only');
  assert.notEqual(r.code, 0, describeRun(r, scratch.guard));
  assert.match(r.stdout + r.stderr, /403 Forbidden: The API key og-[a-z0-9]+-\*\*\* may not use the model 'gpt-5\.5'/, describeRun(r, scratch.guard));
  assert.equal(env.fake.chats().length, 0, 'nothing reached Ollama');
  assert.deepEqual(scratch.guard.hits, []);

  env.fake.script({ tokens: ['Half ', 'an ', 'answer'], errorAfter: 2, errorMessage: 'the model runner crashed' });
  r = await codex('Say the word.');
  assert.notEqual(r.code, 0, describeRun(r, scratch.guard));
  assert.match(r.stdout + r.stderr, /the model runner crashed/, describeRun(r, scratch.guard));
  assert.equal(env.fake.chats().length, 1, 'no retry (stream_max_retries = 0)');
  assert.deepEqual(scratch.guard.hits, []);
});
