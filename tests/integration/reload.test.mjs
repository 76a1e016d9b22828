// Live reload (issue #3): the keys file is watched (no signal needed) and
// SIGHUP reloads the configuration and keys; anything invalid is refused and
// the old state stays in force (DESIGN.md "Keys file", "Signals and lifecycle").
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, runGateway, createKey, bearer, chat, get, jsonOf, readSSE, sseRecords, simpleChat,
  waitFor, writeFileAtomic, TEST_ALIASES, startGateway, startFake, keyIdOf,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { workers: 2, aliases: { ...TEST_ALIASES, 'alias-one': 'llama3.2' }, limits: { auth_failures_per_minute: 0 } },
  keys: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }],
});

/** Status of a simple chat with key secret s (and model). */
async function statusWith(s, model = 'llama3.2') {
  const r = await jsonOf(await chat(env.gw.url, simpleChat(model), { headers: bearer(s) }));
  return r.status;
}

/** How long the keys file's reload is given: "within ~1 s", with slack for a loaded machine. */
const PICKUP_MS = 2000;
/** How long a SIGHUP reload is given to be logged. */
const SIGHUP_MS = 3000;

/**
 * Every reload put in force logs "reload N in force: WHAT from PATH" (N counts
 * up from 1); a refused one logs why and that the old state stays. These wait
 * for such a line after stderr offset `from` (gw.stderr.length taken before
 * the change) and return it, so that a test knows the reload happened before
 * it looks at the effect.
 */
async function keysReloaded(gw, from, timeoutMs = PICKUP_MS) {
  return gw.waitForStderr(/reload (\d+) in force: keys from /, timeoutMs, from);
}
async function keysRefused(gw, from, timeoutMs = PICKUP_MS) {
  return gw.waitForStderr(/changed but has problems \(above\): the keys in force stay/, timeoutMs, from);
}
async function allReloaded(gw, from, timeoutMs = SIGHUP_MS) {
  return gw.waitForStderr(/reload (\d+) in force: configuration and keys from /, timeoutMs, from);
}
async function allRefused(gw, from, timeoutMs = SIGHUP_MS) {
  return gw.waitForStderr(/reload refused: /, timeoutMs, from);
}

function keyOf(name) {
  return env.gw.keys.find((k) => k.name === name);
}

test('a request in flight when its key is revoked completes normally', needGateway, async () => {
  const { gw, fake } = env;
  const c = keyOf('c');
  const tokens = Array.from({ length: 25 }, (_, i) => ` t${i}`);
  fake.script({ tokens, delayMs: 100 });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: bearer(c.secret), timeoutMs: 30000 });
  assert.equal(res.status, 200);
  const recs = [];
  let revokedAt = 0;
  let pickedUp = false;
  for await (const r of sseRecords(res.body)) {
    recs.push(r);
    if (!revokedAt && r.data) {
      revokedAt = performance.now();
      const from = gw.stderr.length;
      const rv = await runGateway(['key', 'revoke', c.id, '-c', gw.configPath]);
      assert.equal(rv.code, 0, `key revoke: ${rv.stderr}`);
      fake.script(null);
      // the revocation takes effect for new requests while this stream runs
      await keysReloaded(gw, from);
      assert.equal(await statusWith(c.secret), 401, 'revoked key refused once the keys file was reloaded');
      pickedUp = true;
    }
  }
  assert.ok(pickedUp);
  const sse = await readSSE(recs.map((r) => `${r.data !== null ? `data: ${r.data}` : ':'}\n\n`));
  assert.equal(sse.done, true, 'the in-flight stream finished with [DONE]');
  assert.equal(sse.errors.length, 0, 'no error frame');
  assert.equal(sse.content, tokens.join(''));
});

test('key revoke while running is picked up without a signal; other keys still work', needGateway, async () => {
  const { gw } = env;
  const a = keyOf('a');
  assert.equal(await statusWith(a.secret), 200);
  const t0 = performance.now();
  const from = gw.stderr.length;
  const rv = await runGateway(['key', 'revoke', a.id, '-c', gw.configPath]);
  assert.equal(rv.code, 0, rv.stderr);
  await keysReloaded(gw, from);
  assert.equal(await statusWith(a.secret), 401, 'revoked key a refused without SIGHUP');
  const dt = performance.now() - t0;
  assert.ok(dt < PICKUP_MS, `picked up after ${Math.round(dt)} ms`);
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(a.secret) }));
  assert.equal(r.json?.error?.code, 'invalid_api_key', r.text);
  assert.equal(await statusWith(keyOf('b').secret), 200, 'key b still works');
  assert.equal(gw.exitCode, null);
});

test('key create while running: the new key works within ~1 s', needGateway, async () => {
  const { gw } = env;
  const from = gw.stderr.length;
  const s = await createKey(gw.configPath, 'late');
  gw.keys.push({ name: 'late', id: s.slice(3, 15), secret: s });
  await keysReloaded(gw, from);
  assert.equal(await statusWith(s), 200, 'the new key accepted');
  assert.equal(await statusWith(keyOf('b').secret), 200, 'key b still works');
  const m = await jsonOf(await get(`${gw.url}/v1/models`, { headers: { 'x-api-key': s } }));
  assert.equal(m.status, 200);
});

test('key disable and enable while running are picked up', needGateway, async () => {
  const { gw } = env;
  const d = keyOf('d');
  let from = gw.stderr.length;
  let r = await runGateway(['key', 'disable', d.id, '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await keysReloaded(gw, from);
  assert.equal(await statusWith(d.secret), 401, 'disabled key refused');
  from = gw.stderr.length;
  r = await runGateway(['key', 'enable', d.id, '-c', gw.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await keysReloaded(gw, from);
  assert.equal(await statusWith(d.secret), 200, 'enabled key accepted again');
});

test('a valid keys file written by hand (atomically, 0600) is picked up', needGateway, async () => {
  const { gw } = env;
  const original = readFileSync(gw.keysPath, 'utf8');
  const b = keyOf('b');
  const doc = JSON.parse(original);
  doc.keys = doc.keys.filter((k) => k.id !== b.id);
  let from = gw.stderr.length;
  try {
    writeFileAtomic(gw.keysPath, `${JSON.stringify(doc, null, 2)}\n`, 0o600);
    await keysReloaded(gw, from);
    assert.equal(await statusWith(b.secret), 401, 'key b gone after the file lost it');
    assert.equal(await statusWith(keyOf('d').secret), 200, 'key d still works');
  } finally {
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, original, 0o600);
  }
  await keysReloaded(gw, from);
  assert.equal(await statusWith(b.secret), 200, 'key b back');
});

test('a broken keys file is refused: the old keys keep working and stderr says so', needGateway, async () => {
  const { gw } = env;
  const original = readFileSync(gw.keysPath, 'utf8');
  const b = keyOf('b');
  const errBefore = gw.stderr.length;
  let from;
  try {
    writeFileAtomic(gw.keysPath, '{"version": 1, "keys": [ {"id": ', 0o600);
    // the refusal's last line: everything it logs is on stderr by then
    from = (await keysRefused(gw, errBefore)).end;
    const msg = gw.stderr.slice(errBefore);
    assert.match(msg, /key/i, `the message is about the keys: ${msg}`);
    assert.match(msg, /(keep|kept|stay|still|unchanged|in force|old|previous|refus|ignor)/i, `the message says the keys stay: ${msg}`);
    assert.equal(await statusWith(b.secret), 200, 'key b still works');
    assert.equal(await statusWith(keyOf('d').secret), 200, 'key d still works');
    assert.equal(await statusWith(keyOf('a').secret), 401, 'the revoked key a stays revoked');
    // a keys file that parses but is wrong (no keys array) is refused too
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, '{"version": 1, "keys": "none"}\n', 0o600);
    await keysRefused(gw, from);
    assert.equal(await statusWith(b.secret), 200, 'key b still works after an invalid (but parseable) file');
    // an empty file
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, '', 0o600);
    await keysRefused(gw, from);
    assert.equal(await statusWith(b.secret), 200, 'key b still works after an empty file');
  } finally {
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, original, 0o600);
  }
  await keysReloaded(gw, from);
  assert.equal(await statusWith(b.secret), 200);
  assert.equal(gw.exitCode, null, 'still running');
});

test('a keys file readable by others is refused (chmod 644, or written 0644): old keys keep working', needGateway, async () => {
  const { gw } = env;
  const original = readFileSync(gw.keysPath, 'utf8');
  const b = keyOf('b');
  const doc = JSON.parse(original);
  doc.keys = doc.keys.filter((k) => k.id !== b.id);
  const errBefore = gw.stderr.length;
  let from;
  try {
    // a new file without key b, but world-readable: refused, so b keeps working
    writeFileAtomic(gw.keysPath, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
    await keysRefused(gw, errBefore);
    assert.equal(await statusWith(b.secret), 200, 'a 0644 keys file was loaded (key b removed by it)');
    assert.match(gw.stderr.slice(errBefore), /chmod 600/, `stderr says how to fix it: ${gw.stderr.slice(errBefore)}`);
    // back to the full file, then chmod 644 on it and SIGHUP
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, original, 0o600);
    await keysReloaded(gw, from);
    // (the chmod alone may also make the watch reload the keys, which is
    // refused the same way; the SIGHUP's own refusal is what is waited for)
    from = gw.stderr.length;
    chmodSync(gw.keysPath, 0o644);
    gw.proc.kill('SIGHUP');
    const refused = await allRefused(gw, from);
    assert.match(refused.line, /the keys file has problems/, refused.line);
    assert.match(gw.stderr.slice(from), /chmod 600/, `stderr says how to fix it: ${gw.stderr.slice(from)}`);
    assert.equal(gw.exitCode, null, 'still running');
    assert.equal(await statusWith(b.secret), 200, 'key b still works after chmod 644');
    assert.equal(await statusWith(keyOf('d').secret), 200, 'key d still works after chmod 644');
  } finally {
    from = gw.stderr.length;
    writeFileAtomic(gw.keysPath, original, 0o600);
  }
  await keysReloaded(gw, from);
  assert.equal(statSync(gw.keysPath).mode & 0o777, 0o600);
});

test('SIGHUP with a broken gateway.json: the old configuration stays, the refusal is logged', needGateway, async () => {
  const { gw } = env;
  const s = keyOf('b').secret;
  const original = readFileSync(gw.configPath, 'utf8');
  assert.equal(await statusWith(s, 'alias-one'), 200);
  const errBefore = gw.stderr.length;
  try {
    writeFileSync(gw.configPath, '{ "backends": "broken" ');
    gw.proc.kill('SIGHUP');
    await allRefused(gw, errBefore);
    const msg = gw.stderr.slice(errBefore);
    assert.match(msg, /(refus|keep|kept|stay|still|old|previous|in force|unchanged)/i, `the log says the reload was refused: ${msg}`);
    assert.equal(gw.exitCode, null, 'still running');
    assert.equal(await statusWith(s, 'alias-one'), 200, 'alias-one (old config) still works');
    assert.equal(await statusWith(s, 'gpt-3.5-turbo'), 200);
    // a config that parses but is invalid (unknown key) is refused too
    const from = gw.stderr.length;
    writeFileSync(gw.configPath, JSON.stringify({ ...gw.config, aliases: { 'alias-x': 'llama3.2' }, nope: 1 }));
    gw.proc.kill('SIGHUP');
    await allRefused(gw, from);
    assert.equal(gw.exitCode, null);
    assert.equal(await statusWith(s, 'alias-one'), 200, 'alias-one still works');
    assert.equal(await statusWith(s, 'alias-x'), 404, 'the invalid config\'s alias is not in force');
  } finally {
    writeFileSync(gw.configPath, original);
  }
});

test('SIGHUP with a valid new gateway.json that adds an alias: it works afterwards; keys still apply', needGateway, async () => {
  const { gw, fake } = env;
  const s = keyOf('b').secret;
  assert.equal(await statusWith(s, 'alias-two'), 404);
  const from = gw.stderr.length;
  writeFileSync(gw.configPath, `${JSON.stringify({ ...gw.config, aliases: { ...gw.config.aliases, 'alias-two': 'qwen3' } }, null, 2)}\n`);
  gw.proc.kill('SIGHUP');
  await allReloaded(gw, from);
  assert.equal(await statusWith(s, 'alias-two'), 200, 'alias-two after SIGHUP');
  assert.equal(fake.chats().at(-1).body.model, 'qwen3', 'the new alias target is used');
  assert.equal(await statusWith(s, 'alias-one'), 200, 'alias-one still there');
  // auth still on, revocations still in force
  const r = await jsonOf(await chat(gw.url, simpleChat('alias-two')));
  assert.equal(r.status, 401, 'no key after the reload: still 401');
  assert.equal(await statusWith(keyOf('a').secret), 401, 'revoked key a still refused');
  assert.equal(await statusWith(keyOf('late').secret), 200, 'key created while running still works');
});

test('SIGHUP reloads the keys too (nothing changed: everything keeps working)', needGateway, async () => {
  const { gw } = env;
  // three SIGHUPs, three reloads: each one logged with the next number, and
  // each one reads the keys file again (its summary line is logged before)
  let last = null;
  for (let i = 0; i < 3; i++) {
    const from = gw.stderr.length;
    gw.proc.kill('SIGHUP');
    const r = await allReloaded(gw, from);
    const n = Number(r.match[1]);
    if (last !== null) assert.equal(n, last + 1, `reload numbers count up: ${r.line}`);
    last = n;
    const since = gw.stderr.slice(from, r.end);
    assert.match(since, /keys\.json: \d+ keys, \d+ usable/, `SIGHUP ${i + 1} read the keys file: ${since}`);
  }
  assert.equal(gw.exitCode, null);
  assert.equal(await statusWith(keyOf('b').secret), 200);
  assert.equal(await statusWith(keyOf('a').secret), 401);
  const all = `${gw.stdoutRaw.join('\n')}\n${gw.stderr}`;
  for (const k of gw.keys) assert.ok(!all.includes(k.secret), `the secret of ${k.name} appears in the output`);
});

test('SIGHUP that raises a backend max_inflight lets the queued requests in at once; the queue carries over', needGateway, async () => {
  const fake = await startFake();
  fake.script(() => ({ tokens: ['a', 'b'], firstDelayMs: 2500 }));
  const solo = { name: 'solo', url: fake.url, max_inflight: 1, max_queue: 5 };
  const gw = await startGateway({ backends: [solo], config: { limits: { queue_timeout_s: 30 }, log: { level: 'debug' } } });
  try {
    const t0 = performance.now();
    const answers = [0, 1, 2].map(() => chat(gw.url, simpleChat('llama3.2')).then(jsonOf));
    await waitFor(() => fake.chats().length === 1, 3000, 20, 'the first request at the backend');
    // the gateway's own word that the other two wait (a debug line per queued request)
    await gw.waitForStderr(/queued for backend solo \(position 2\)/, 3000);
    assert.equal(fake.chats().length, 1, 'max_inflight 1: the other two wait in the queue');
    writeFileSync(gw.configPath, `${JSON.stringify({ ...gw.config, backends: [{ ...solo, max_inflight: 3 }] }, null, 2)}\n`);
    const from = gw.stderr.length;
    gw.proc.kill('SIGHUP');
    await allReloaded(gw, from);
    await waitFor(() => fake.chats().length === 3, 1500, 20, 'the queued requests sent once the limit is 3');
    assert.ok(performance.now() - t0 < 2400, 'they went in before the first request ended');
    for (const r of await Promise.all(answers)) assert.equal(r.status, 200, r.text);
    await waitFor(() => gw.stdoutLines.filter((l) => l.path === '/v1/chat/completions').length === 3, 2000, 20, 'three access-log lines');
    const waited = gw.stdoutLines.filter((l) => l.queue_ms > 0);
    assert.equal(waited.length, 2, `two requests waited: ${JSON.stringify(gw.stdoutLines)}`);
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('a keys-file change pending when a refused SIGHUP arrives still takes effect (a revocation is not lost)', needGateway, async () => {
  const { gw } = env;
  const made = gw.stderr.length;
  const secret = await createKey(gw.configPath, 'pending-revoke');
  await keysReloaded(gw, made);
  const k = { secret, id: keyIdOf(secret) };
  const original = readFileSync(gw.configPath, 'utf8');
  assert.equal(await statusWith(k.secret), 200);
  const from = gw.stderr.length;
  try {
    // the revocation and a broken gateway.json land within the keys file's settle time
    const rv = await runGateway(['key', 'revoke', k.id, '-c', gw.configPath]);
    assert.equal(rv.code, 0, rv.stderr);
    writeFileSync(gw.configPath, '{ "backends": "broken" ');
    gw.proc.kill('SIGHUP');
    await allRefused(gw, from);
    await keysReloaded(gw, from);
    assert.equal(await statusWith(k.secret), 401, 'the revoked key is refused');
  } finally {
    writeFileSync(gw.configPath, original);
  }
});
