// The official `ollama` JS client pointed at the gateway with an API key
// (README "Ollama's native API"): it passes the key as
// `headers: { Authorization: 'Bearer …' }`. Chat streamed, generate, embed,
// list, show, ps, version; an ordinary key refused on pull and delete with
// the client's ResponseError, an admin key allowed.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { useGateway, needGateway, waitFor } from '../integration/harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  keys: [{ name: 'user' }, { name: 'root', admin: true }],
});

function client(name) {
  return new Ollama({ host: env.gw.url, headers: { Authorization: `Bearer ${env.gw.secret(name)}` } });
}

test('chat streamed through an alias, with the key; the backend never sees the key', needGateway, async () => {
  env.fake.script({ tokens: ['Hi', ' there'] });
  const parts = [];
  let last;
  for await (const part of await client('user').chat({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hello' }], stream: true })) {
    parts.push(part.message.content);
    assert.equal(part.model, 'gpt-3.5-turbo');
    last = part;
  }
  assert.equal(parts.join(''), 'Hi there');
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'stop');
  const rec = env.fake.chats()[0];
  assert.equal(rec.body.model, 'llama3.2');
  assert.equal(rec.headers.authorization, undefined);
});

test('generate, embed, list, show, ps and version', needGateway, async () => {
  const c = client('user');
  env.fake.script({ tokens: ['four'] });
  const g = await c.generate({ model: 'llama3.2', prompt: '2+2?' });
  assert.equal(g.response, 'four');
  assert.equal(g.done, true);
  const e = await c.embed({ model: 'text-embedding-3-small', input: ['a', 'b'] });
  assert.equal(e.model, 'text-embedding-3-small');
  assert.equal(e.embeddings.length, 2);
  const list = await c.list();
  const names = list.models.map((m) => m.name);
  assert.ok(names.includes('gpt-3.5-turbo') && names.includes('llama3.2:latest'), names.join(','));
  const show = await c.show({ model: 'gpt-3.5-turbo' });
  assert.ok(show.capabilities.includes('completion'));
  const ps = await c.ps();
  assert.ok(Array.isArray(ps.models));
  const v = await c.version();
  assert.equal(v.version, '0.33.0');
});

test('an ordinary key may not pull or delete (ResponseError 403); an admin key may', needGateway, async () => {
  const user = client('user');
  await assert.rejects(user.pull({ model: 'tinyllama' }), (err) => {
    assert.equal(err.name, 'ResponseError');
    assert.equal(err.status_code, 403);
    assert.match(err.error, /admin key/);
    return true;
  });
  await assert.rejects(user.delete({ model: 'llama3.2' }), (err) => err.status_code === 403);
  assert.equal(env.fake.requestsTo('/api/pull').length + env.fake.requestsTo('/api/delete').length, 0);

  const root = client('root');
  const statuses = [];
  for await (const p of await root.pull({ model: 'tinyllama', stream: true })) statuses.push(p.status);
  assert.equal(statuses[0], 'pulling manifest');
  assert.equal(statuses.at(-1), 'success');
  await waitFor(async () => (await root.list()).models.some((m) => m.name.startsWith('tinyllama')), 5000, 50, 'pulled model listed');
  const del = await root.delete({ model: 'tinyllama' });
  assert.equal(del.status, 'success');
  await assert.rejects(root.delete({ model: 'tinyllama' }), (err) => err.status_code === 404);
});
