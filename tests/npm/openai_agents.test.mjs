// The OpenAI Agents SDK (@openai/agents) running one agent with one
// function tool against the real gateway and the fake Ollama, over the
// Responses API (its default), tracing off (it would call OpenAI).
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } from '@openai/agents';
import { z } from 'zod';
import { useGateway, needGateway, waitFor } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach });

function useGatewayClient() {
  setTracingDisabled(true);
  setOpenAIAPI('responses');
  setDefaultOpenAIClient(new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 20000 }));
}

function agent(calls) {
  const getWeather = tool({
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => { calls.push(city); return `sunny in ${city}`; },
  });
  return new Agent({ name: 'Weather', instructions: 'Answer with the tool.', model: 'gpt-4o-mini', tools: [getWeather] });
}

function scriptToolThenAnswer() {
  let n = 0;
  env.fake.script(() => (n++ === 0
    ? { tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }
    : { tokens: ['It is ', 'sunny in Oslo.'] }));
}

test('run(): one agent, one function tool, the final output from the fake', needGateway, async () => {
  useGatewayClient();
  scriptToolThenAnswer();
  const calls = [];
  const result = await run(agent(calls), 'Weather in Oslo?');
  assert.deepEqual(calls, ['Oslo']);
  assert.equal(result.finalOutput, 'It is sunny in Oslo.');
  const chats = env.fake.chats();
  assert.equal(chats.length, 2);
  assert.equal(chats[0].body.model, 'qwen3', 'the alias gpt-4o* was resolved');
  assert.equal(chats[0].body.messages[0].role, 'system');
  assert.equal(chats[0].body.tools[0].function.name, 'get_weather');
  const tool_ = chats[1].body.messages.find((m) => m.role === 'tool');
  assert.equal(tool_.tool_name, 'get_weather');
  assert.equal(tool_.content, 'sunny in Oslo');
  await waitFor(() => env.gw.accessLog('/v1/responses').length >= 2, 5000, 20, 'two /v1/responses calls');
});

test('run() streamed: the same answer through the event stream', needGateway, async () => {
  useGatewayClient();
  scriptToolThenAnswer();
  const calls = [];
  const result = await run(agent(calls), 'Weather in Oslo?', { stream: true });
  let text = '';
  for await (const chunk of result.toTextStream()) text += chunk;
  await result.completed;
  assert.deepEqual(calls, ['Oslo']);
  assert.equal(text, 'It is sunny in Oslo.');
  assert.equal(result.finalOutput, 'It is sunny in Oslo.');
});
