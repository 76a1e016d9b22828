// Command line, configuration checking, signals (DESIGN.md "Command line",
// "Signals and lifecycle").
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import {
  needGateway, runGateway, startGateway, startFake, chat, jsonOf, simpleChat, sseRecords, readSSE, get, waitFor,
  freePort, within, TEST_ALIASES,
} from './harness.mjs';

function tmpFile(name, text) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-life-'));
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return { p, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('--version and --help exit 0', needGateway, async () => {
  const v = await runGateway(['--version']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout + v.stderr, /\d+\.\d+\.\d+/);
  const h = await runGateway(['--help']);
  assert.equal(h.code, 0, h.stderr);
  const text = h.stdout + h.stderr;
  for (const word of ['serve', 'check', '--version']) assert.match(text, new RegExp(word));
});

test('unknown command or option → exit 1', needGateway, async () => {
  const r = await runGateway(['frobnicate']);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.length > 0, 'says why on stderr');
  assert.equal(r.stdout, '');
});

test('check -c bad.json prints every problem as FILE:LINE and exits 1', needGateway, async () => {
  const f = tmpFile('bad.json', [
    '{',
    '  "listen": ["127.0.0.1:8080"],',
    '  "backends": [ { "url": "http://127.0.0.1:11434" } ],',
    '  "workerz": 2,',
    '  "limits": { "max_body_bytes": "big" },',
    '  "aliases": { "x": 5 }',
    '}',
    '',
  ].join('\n'));
  try {
    const r = await runGateway(['check', '-c', f.p]);
    assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
    for (const line of [4, 5, 6]) {
      assert.match(r.stderr, new RegExp(`bad\\.json:${line}: `), `a message for line ${line}:\n${r.stderr}`);
    }
    assert.match(r.stderr, /workerz/);
    assert.match(r.stderr, /max_body_bytes/);
  } finally {
    f.cleanup();
  }
});

test('check: JSON syntax error names the line; missing backends is an error', needGateway, async () => {
  const f = tmpFile('syntax.json', '{\n  "backends": [\n    { "url": "http://127.0.0.1:1" },\n  ]\n  "workers": 1\n}\n');
  const g = tmpFile('nobackends.json', '{\n  "workers": 1\n}\n');
  try {
    const r = await runGateway(['check', '-c', f.p]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /syntax\.json:\d+: /);
    const r2 = await runGateway(['check', '-c', g.p]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /nobackends\.json:\d*:? ?.*backends/);
  } finally {
    f.cleanup();
    g.cleanup();
  }
});

test('check: a good configuration (with comments) exits 0', needGateway, async () => {
  const f = tmpFile('good.json', `// comment
{
  "listen": ["127.0.0.1:18080"], /* block comment */
  "auth": "none",
  "backends": [ { "name": "gpu1", "url": "http://127.0.0.1:11434", "headers": { "X-A": "b" } } ],
  "aliases": ${JSON.stringify(TEST_ALIASES)},
  "limits": { "first_token_timeout_s": 5, "keepalive_interval_s": 2 },
  "log": { "level": "info", "access": "-" }
}
`);
  try {
    const r = await runGateway(['check', '-c', f.p]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    f.cleanup();
  }
});

test('serve with a bad configuration exits 1 without serving', needGateway, async () => {
  const f = tmpFile('bad.json', '{ "backends": [], "nope": 1 }\n');
  try {
    const r = await runGateway(['serve', '-c', f.p]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '', 'nothing on stdout (the access log stream)');
  } finally {
    f.cleanup();
  }
});

test('port in use → exit 2', needGateway, async () => {
  const port = await freePort();
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(port, '127.0.0.1', r));
  const f = tmpFile('g.json', JSON.stringify({
    listen: [`127.0.0.1:${port}`], auth: 'none', backends: [{ url: 'http://127.0.0.1:9' }],
  }));
  try {
    const r = await runGateway(['serve', '-c', f.p]);
    assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  } finally {
    blocker.close();
    f.cleanup();
  }
});

test('SIGTERM while a stream is in flight: the stream completes with [DONE], exit 0', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url], config: { aliases: TEST_ALIASES } });
  try {
    const tokens = Array.from({ length: 20 }, (_, i) => ` t${i}`);
    fake.script({ tokens, delayMs: 100 });
    const res = await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }));
    assert.equal(res.status, 200);
    const recs = [];
    let signalled = false;
    for await (const r of sseRecords(res.body)) {
      recs.push(r);
      if (!signalled && r.data) {
        signalled = true;
        const from = gw.stderr.length;
        gw.proc.kill('SIGTERM');
        // new connections are refused once the gateway is shutting down: it
        // says so on stderr, then stops listening
        await gw.waitForStderr(/finishing requests in flight/, 3000, from);
        // (a fresh connection: fetch's pool may hold an idle keep-alive one)
        const probe = () => new Promise((resolve) => {
          const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/healthz', agent: false, timeout: 2000 }, (r) => {
            r.resume();
            resolve(r.statusCode);
          });
          req.on('error', (e) => resolve(e.code));
          req.on('timeout', () => { req.destroy(); resolve('timeout'); });
        });
        // the listener closes right after that line (the workers stop): a
        // short bound for it, then the answer must not be 200
        const late = await waitFor(async () => { const v = await probe(); return v !== 200 ? v : null; }, 1000, 20,
          'a new connection after SIGTERM is not served').catch(() => 200);
        assert.notEqual(late, 200, 'a new connection after SIGTERM is not served');
      }
    }
    const sse = await readSSE(recs.map((r) => `${r.data !== null ? `data: ${r.data}` : ':'}\n\n`));
    assert.equal(sse.done, true, 'the in-flight stream finished with [DONE]');
    assert.equal(sse.content, tokens.join(''));
    const code = await within(gw.exited, 15000);
    assert.equal(code, 0, `exit code after SIGTERM; stderr:\n${gw.stderr}`);
  } finally {
    await gw.kill();
    await fake.close();
  }
});

test('limits.shutdown_grace_s: a stream still running when it ends is stopped, the upstream closed, exit 0', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, limits: { shutdown_grace_s: 1, idle_stream_timeout_s: 60 } },
  });
  try {
    // 100 lines 100 ms apart: 10 s, far beyond the 1 s grace period
    fake.script({ tokens: Array.from({ length: 100 }, (_, i) => ` t${i}`), delayMs: 100 });
    const res = await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }));
    assert.equal(res.status, 200);
    const reading = readSSE(res, { timeoutMs: 15000 }).catch((e) => ({ failed: e }));
    await fake.waitForRequest((r) => r.path === '/api/chat' && r.linesWritten > 0);
    const t0 = performance.now();
    gw.proc.kill('SIGTERM');
    const code = await within(gw.exited, 8000);
    const ms = performance.now() - t0;
    assert.equal(code, 0, `exit code after SIGTERM; stderr:\n${gw.stderr}`);
    assert.ok(ms >= 900 && ms < 1000 + 250 + 2000, `exited ${Math.round(ms)} ms after SIGTERM (grace 1 s)`);
    assert.match(gw.stderr, /up to 1 s/);
    const sse = await reading;
    assert.ok(!sse.failed && sse.done === false && sse.errors.length === 1, 'the stream ended with an error frame, not as if complete');
    const rec = fake.chats()[0];
    await waitFor(() => rec.closedAt !== null, 2000, 10, 'the upstream request closed');
    assert.ok(rec.linesWritten < 100, `the backend was stopped after ${rec.linesWritten} lines`);
  } finally {
    await gw.kill();
    await fake.close();
  }
});

test('end of the grace period: 20 streams in flight each get the error frame and a clean end', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, limits: { shutdown_grace_s: 1, idle_stream_timeout_s: 60 } },
  });
  try {
    fake.script({ tokens: Array.from({ length: 100 }, (_, i) => ` t${i}`), delayMs: 100 });
    const N = 20;
    const streams = [];
    for (let i = 0; i < N; i++) {
      streams.push(chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }))
        .then((res) => readSSE(res, { timeoutMs: 15000 }))
        .catch((e) => ({ failed: String(e) })));
    }
    await waitFor(() => fake.chats().length === N && fake.chats().every((r) => r.linesWritten > 0),
      5000, 10, `${N} streams under way`);
    gw.proc.kill('SIGTERM');
    const got = await Promise.all(streams);
    const code = await within(gw.exited, 8000);
    assert.equal(code, 0, `exit code after SIGTERM; stderr:\n${gw.stderr}`);
    let framed = 0;
    for (const [i, sse] of got.entries()) {
      assert.ok(!sse.failed, `stream ${i} was cut (${sse.failed})`);
      assert.equal(sse.done, false, `stream ${i}: no [DONE]`);
      assert.equal(sse.partial, false, `stream ${i}: the last record is whole`);
      assert.equal(sse.errors.length, 1, `stream ${i}: one error frame`);
      assert.equal(sse.errors[0].error.code, 'backend_unavailable');
      assert.match(sse.content, /^ t0/);
      framed++;
    }
    assert.equal(framed, N);
  } finally {
    await gw.kill();
    await fake.close();
  }
});

test('draining: a request on a kept-alive connection gets 503 with Connection: close; new connections are refused', needGateway, async () => {
  const fake = await startFake();
  // One worker: the kept-alive connection and the stream that keeps the
  // gateway draining must be on the same worker (a worker with nothing in
  // flight ends at once, closing its idle connections).
  const gw = await startGateway({ backends: [fake.url], config: { aliases: TEST_ALIASES, workers: 1 } });
  const sock = net.connect(gw.port, '127.0.0.1');
  try {
    await new Promise((r) => sock.once('connect', r));
    let data = '';
    sock.on('data', (d) => { data += d; });
    const body = JSON.stringify(simpleChat('gpt-3.5-turbo'));
    const send = () => sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // one answered request: the connection stays open (keep-alive)
    send();
    await waitFor(() => /\r\n\r\n\{[\s\S]*\}$/.test(data), 5000, 10, 'the first answer');
    assert.match(data, /^HTTP\/1\.1 200/);
    // a long stream keeps the gateway draining
    fake.script({ tokens: Array.from({ length: 50 }, (_, i) => ` t${i}`), delayMs: 100 });
    const res = await chat(gw.url, simpleChat('gpt-3.5-turbo', { stream: true }));
    const reading = readSSE(res, { timeoutMs: 15000 }).catch((e) => ({ failed: String(e) }));
    await fake.waitForRequest((r) => r.linesWritten > 0 && r.body?.stream === true);
    const before = fake.chats().length;
    gw.proc.kill('SIGTERM');
    // Every worker closes its listener when it begins draining: once a new
    // connection is refused, all of them are draining.
    const connectResult = () => new Promise((resolve) => {
      const c = net.connect(gw.port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve('connected'); });
      c.on('error', (e) => resolve(e.code));
    });
    const t0 = performance.now();
    while ((await connectResult()) !== 'ECONNREFUSED') {
      assert.ok(performance.now() - t0 < 5000, 'the listeners closed after SIGTERM');
    }
    data = '';
    send();
    await waitFor(() => /\r\n\r\n\{[\s\S]*\}$/.test(data), 5000, 10, 'the answer during the drain').catch((e) => { throw new Error(`${e.message}; got: ${JSON.stringify(data)}; stderr: ${gw.stderr.slice(-1500)}`); });
    assert.match(data, /^HTTP\/1\.1 503/);
    assert.match(data, /\r\nConnection: close\r\n/i);
    assert.match(data, /"code":"backend_unavailable"/);
    assert.equal(fake.chats().length, before, 'nothing new went upstream');
    await waitFor(() => sock.readyState === 'closed' || sock.destroyed || sock.readableEnded, 3000, 10, 'the connection closed');
    const sse = await reading;
    assert.ok(!sse.failed, `the stream in flight was cut: ${sse.failed}`);
    assert.equal(sse.done, true, 'the stream in flight finished');
    assert.equal(await within(gw.exited, 15000), 0);
  } finally {
    sock.destroy();
    await gw.kill();
    await fake.close();
  }
});

test('SIGTERM and SIGINT when idle: exit 0 promptly', needGateway, async () => {
  const fake = await startFake();
  try {
    for (const sig of ['SIGTERM', 'SIGINT']) {
      const gw = await startGateway({ backends: [fake.url] });
      const t0 = Date.now();
      gw.proc.kill(sig);
      const code = await within(gw.exited, 10000);
      assert.equal(code, 0, `${sig}: ${gw.stderr}`);
      assert.ok(Date.now() - t0 < 5000, `${sig}: exited in ${Date.now() - t0} ms`);
    }
  } finally {
    await fake.close();
  }
});

test('SIGHUP reloads the configuration; an invalid one is refused and the old stays', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url], config: { aliases: { 'alias-one': 'llama3.2' } } });
  try {
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('alias-one')))).status, 200);
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('alias-two')))).status, 404);
    const before = gw.stderr.length;
    writeFileSync(gw.configPath, JSON.stringify({ ...gw.config, aliases: { 'alias-two': 'qwen3' } }, null, 2));
    gw.proc.kill('SIGHUP');
    await gw.waitForStderr(/reload \d+ in force: configuration and keys from /, 5000, before);
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('alias-two')))).status, 200, 'alias-two after SIGHUP');
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('alias-one')))).status, 404, 'old alias gone');
    assert.equal(fake.chats().at(-1).body.model, 'qwen3', 'new alias target used');
    const from = gw.stderr.length;
    writeFileSync(gw.configPath, '{ "backends": "broken" ');
    gw.proc.kill('SIGHUP');
    await gw.waitForStderr(/reload refused: /, 3000, from);
    assert.equal(gw.exitCode, null, 'still running after a bad reload');
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('alias-two')))).status, 200, 'old configuration still in force');
    assert.match(gw.stderr, /(refus|keep|kept|stay|still|old|previous|in force|unchanged)/i, `the refused reload is logged:\n${gw.stderr}`);
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('stdout carries only access-log JSON lines', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({ backends: [fake.url] });
  try {
    await (await get(`${gw.url}/healthz`)).arrayBuffer();
    await (await chat(gw.url, simpleChat('llama3.2'))).arrayBuffer();
    await (await chat(gw.url, '{bad')).arrayBuffer();
    await waitFor(() => gw.stdoutRaw.length >= 2, 3000, 20, 'access lines');
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
  for (const l of gw.stdoutRaw) {
    let j;
    assert.doesNotThrow(() => { j = JSON.parse(l); }, `not JSON on stdout: ${l}`);
    assert.equal(typeof j.request_id, 'string', l);
  }
});
