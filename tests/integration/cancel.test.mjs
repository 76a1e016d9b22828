// Cancellation in every phase: when the client goes away, the gateway drops
// the upstream transfer at once, so Ollama stops generating (DESIGN.md,
// "Cancellation, in every phase"). The fake records when its client (the
// gateway) closed the connection.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  useGateway, needGateway, chat, jsonOf, simpleChat, sleep, waitFor, sseRecords, get,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { limits: { keepalive_interval_s: 1, first_token_timeout_s: 30, idle_stream_timeout_s: 30 } },
});

const LIMIT_MS = 500;

async function upstreamClosedWithin(rec, tAbort, what) {
  await waitFor(() => rec.closedAt !== null, 3000, 5, `${what}: the fake saw the gateway close`).catch(() => {});
  assert.notEqual(rec.closedAt, null, `${what}: the upstream request was never closed`);
  const dt = rec.closedAt - tAbort;
  assert.ok(dt < LIMIT_MS, `${what}: upstream closed ${Math.round(dt)} ms after the client left (limit ${LIMIT_MS})`);
  assert.equal(rec.finished, false);
}

test('client aborts mid-stream → upstream closed within 500 ms', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: Array.from({ length: 400 }, (_, i) => ` t${i}`), delayMs: 25 });
  const ac = new AbortController();
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { signal: ac.signal });
  assert.equal(res.status, 200);
  let n = 0;
  let tAbort = 0;
  try {
    for await (const r of sseRecords(res.body)) {
      if (r.data && r.data !== '[DONE]') n++;
      if (n === 5) {
        tAbort = performance.now();
        ac.abort();
      }
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  assert.ok(tAbort > 0, 'got 5 chunks before aborting');
  await upstreamClosedWithin(fake.chats()[0], tAbort, 'mid-stream');
  assert.ok(fake.chats()[0].linesWritten < 200, 'generation stopped early');
});

test('client aborts before the first token (keep-alives flowing) → upstream closed within 500 ms', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['late'], firstDelayMs: 20000 });
  const ac = new AbortController();
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { signal: ac.signal });
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  // read one keep-alive so we know the stream is open, then leave
  const it = sseRecords(res.body)[Symbol.asyncIterator]();
  const first = await it.next();
  assert.deepEqual(first.value.comments, ['keep-alive']);
  const tAbort = performance.now();
  ac.abort();
  await it.return?.().catch(() => {});
  await upstreamClosedWithin(rec, tAbort, 'before first token, after keep-alive');
});

test('client hangs up while the request waits for headers (connection suspended) → upstream closed within 500 ms', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ hang: true });
  // a raw socket, so we control the exact moment of the close
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const body = JSON.stringify(simpleChat('llama3.2', { stream: false }));
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  await sleep(300);
  assert.equal(rec.closedAt, null, 'still waiting upstream');
  const tAbort = performance.now();
  sock.destroy();
  await upstreamClosedWithin(rec, tAbort, 'non-stream (raw socket close)');
});

test('client aborts a non-stream request → upstream closed within 500 ms', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: ['slow'], firstDelayMs: 20000 });
  const ac = new AbortController();
  const p = chat(gw.url, simpleChat('llama3.2'), { signal: ac.signal }).catch((e) => e);
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  await sleep(200);
  const tAbort = performance.now();
  ac.abort();
  assert.equal((await p).name, 'AbortError');
  await upstreamClosedWithin(rec, tAbort, 'non-stream');
});

test('client aborts a stream request before any byte (keep-alive interval not reached) → upstream closed', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ hang: true });
  const ac = new AbortController();
  const p = chat(gw.url, simpleChat('llama3.2', { stream: true }), { signal: ac.signal }).catch((e) => e);
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  const tAbort = performance.now();
  ac.abort();
  await p;
  await upstreamClosedWithin(rec, tAbort, 'stream, before headers');
});

test('client half-closes after sending (shutdown write side) → taken as gone: the upstream is closed, no answer', needGateway, async () => {
  // A decision (README "Cancellation and back-pressure"): at the socket a
  // half-close (FIN after the request) looks exactly like a client that left
  // (an aborted fetch sends the same FIN), and freeing the backend at once
  // matters more than answering the rare client that half-closes.
  const { fake, gw } = env;
  fake.script({ tokens: ['ok'], firstDelayMs: 2000 });
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const body = JSON.stringify(simpleChat('llama3.2'));
  let data = '';
  sock.on('data', (d) => { data += d; });
  sock.end(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  const rec = await fake.waitForRequest((r) => r.path === '/api/chat', 3000);
  const tEnd = performance.now();
  await waitFor(() => rec.closedAt !== null, 3000, 5, 'the upstream request was closed');
  assert.ok(rec.closedAt - tEnd < 1000, `upstream closed ${Math.round(rec.closedAt - tEnd)} ms after the half-close`);
  assert.equal(rec.finished, false);
  const log = await waitFor(() => gw.accessLog('/v1/chat/completions').find((l) => l.status === 499), 3000, 10, 'the access log says the client left');
  assert.equal(log.error, 'client_closed');
  await waitFor(() => sock.destroyed || sock.readableEnded, 3000, 10, 'the gateway closed the connection');
  assert.equal(data, '', 'no answer was sent');
  assert.equal((await get(`${gw.url}/healthz`)).status, 200);
});

test('many aborted streams leave nothing running upstream, gateway healthy', needGateway, async () => {
  const { fake, gw } = env;
  fake.script({ tokens: Array.from({ length: 1000 }, () => 'x'), delayMs: 20 });
  const acs = [];
  const ps = [];
  for (let i = 0; i < 20; i++) {
    const ac = new AbortController();
    acs.push(ac);
    ps.push(chat(gw.url, simpleChat('llama3.2', { stream: i % 2 === 0 }), { signal: ac.signal }).then((r) => r.body?.getReader().read()).catch(() => {}));
  }
  await waitFor(() => fake.chats().length === 20, 5000, 10, '20 upstream requests');
  await sleep(200);
  for (const ac of acs) ac.abort();
  await Promise.all(ps);
  await waitFor(() => fake.chats().every((r) => r.closedAt !== null), 2000, 10, 'every upstream request closed');
  assert.equal(fake.inflight, 0);
  fake.script(null);
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2')));
  assert.equal(r.status, 200);
});

test('abort storm: rounds of concurrent streams cut at once, gateway stays up', needGateway, async () => {
  // Hang-ups and upstream socket events land in the same epoll batch here:
  // handling one must not free a watch that a later event in the batch uses.
  const { fake, gw } = env;
  const died = (round, e) => new Error(`gateway died in round ${round} (exit ${gw.exitCode ?? gw.exitSignal}); `
    + `first error: ${e?.message}\nstderr tail:\n${gw.stderr.slice(-2500)}`);
  for (let round = 0; round < 10; round++) {
    try {
      fake.reset();
      fake.script({ tokens: Array.from({ length: 2000 }, () => 'y'), delayMs: 2 });
      const acs = [];
      const ps = [];
      for (let i = 0; i < 40; i++) {
        const ac = new AbortController();
        acs.push(ac);
        ps.push(chat(gw.url, simpleChat('llama3.2', { stream: true }), { signal: ac.signal })
          .then(async (r) => { const rd = r.body.getReader(); for (;;) { const x = await rd.read(); if (x.done) break; } })
          .catch(() => {}));
      }
      await waitFor(() => gw.exitCode !== null || gw.exitSignal !== null
        || fake.chats().filter((r) => r.linesWritten > 0).length >= 40, 10000, 10, `round ${round}: 40 streams flowing`);
      for (const ac of acs) ac.abort();
      await Promise.all(ps);
      await waitFor(() => gw.exitCode !== null || gw.exitSignal !== null
        || fake.chats().every((r) => r.closedAt !== null || r.finished), 3000, 10, `round ${round}: upstreams closed`);
    } catch (e) {
      if (gw.exitCode !== null || gw.exitSignal !== null) throw died(round, e);
      throw e;
    }
    if (gw.exitCode !== null || gw.exitSignal !== null) throw died(round, null);
  }
  fake.script(null);
  assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2')))).status, 200);
});
