// The key commands (issue #3): `ollama-gateway key create|list|revoke|disable|
// enable|init` — what goes to stdout and stderr, exit codes, and the keys file
// they write (DESIGN.md "Command line", "Keys file"). No daemon runs here.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { needGateway, runGateway, createKey, keyIdOf, SECRET_RE, writeFileAtomic } from './harness.mjs';
import { blake2bHex } from './blake2b.mjs';

const HASH_RE = /^blake2b:[0-9a-f]{64}$/;

/** A folder with a valid gateway.json (never served). */
function setup(extra = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-keycmd-'));
  const configPath = path.join(dir, 'gateway.json');
  writeFileSync(configPath, `${JSON.stringify({
    listen: ['127.0.0.1:18099'], backends: [{ name: 'b', url: 'http://127.0.0.1:9' }], ...extra,
  }, null, 2)}\n`);
  return {
    dir,
    configPath,
    keysPath: path.join(dir, extra.keys_file ?? 'keys.json'),
    readKeys() { return JSON.parse(readFileSync(this.keysPath, 'utf8')); },
    keysText() { return readFileSync(this.keysPath, 'utf8'); },
    mode() { return statSync(this.keysPath).mode & 0o777; },
    run(args, opts) { return runGateway([...args, '-c', configPath], opts); },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}

async function withSetup(fn, extra) {
  const t = setup(extra);
  try {
    await fn(t);
  } finally {
    t.cleanup();
  }
}

/** The folder's files, but a lock file (keys.json.lock) that may stay on purpose. */
function leftovers(dir) {
  return readdirSync(dir).filter((f) => !/\.lock$/.test(f)).sort();
}

function recordOf(t, id) {
  const r = t.readKeys().keys.find((k) => k.id === id);
  assert.ok(r, `record ${id} in ${t.keysText()}`);
  return r;
}

function assertNoSecretIn(text, secret, what) {
  assert.ok(!text.includes(secret), `${what} contains the secret`);
  assert.ok(!text.includes(secret.slice(-43)), `${what} contains the secret part`);
}

test('key create: only the secret and a newline on stdout, a note on stderr, exit 0', needGateway, async () => {
  await withSetup(async (t) => {
    const r = await t.run(['key', 'create', 'alice']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}\n$/, `stdout: ${JSON.stringify(r.stdout)}`);
    const secret = r.stdout.trimEnd();
    assert.match(secret, SECRET_RE);
    assert.ok(r.stderr.trim().length > 0, 'a note on stderr');
    assertNoSecretIn(r.stderr, secret, 'stderr of key create');
  });
});

test('key create: the keys file (mode 0600, version 1, id, name, blake2b hash, created; never the secret)', needGateway, async () => {
  await withSetup(async (t) => {
    const secret = await createKey(t.configPath, 'alice');
    assert.ok(existsSync(t.keysPath), 'keys.json next to the config');
    assert.equal(t.mode(), 0o600, `mode ${t.mode().toString(8)}`);
    const text = t.keysText();
    assertNoSecretIn(text, secret, 'the keys file');
    const doc = JSON.parse(text);
    assert.equal(doc.version, 1);
    assert.ok(Array.isArray(doc.keys));
    assert.equal(doc.keys.length, 1);
    const k = doc.keys[0];
    assert.equal(k.id, keyIdOf(secret));
    assert.match(k.id, /^[a-z0-9]{12}$/);
    assert.equal(k.name, 'alice');
    assert.match(k.hash, HASH_RE);
    assert.equal(typeof k.created, 'string');
    assert.ok(Math.abs(Date.parse(k.created) - Date.now()) < 5 * 60000, `created is now: ${k.created}`);
    for (const f of ['models', 'rpm', 'tpm', 'max_inflight', 'expires', 'revoked']) {
      assert.ok(k[f] === undefined || k[f] === null || k[f] === 0, `${f} not set without its option: ${JSON.stringify(k)}`);
    }
    assert.ok(!k.disabled && !k.admin, JSON.stringify(k));
    const allowed = new Set(['id', 'name', 'hash', 'models', 'rpm', 'tpm', 'max_inflight', 'expires', 'disabled', 'revoked', 'admin', 'created']);
    for (const f of Object.keys(k)) assert.ok(allowed.has(f), `unexpected field ${f} in a record`);
    // the hash is BLAKE2b-256 (libsodium's crypto_generichash) of the secret
    const hex = k.hash.slice('blake2b:'.length);
    const candidates = {
      'the whole secret string': blake2bHex(Buffer.from(secret)),
      'the 43-character part': blake2bHex(Buffer.from(secret.slice(-43))),
      'the 32 decoded bytes': blake2bHex(Buffer.from(secret.slice(-43), 'base64url')),
    };
    assert.ok(Object.values(candidates).includes(hex),
      `hash ${hex} is BLAKE2b-256 of none of ${JSON.stringify(candidates)}`);
  });
});

test('key create with every option records them', needGateway, async () => {
  await withSetup(async (t) => {
    const secret = await createKey(t.configPath, 'bob', {
      models: 'llama3*,gpt-3.5-turbo', rpm: 5, tpm: 1000, maxInflight: 2, expires: '2099-12-31', admin: true,
    });
    const k = recordOf(t, keyIdOf(secret));
    assert.equal(k.name, 'bob');
    assert.deepEqual(k.models, ['llama3*', 'gpt-3.5-turbo']);
    assert.equal(k.rpm, 5);
    assert.equal(k.tpm, 1000);
    assert.equal(k.max_inflight, 2);
    assert.equal(k.expires, '2099-12-31');
    assert.equal(k.admin, true);
    assert.ok(!k.disabled && !k.revoked);
    assert.equal(t.mode(), 0o600);
  });
});

test('two keys: different ids, secrets and hashes; the first record is untouched; no temporary files left', needGateway, async () => {
  await withSetup(async (t) => {
    const s1 = await createKey(t.configPath, 'one');
    const before = recordOf(t, keyIdOf(s1));
    const s2 = await createKey(t.configPath, 'two', { rpm: 3 });
    assert.notEqual(s1, s2);
    assert.notEqual(keyIdOf(s1), keyIdOf(s2));
    const doc = t.readKeys();
    assert.equal(doc.keys.length, 2);
    const [h1, h2] = [recordOf(t, keyIdOf(s1)).hash, recordOf(t, keyIdOf(s2)).hash];
    assert.match(h1, HASH_RE);
    assert.match(h2, HASH_RE);
    assert.notEqual(h1, h2);
    assert.deepEqual(recordOf(t, keyIdOf(s1)), before, 'creating a key does not change the others');
    assertNoSecretIn(t.keysText(), s1, 'the keys file');
    assertNoSecretIn(t.keysText(), s2, 'the keys file');
    assert.equal(t.mode(), 0o600);
    assert.deepEqual(leftovers(t.dir), ['gateway.json', 'keys.json'], 'no temporary files left behind');
  });
});

test('keys_file is relative to the configuration\'s folder, not the working directory', needGateway, async () => {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'ogw-keycmd-cwd-'));
  try {
    await withSetup(async (t) => {
      mkdirSync(path.join(t.dir, 'sub'));
      const r = await runGateway(['key', 'create', 'rel', '-c', t.configPath], { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(path.join(t.dir, 'sub', 'k.json')), 'the keys file is in the config\'s folder');
      assert.deepEqual(readdirSync(cwd), [], 'nothing written in the working directory');
      assert.equal(statSync(path.join(t.dir, 'sub', 'k.json')).mode & 0o777, 0o600);
      assert.equal(JSON.parse(readFileSync(path.join(t.dir, 'sub', 'k.json'), 'utf8')).keys[0].name, 'rel');
    }, { keys_file: 'sub/k.json' });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('key list: a table of ids and names with states; never a secret or a hash', needGateway, async () => {
  await withSetup(async (t) => {
    const s1 = await createKey(t.configPath, 'first-key');
    const s2 = await createKey(t.configPath, 'second-key', { models: 'llama3*', rpm: 7 });
    const s3 = await createKey(t.configPath, 'third-key');
    assert.equal((await t.run(['key', 'revoke', keyIdOf(s2)])).code, 0);
    assert.equal((await t.run(['key', 'disable', keyIdOf(s3)])).code, 0);
    const r = await t.run(['key', 'list']);
    assert.equal(r.code, 0, r.stderr);
    for (const [s, name] of [[s1, 'first-key'], [s2, 'second-key'], [s3, 'third-key']]) {
      const line = r.stdout.split('\n').find((l) => l.includes(keyIdOf(s)));
      assert.ok(line, `a line with id ${keyIdOf(s)}:\n${r.stdout}`);
      assert.ok(line.includes(name), `the name on the line: ${line}`);
      assertNoSecretIn(r.stdout + r.stderr, s, 'key list');
    }
    assert.match(r.stdout.split('\n').find((l) => l.includes(keyIdOf(s2))), /revoked/i, 'revoked state shown');
    assert.match(r.stdout.split('\n').find((l) => l.includes(keyIdOf(s3))), /disabled/i, 'disabled state shown');
    assert.match(r.stdout.split('\n').find((l) => l.includes(keyIdOf(s2))), /llama3\*/, 'scopes shown');
    for (const k of t.readKeys().keys) {
      assert.ok(!r.stdout.includes(k.hash.slice(8)) && !r.stdout.includes(k.hash.slice(8, 24)), 'no hash in key list');
    }
    assert.ok(!/blake2b/i.test(r.stdout), 'no hash in key list');
  });
});

test('key list --json: an array of records without hash', needGateway, async () => {
  await withSetup(async (t) => {
    const s1 = await createKey(t.configPath, 'j1');
    const s2 = await createKey(t.configPath, 'j2', { models: 'llama3*,gpt-3.5-turbo', rpm: 5, tpm: 900, maxInflight: 2, expires: '2099-01-02' });
    assert.equal((await t.run(['key', 'revoke', keyIdOf(s1)])).code, 0);
    const r = await t.run(['key', 'list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    let arr;
    assert.doesNotThrow(() => { arr = JSON.parse(r.stdout); }, `stdout is JSON: ${r.stdout}`);
    assert.ok(Array.isArray(arr), 'an array');
    assert.equal(arr.length, 2);
    for (const e of arr) {
      assert.equal('hash' in e, false, `no hash: ${JSON.stringify(e)}`);
      assert.equal(typeof e.id, 'string');
      assert.equal(typeof e.name, 'string');
    }
    assert.ok(!/blake2b/i.test(r.stdout));
    assertNoSecretIn(r.stdout, s1, 'key list --json');
    assertNoSecretIn(r.stdout, s2, 'key list --json');
    const e1 = arr.find((e) => e.id === keyIdOf(s1));
    const e2 = arr.find((e) => e.id === keyIdOf(s2));
    assert.equal(e1.name, 'j1');
    assert.ok(e1.revoked, `revoked shown: ${JSON.stringify(e1)}`);
    assert.equal(e2.name, 'j2');
    assert.deepEqual(e2.models, ['llama3*', 'gpt-3.5-turbo']);
    assert.equal(e2.rpm, 5);
    assert.equal(e2.tpm, 900);
    assert.equal(e2.max_inflight, 2);
    assert.equal(e2.expires, '2099-01-02');
    assert.ok(!e2.revoked);
  });
});

test('key revoke, disable, enable: the record changes, the file stays 0600, nothing on stdout', needGateway, async () => {
  await withSetup(async (t) => {
    const s = await createKey(t.configPath, 'k');
    const other = await createKey(t.configPath, 'other');
    const id = keyIdOf(s);
    const hash = recordOf(t, id).hash;
    let r = await t.run(['key', 'disable', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'nothing on stdout');
    assert.equal(recordOf(t, id).disabled, true);
    assert.equal(t.mode(), 0o600);
    r = await t.run(['key', 'enable', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(!recordOf(t, id).disabled, `enabled again: ${JSON.stringify(recordOf(t, id))}`);
    r = await t.run(['key', 'revoke', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const rec = recordOf(t, id);
    assert.ok(rec.revoked, `revoked: ${JSON.stringify(rec)}`);
    // a UTC time (the keys file refuses anything else), about now
    assert.match(String(rec.revoked), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, `revoked is a UTC time: ${JSON.stringify(rec.revoked)}`);
    assert.ok(Math.abs(Date.parse(rec.revoked) - Date.now()) < 5 * 60000, `revoked time: ${rec.revoked}`);
    assert.equal(rec.hash, hash, 'the hash is kept');
    assert.equal(t.mode(), 0o600);
    const o = recordOf(t, keyIdOf(other));
    assert.ok(!o.revoked && !o.disabled, 'the other key is untouched');
    assert.deepEqual(leftovers(t.dir), ['gateway.json', 'keys.json'], 'no temporary files left behind');
  });
});

test('revoke/disable/enable of an unknown id → exit 1, file unchanged', needGateway, async () => {
  await withSetup(async (t) => {
    await createKey(t.configPath, 'k');
    const before = t.keysText();
    for (const verb of ['revoke', 'disable', 'enable']) {
      const r = await t.run(['key', verb, 'zzzzzzzzzzzz']);
      assert.equal(r.code, 1, `key ${verb} unknown id: exit ${r.code}; stderr: ${r.stderr}`);
      assert.ok(r.stderr.length > 0, 'says why');
      assert.equal(r.stdout, '');
    }
    assert.equal(t.keysText(), before);
  });
});

test('usage errors → exit 1, nothing on stdout, a message on stderr, no keys file written', needGateway, async () => {
  await withSetup(async (t) => {
    const cases = [
      ['key'],
      ['key', 'frobnicate'],
      ['key', 'create'],
      ['key', 'create', 'x', '--rpm'],
      ['key', 'create', 'x', '--rpm', 'abc'],
      ['key', 'create', 'x', '--rpm', '-1'],
      ['key', 'create', 'x', '--tpm', '1.5'],
      ['key', 'create', 'x', '--max-inflight', 'many'],
      ['key', 'create', 'x', '--expires', 'tomorrow'],
      ['key', 'create', 'x', '--expires', '2030-13-45'],
      ['key', 'create', 'x', '--bogus'],
      ['key', 'revoke'],
      ['key', 'disable'],
      ['key', 'enable'],
    ];
    for (const args of cases) {
      const r = await t.run(args);
      assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`);
      assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
      assert.ok(r.stderr.trim().length > 0, `${args.join(' ')}: says why`);
    }
    assert.equal(existsSync(t.keysPath), false, 'no keys file after usage errors');
  });
});

test('key create with a missing or broken configuration → exit 1, nothing on stdout', needGateway, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-keycmd-'));
  try {
    const r = await runGateway(['key', 'create', 'x', '-c', path.join(dir, 'nope.json')]);
    assert.equal(r.code, 1, `missing config: ${r.stderr}`);
    assert.equal(r.stdout, '');
    writeFileSync(path.join(dir, 'bad.json'), '{ "backends": [ ');
    const b = await runGateway(['key', 'create', 'x', '-c', path.join(dir, 'bad.json')]);
    assert.equal(b.code, 1, `broken config: ${b.stderr}`);
    assert.equal(b.stdout, '');
    assert.equal(existsSync(path.join(dir, 'keys.json')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('key init: a first key with a usage banner; nothing the second time', needGateway, async () => {
  await withSetup(async (t) => {
    const r = await t.run(['key', 'init', 'starter']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}\n$/, `stdout: ${JSON.stringify(r.stdout)}`);
    const secret = r.stdout.trimEnd();
    assert.match(r.stderr, /curl/, `banner with a curl line:\n${r.stderr}`);
    assert.match(r.stderr, /(OPENAI_API_KEY|api_key|apiKey|base_url|baseURL|OPENAI_BASE_URL)/, `banner with SDK usage:\n${r.stderr}`);
    assert.equal(t.mode(), 0o600);
    const doc = t.readKeys();
    assert.equal(doc.keys.length, 1);
    assert.equal(doc.keys[0].name, 'starter');
    assert.equal(doc.keys[0].id, keyIdOf(secret));
    assertNoSecretIn(t.keysText(), secret, 'the keys file');
    const before = t.keysText();
    const again = await t.run(['key', 'init', 'starter']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '', 'nothing on stdout when a usable key exists');
    assert.equal(t.keysText(), before, 'the file is unchanged');
    const noName = await t.run(['key', 'init']);
    assert.equal(noName.code, 0, noName.stderr);
    assert.equal(noName.stdout, '');
  });
});

test('key init without a name, and when the only keys are revoked, disabled or expired: makes a key', needGateway, async () => {
  await withSetup(async (t) => {
    const r = await t.run(['key', 'init']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}\n$/);
    const first = keyIdOf(r.stdout);
    assert.ok(recordOf(t, first).name.length > 0, 'a default name');
    assert.equal((await t.run(['key', 'revoke', first])).code, 0);
    const s2 = await createKey(t.configPath, 'off');
    assert.equal((await t.run(['key', 'disable', keyIdOf(s2)])).code, 0);
    const s3 = await createKey(t.configPath, 'old', { expires: '2099-01-01' });
    // `key create` refuses a date that is over: make it expired by hand
    const d = t.readKeys();
    d.keys.find((k) => k.id === keyIdOf(s3)).expires = '2020-01-01';
    writeFileAtomic(t.keysPath, JSON.stringify(d, null, 2), 0o600);
    const r2 = await t.run(['key', 'init', 'fresh']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /^og-[a-z0-9]{12}-[A-Za-z0-9_-]{43}\n$/, `a new key when none is usable: ${JSON.stringify(r2.stdout)}\n${r2.stderr}`);
    const doc = t.readKeys();
    assert.equal(doc.keys.length, 4);
    assert.equal(recordOf(t, keyIdOf(r2.stdout)).name, 'fresh');
    assert.equal(t.mode(), 0o600);
  });
});

test('check accepts a configuration with a good keys file', needGateway, async () => {
  await withSetup(async (t) => {
    await createKey(t.configPath, 'k', { models: 'llama3*', rpm: 10 });
    const r = await t.run(['check']);
    assert.equal(r.code, 0, r.stderr);
  });
});
