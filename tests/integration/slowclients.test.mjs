// Slow clients and connection discipline (README "Configuration reference":
// limits.header_timeout_s, body_timeout_s, idle_timeout_s,
// max_connections_per_address): slow heads and slow bodies are cut at their
// deadline whatever their rate, one address cannot take every connection,
// ambiguous framing is refused with the connection closed, and an oversized
// chunked upload gets its 413. Each attack ends with the gateway's open file
// descriptors back where they were.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { needGateway, startGateway, startFake, waitFor, within, simpleChat, withGateway } from './harness.mjs';

const T = (ms) => ({ ...needGateway, timeout: ms });

/** A fake Ollama and a gateway with these limits for fn; both stopped after it. */
const withLimits = (limits, fn) => withGateway({ config: { limits } }, fn);

function openFds(gw) {
  return readdirSync(`/proc/${gw.proc.pid}/fd`).length;
}

/** Wait until the gateway holds no more fds than before the attack. */
async function noLeak(gw, before, what) {
  await waitFor(() => openFds(gw) <= before, 15000, 100, `${what}: fds back to ${before} (now ${openFds(gw)})`);
}

/**
 * A raw connection: send `text` (or nothing), collect what comes back.
 * `closed` resolves once the server has ended the connection.
 */
function raw(port, text, { host = '127.0.0.1', localAddress } = {}) {
  const s = net.connect({ port, host, localAddress });
  const c = { socket: s, data: '', ended: false, error: null };
  c.closed = new Promise((resolve) => {
    s.on('close', () => { c.ended = true; resolve(); });
  });
  s.setEncoding('latin1');
  s.on('data', (d) => { c.data += d; });
  s.on('error', (e) => { c.error = e; });
  c.connected = new Promise((resolve) => s.on('connect', resolve));
  if (text) s.write(text);
  return c;
}

/** Status, headers and body of the first HTTP response in text. */
function parseResponse(text) {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `a whole response head: ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = text.slice(end + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  return { status, headers, body };
}

/**
 * n slowloris connections from 127.0.0.1, each sending its head one byte a
 * second; with `again`, each comes back as soon as it is cut. Returns
 * {cut (a count), stop()}.
 */
function slowloris(port, n, again) {
  const a = { cut: 0, stopped: false, live: new Set() };
  const one = () => {
    if (a.stopped) return;
    const s = net.connect({ port, host: '127.0.0.1' });
    const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(4000)}`;
    let i = 0;
    const timer = setInterval(() => { if (i < head.length) s.write(head[i++]); }, 1000);
    a.live.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      a.live.delete(s);
      a.cut++;
      if (again) setImmediate(one);
    });
  };
  for (let i = 0; i < n; i++) one();
  a.stop = () => {
    a.stopped = true;
    for (const s of a.live) s.destroy();
  };
  return a;
}

/** GET /healthz from 127.0.0.2 again and again until done(); their waits. */
async function normalClient(gw, done) {
  const tries = [];
  while (!done() || tries.length === 0) {
    const t0 = performance.now();
    const c = raw(gw.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { localAddress: '127.0.0.2' });
    const r = await within(c.closed, 15000);
    c.socket.destroy();
    tries.push({ ok: r !== 'timeout' && c.data.startsWith('HTTP/1.1 200'), ms: performance.now() - t0, data: c.data });
  }
  return tries;
}

function assertServed(tries, boundMs, what) {
  for (const [i, r] of tries.entries()) {
    assert.ok(r.ok, `${what}: try ${i} not answered 200 (${Math.round(r.ms)} ms): ${r.data.slice(0, 80)}`);
  }
  const worst = Math.max(...tries.map((r) => r.ms));
  console.log(`${what}: ${tries.length} normal requests, the slowest waited ${Math.round(worst)} ms`);
  assert.ok(worst < boundMs, `${what}: every normal request answered within ${boundMs} ms (worst ${Math.round(worst)})`);
}

test('1,000 slowloris heads against max_connections 200: cut at header_timeout_s, a normal client served throughout', T(120000), async () => {
  // No per-address limit: the head deadline alone has to free the slots.
  await withLimits({ max_connections: 200, header_timeout_s: 1, max_connections_per_address: 0 }, async (gw) => {
    const before = openFds(gw);
    const a = slowloris(gw.port, 1000, false);
    // The connections wait in the listen backlog for a slot, in order, and
    // each slot turns over once a header_timeout_s: 1,000 / 200 waves.
    const tries = await normalClient(gw, () => a.cut >= 1000);
    a.stop();
    assertServed(tries, 8000, 'slow heads');
    await noLeak(gw, before, 'slow heads');
  });
});

test('a sustained slowloris flood from one address: the per-address limit keeps others served', T(120000), async () => {
  await withLimits({ max_connections: 200, max_connections_per_address: 64 }, async (gw) => {
    const before = openFds(gw);
    const a = slowloris(gw.port, 1000, true);
    await waitFor(() => a.cut >= 1000, 30000, 50, 'a thousand connections over the limit refused');
    const t0 = performance.now();
    const tries = await normalClient(gw, () => performance.now() - t0 > 5000);
    a.stop();
    assertServed(tries, 3000, 'one-address flood');
    await noLeak(gw, before, 'one-address flood');
  });
});

test('slow bodies are cut at limits.body_timeout_s', T(60000), async () => {
  await withLimits({ body_timeout_s: 2 }, async (gw) => {
  const before = openFds(gw);
  const n = 600;
  const conns = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const c = raw(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
      + 'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
    c.drip = setInterval(() => c.socket.write(' '), 1000);
    c.closed.then(() => { clearInterval(c.drip); c.ms = performance.now() - t0; });
    conns.push(c);
  }
  const all = Promise.all(conns.map((c) => c.closed));
  const r = await within(all, 15000);
  const open = conns.filter((c) => !c.ended).length;
  for (const c of conns) { clearInterval(c.drip); c.socket.destroy(); }
  assert.notEqual(r, 'timeout', `${open} of ${n} slow bodies still open after 15 s`);
  const worst = Math.max(...conns.map((c) => c.ms));
  console.log(`slow bodies: ${n} cut, the last after ${Math.round(worst)} ms`);
  // 2 s deadline, checked every 250 ms, plus the time to open 600 sockets.
  assert.ok(worst < 6000, `all cut by about the deadline (last after ${Math.round(worst)} ms)`);
  assert.ok(conns.every((c) => !c.data.startsWith('HTTP/1.1 200')), 'none was answered as if complete');
  await noLeak(gw, before, 'slow bodies');
  });
});

test('a body that arrives within body_timeout_s is read, even slowly', T(30000), async () => {
  const fake = await startFake({});
  const gw = await startGateway({
    backends: [fake.url],
    config: { limits: { body_timeout_s: 3 } },
  });
  try {
    const body = JSON.stringify(simpleChat());
    const c = raw(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
      + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    // Two pauses of 500 ms: slower than one write, well within the deadline.
    for (const part of [body.slice(0, 10), body.slice(10, 20), body.slice(20)]) {
      c.socket.write(part);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await within(c.closed, 15000);
    assert.equal(parseResponse(c.data).status, 200, c.data.slice(0, 300));
  } finally {
    assert.equal(await gw.stop(), 0, gw.stderr);
    await fake.close();
  }
});

test('max_connections_per_address: the address over its limit is refused, another gets in', T(30000), async () => {
  const limit = 8;
  await withLimits({ max_connections_per_address: limit }, async (gw) => {
  const before = openFds(gw);
  const ask = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  // 127.0.0.3 is used by nothing else: the harness's own probes come from 127.0.0.1.
  const held = [];
  for (let i = 0; i < limit; i++) {
    const c = raw(gw.port, ask, { localAddress: '127.0.0.3' });
    await waitFor(() => c.data.includes('\r\n\r\n') || c.ended, 5000, 10, `connection ${i} answered`);
    assert.match(c.data, /^HTTP\/1\.1 200/, `connection ${i} within the limit is served`);
    held.push(c);
  }
  const over = raw(gw.port, ask, { localAddress: '127.0.0.3' });
  assert.notEqual(await within(over.closed, 5000), 'timeout', 'the connection over the limit is closed');
  assert.equal(over.data, '', 'and gets no answer');
  const other = raw(gw.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { localAddress: '127.0.0.2' });
  await within(other.closed, 5000);
  assert.match(other.data, /^HTTP\/1\.1 200/, 'another address still gets in');
  // A place freed is a place taken again.
  held.pop().socket.destroy();
  await waitFor(async () => {
    const again = raw(gw.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { localAddress: '127.0.0.3' });
    await within(again.closed, 5000);
    return again.data.startsWith('HTTP/1.1 200');
  }, 5000, 50, 'a freed place is usable again');
  for (const c of held) c.socket.destroy();
  await noLeak(gw, before, 'per-address limit');
  });
});

/** A free port on ::1, or null when the machine has no IPv6 loopback. */
async function freePort6() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen(0, '::1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const port6 = await freePort6();

// An IPv6 client is counted by its /64 (the unit test shows two addresses
// of one /64 sharing a count); loopback has only ::1, so here the limit is
// shown to hold for IPv6 connections end to end.
test('max_connections_per_address over IPv6 (::1): the connection over the limit is refused', {
  ...T(30000), ...(port6 ? {} : { skip: 'no IPv6 loopback (::1) on this machine' }),
}, async () => {
  const limit = 4;
  const fake = await startFake({});
  const gw = await startGateway({
    backends: [fake.url],
    config: { limits: { max_connections_per_address: limit } },
    extraListen: [`[::1]:${port6}`],
  });
  try {
    const before = openFds(gw);
    const ask = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const held = [];
    for (let i = 0; i < limit; i++) {
      const c = raw(port6, ask, { host: '::1' });
      await waitFor(() => c.data.includes('\r\n\r\n') || c.ended, 5000, 10, `connection ${i} answered`);
      assert.match(c.data, /^HTTP\/1\.1 200/, `connection ${i} within the limit is served`);
      held.push(c);
    }
    const over = raw(port6, ask, { host: '::1' });
    assert.notEqual(await within(over.closed, 5000), 'timeout', 'the connection over the limit is closed');
    assert.equal(over.data, '', 'and gets no answer');
    held.pop().socket.destroy();
    await waitFor(async () => {
      const again = raw(port6, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { host: '::1' });
      await within(again.closed, 5000);
      return again.data.startsWith('HTTP/1.1 200');
    }, 5000, 50, 'a freed place is usable again');
    for (const c of held) c.socket.destroy();
    await noLeak(gw, before, 'IPv6 per-address limit');
  } finally {
    assert.equal(await gw.stop(), 0, gw.stderr);
    await fake.close();
  }
});

const smuggled = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
const chatBody = JSON.stringify(simpleChat());
const shapes = [
  ['two different Content-Lengths', `Content-Length: ${chatBody.length}\r\nContent-Length: 5\r\n\r\n${chatBody}`],
  ['Content-Length with Transfer-Encoding',
    `Content-Length: ${chatBody.length + 10}\r\nTransfer-Encoding: chunked\r\n\r\n`
    + `${chatBody.length.toString(16)}\r\n${chatBody}\r\n0\r\n\r\n`],
  // obs-fold: libmicrohttpd glues the folded line onto the header's name, so
  // it would frame by the Content-Length while an unfolding proxy sees chunked
  ['a Transfer-Encoding folded over two lines',
    `Content-Length: ${chatBody.length}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n${chatBody}`],
  ['a Content-Length folded over two lines', `Content-Length:\r\n ${chatBody.length}\r\n\r\n${chatBody}`],
  // libmicrohttpd reads a body with any coding but chunked until the client closes
  ['a Transfer-Encoding other than chunked', `Transfer-Encoding: identity\r\n\r\n${chatBody}`],
  ['two Transfer-Encoding headers',
    `Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n`
    + `${chatBody.length.toString(16)}\r\n${chatBody}\r\n0\r\n\r\n`],
];

// libmicrohttpd 0.9.75 answers a Content-Length it cannot parse itself,
// before any callback of ours runs, with its own HTML 400 (413 for one too
// large to hold) and its response head written twice. The gateway answers
// first (event/conntrack.c): one JSON 400, Connection: close, the connection
// closed, the bytes after the head never read as a request.
for (const [what, value] of [
  ['a malformed', '1x'], ['a non-numeric', 'abc'], ['a signed', `+${chatBody.length}`], ['a negative', '-1'],
  ['an overflowing', '99999999999999999999999999'], ['an empty', ''],
]) {
  test(`${what} Content-Length: one JSON 400, connection closed, nothing more read`, T(20000), async () => {
    const fake = await startFake({});
    const gw = await startGateway({ backends: [fake.url] });
    try {
      const before = openFds(gw);
      const c = raw(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
        + `Content-Length: ${value}\r\n\r\n${chatBody}${smuggled}`);
      assert.notEqual(await within(c.closed, 5000), 'timeout', 'the connection is closed');
      const r = parseResponse(c.data);
      assert.equal(r.status, 400, c.data);
      assert.equal(c.data.match(/HTTP\/1\.1 /g).length, 1, `one response head: ${c.data}`);
      assert.equal(r.headers.connection, 'close');
      assert.match(r.headers['content-type'], /^application\/json/);
      assert.match(r.headers['x-request-id'] ?? '', /^req_/);
      const j = JSON.parse(r.body);
      assert.equal(j.error.type, 'invalid_request_error');
      assert.equal(j.error.code, 'invalid_request');
      assert.match(j.error.message, /Content-Length/);
      assert.equal(fake.requestsTo('/api/chat').length, 0, 'nothing reached the backend');
      await noLeak(gw, before, what);
    } finally {
      assert.equal(await gw.stop(), 0, gw.stderr);
      await fake.close();
    }
  });
}

test('a malformed Content-Length on a kept-alive connection, after a good request: the JSON 400 as well', T(20000), async () => {
  const fake = await startFake({});
  const gw = await startGateway({ backends: [fake.url] });
  try {
    const c = raw(gw.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => /\r\n\r\n/.test(c.data), 5000, 10, 'the first answer');
    assert.match(c.data, /^HTTP\/1\.1 200/);
    const first = c.data.length;
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n${chatBody}${smuggled}`);
    assert.notEqual(await within(c.closed, 5000), 'timeout', 'the connection is closed');
    const second = c.data.slice(c.data.indexOf('HTTP/1.1 ', first));
    const r = parseResponse(second);
    assert.equal(r.status, 400, c.data);
    assert.equal(JSON.parse(r.body).error.code, 'invalid_request');
    assert.equal(c.data.match(/HTTP\/1\.1 /g).length, 2, `two answers in all: ${c.data}`);
  } finally {
    assert.equal(await gw.stop(), 0, gw.stderr);
    await fake.close();
  }
});

for (const [what, rest] of shapes) {
  for (const [route, shape] of [['/v1/chat/completions', 'openai'], ['/api/chat', 'ollama']]) {
    test(`${what} on ${route}: 400 in the route's shape, connection closed, nothing more read`, T(20000), async () => {
      const fake = await startFake({});
      const gw = await startGateway({ backends: [fake.url] });
      try {
        const before = openFds(gw);
        const c = raw(gw.port, `POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${rest}${smuggled}`);
        assert.notEqual(await within(c.closed, 5000), 'timeout', `the gateway closes the connection: ${c.data.slice(0, 300)}`);
        const r = parseResponse(c.data);
        assert.equal(r.status, 400, c.data);
        assert.equal(r.headers.connection, 'close');
        assert.equal(c.data.match(/HTTP\/1\.1 /g).length, 1, `one response, nothing for the smuggled request: ${c.data}`);
        const j = JSON.parse(r.body);
        if (shape === 'openai') {
          assert.equal(j.error.type, 'invalid_request_error');
          assert.match(j.error.message, /framing/);
        } else {
          assert.equal(typeof j.error, 'string');
          assert.match(j.error, /framing/);
        }
        assert.equal(fake.requestsTo('/api/chat').length, 0, 'nothing reached the backend');
        await noLeak(gw, before, what);
      } finally {
        await gw.stop();
        await fake.close();
      }
    });
  }
}

test('a chunked upload over max_body_bytes gets its 413, not a reset', T(20000), async () => {
  const fake = await startFake({});
  const gw = await startGateway({ backends: [fake.url], config: { limits: { max_body_bytes: 1024 } } });
  try {
    const before = openFds(gw);
    const res = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: gw.port, path: '/v1/chat/completions', method: 'POST', agent: false,
        headers: { 'content-type': 'application/json' }, // no length: chunked
      }, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d) => { text += d; });
        r.on('end', () => resolve({ status: r.statusCode, text }));
      });
      req.on('error', reject);
      req.setTimeout(10000, () => req.destroy(new Error('no answer within 10 s')));
      for (let i = 0; i < 8; i++) req.write(`${'x'.repeat(1000)}`);
      req.end();
    });
    assert.equal(res.status, 413, res.text);
    assert.equal(JSON.parse(res.text).error.code, 'request_too_large');
    await noLeak(gw, before, 'chunked 413');
  } finally {
    assert.equal(await gw.stop(), 0, gw.stderr);
    await fake.close();
  }
});

// A client that declares a body over the limit and sends it without waiting
// for "100 Continue" (curl and most SDKs for small bodies): answered at once,
// it lost the 413 to the reset that closing over its unread bytes makes.
test('a declared body over max_body_bytes sent without Expect gets its 413, not a reset', T(20000), async () => {
  const fake = await startFake({});
  const gw = await startGateway({ backends: [fake.url], config: { limits: { max_body_bytes: 4 << 20 } } });
  try {
    const before = openFds(gw);
    const big = 'x'.repeat(8 << 20); // twice the limit: the most that is read and dropped
    const c = raw(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
      + `Content-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
    assert.notEqual(await within(c.closed, 10000), 'timeout', 'the connection ends');
    assert.equal(c.error, null, `no reset: ${c.error}`);
    const r = parseResponse(c.data);
    assert.equal(r.status, 413, c.data.slice(0, 300));
    assert.equal(JSON.parse(r.body).error.code, 'request_too_large');
    assert.equal(fake.requestsTo('/api/chat').length, 0, 'nothing reached the backend');
    await noLeak(gw, before, 'declared 413');
  } finally {
    assert.equal(await gw.stop(), 0, gw.stderr);
    await fake.close();
  }
});
