// Client addresses behind proxies (DESIGN.md "Client addresses, proxies and
// the brute-force guard"; README "Client addresses and proxies"):
// trusted_proxies and X-Forwarded-For (nginx real_ip_recursive), the access
// log's client field, the brute-force guard per forwarded address,
// limits.auth_guard_exempt, forged headers from untrusted peers, IPv6, and
// the per-address connection limit for a proxy's connections.
//
// Loopback is 127.0.0.0/8: a test connects from 127.0.0.2 as "the proxy"
// (localAddress), from 127.0.0.3 as a client that is not one, and from
// 127.0.0.1 as a local tool. Forwarded addresses are documentation ranges
// (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32) written in the header.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  needGateway, startGateway, startFake, freePort, waitFor, simpleChat, httpRequest, TEST_ALIASES,
} from './harness.mjs';

let seq = 0;

/**
 * One request on its own connection from `from` (a local address) to
 * host:port: resolves {status, headers, json, text, id} (id: the
 * x-request-id sent, to find the access-log line).
 */
function send({ port, host = '127.0.0.1', from, path = '/v1/chat/completions', method = 'POST', headers = {}, body }) {
  const id = `ca-${process.pid}-${++seq}`;
  return httpRequest(`http://${host.includes(':') ? `[${host}]` : host}:${port}`, path, {
    method,
    localAddress: from,
    headers: { 'x-request-id': id, ...headers },
    body: method === 'POST' ? (body ?? simpleChat('llama3.2')) : undefined,
  }).then((r) => ({ ...r, id }));
}

const auth = (secret) => ({ authorization: `Bearer ${secret}` });
const badKey = (gw, ch = 'A') => `og-${gw.keys[0].id}-${ch.repeat(43)}`;

/** The access-log line of a request (written when it ends). */
async function logLine(gw, id) {
  let line;
  await waitFor(() => (line = gw.stdoutLines.find((l) => l.request_id === id)), 5000, 20, `access-log line of ${id}`);
  return line;
}

async function clientOf(gw, r) {
  return (await logLine(gw, r.id)).client;
}

async function expectStatus(p, status, what) {
  const r = await p;
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  return r;
}

async function stopAll(gw, fake) {
  const code = await gw.stop();
  await fake.close();
  assert.equal(code, 0, `the gateway exits cleanly on SIGTERM\n${gw.stderr}`);
}

test('behind a trusted proxy: one forwarded address is blocked, others are served, loopback never', needGateway, async () => {
  const fake = await startFake();
  const port6 = await freePort();
  const gw = await startGateway({
    backends: [fake.url],
    extraListen: [`[::1]:${port6}`],
    // the default auth_guard_exempt (127.0.0.0/8, ::1) stays in force
    config: { aliases: TEST_ALIASES, trusted_proxies: ['127.0.0.2/32', '::1'], limits: { auth_failures_per_minute: 3 } },
    keys: [{ name: 'good' }],
  });
  try {
    const good = gw.secret('good');
    const proxy = (xff, headers = {}) => ({ port: gw.port, from: '127.0.0.2', headers: { 'x-forwarded-for': xff, ...headers } });

    // 203.0.113.9 fails three times through the proxy and is blocked ...
    for (let i = 1; i <= 3; i++) {
      const r = await expectStatus(send(proxy('203.0.113.9', auth(badKey(gw)))), 401, `bad key ${i} from 203.0.113.9`);
      assert.equal(await clientOf(gw, r), '203.0.113.9', 'the access log names the forwarded client');
    }
    const blocked = await expectStatus(send(proxy('203.0.113.9', auth(good))), 429, '203.0.113.9 with a valid key, after 3 failures');
    const ra = Number(blocked.headers['retry-after']);
    assert.ok(ra >= 50 && ra <= 60, `blocked for about a minute: Retry-After ${ra}`);
    assert.match(gw.stderr, /authentication failed too often from 203\.0\.113\.9 /, 'the warning names the forwarded client');
    // ... while another client behind the same proxy is served, and so is
    // the proxy's own address (it is nobody's client now)
    const other = await expectStatus(send(proxy('198.51.100.20', auth(good))), 200, '198.51.100.20 with a valid key');
    assert.equal(await clientOf(gw, other), '198.51.100.20');
    await expectStatus(send({ port: gw.port, from: '127.0.0.2', headers: auth(good) }), 200, 'the proxy itself, no header');
    // the blocked client stays blocked whatever the proxy's port or format
    await expectStatus(send(proxy('203.0.113.9:61000', auth(good))), 429, 'the blocked client written with a port');

    // a local tool on loopback (127.0.0.1, not a trusted proxy) is exempt by
    // default: it is never blocked, however often it fails
    for (let i = 1; i <= 6; i++) {
      await expectStatus(send({ port: gw.port, from: '127.0.0.1', headers: auth(badKey(gw, 'B')) }), 401, `loopback bad key ${i}`);
    }
    const local = await expectStatus(send({ port: gw.port, from: '127.0.0.1', headers: auth(good) }), 200, 'loopback after 6 failures');
    assert.equal(await clientOf(gw, local), '127.0.0.1');
    // and an untrusted peer cannot borrow a blocked address, nor escape its own
    const forged = await expectStatus(send({ port: gw.port, from: '127.0.0.1', headers: { ...auth(good), 'x-forwarded-for': '203.0.113.9' } }),
      200, 'a forged X-Forwarded-For naming the blocked client, from an untrusted peer');
    assert.equal(await clientOf(gw, forged), '127.0.0.1', 'the forged header is not read');

    // IPv6: the proxy at ::1, clients counted by /64
    const v6 = (xff, headers) => ({ port: port6, host: '::1', from: '::1', headers: { 'x-forwarded-for': xff, ...headers } });
    for (let i = 1; i <= 3; i++) {
      const r = await expectStatus(send(v6('2001:db8::7', auth(badKey(gw)))), 401, `IPv6 bad key ${i}`);
      assert.equal(await clientOf(gw, r), '2001:db8::7');
    }
    await expectStatus(send(v6('2001:db8::7', auth(good))), 429, '2001:db8::7 blocked');
    await expectStatus(send(v6('[2001:db8::8]:443', auth(good))), 429, 'the same /64, bracketed with a port');
    const v6ok = await expectStatus(send(v6('2001:db8:0:1::7', auth(good))), 200, 'another /64');
    assert.equal(await clientOf(gw, v6ok), '2001:db8:0:1::7');
    const mapped = await expectStatus(send(v6('::ffff:198.51.100.21', auth(good))), 200, 'an IPv4-mapped entry');
    assert.equal(await clientOf(gw, mapped), '198.51.100.21', 'logged as its IPv4 address');
    // the IPv6 proxy's own request with no header: ::1 itself
    const self6 = await expectStatus(send({ port: port6, host: '::1', from: '::1', headers: auth(good) }), 200, '::1 without a header');
    assert.equal(await clientOf(gw, self6), '::1');

    assert.equal(fake.chats().length, 7, 'only the served requests reached the backend');
    for (const rec of fake.chats()) {
      assert.equal(rec.headers['x-forwarded-for'], undefined, 'X-Forwarded-For is not passed to the backend');
    }
  } finally {
    await stopAll(gw, fake);
  }
});

test('a forged X-Forwarded-For from an untrusted peer changes nothing', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    // 127.0.0.3 is neither trusted nor exempt
    config: { aliases: TEST_ALIASES, trusted_proxies: ['127.0.0.2/32'], limits: { auth_failures_per_minute: 3, auth_guard_exempt: ['127.0.0.1/32'] } },
    keys: [{ name: 'good' }],
  });
  try {
    const good = gw.secret('good');
    // three failures, each claiming another address: were the header read,
    // no address would reach the limit
    for (let i = 1; i <= 3; i++) {
      const r = await expectStatus(send({ port: gw.port, from: '127.0.0.3', headers: { ...auth(badKey(gw)), 'x-forwarded-for': `198.51.100.${i}` } }),
        401, `bad key ${i}`);
      assert.equal(await clientOf(gw, r), '127.0.0.3', 'the log names the TCP peer');
    }
    await expectStatus(send({ port: gw.port, from: '127.0.0.3', headers: { ...auth(good), 'x-forwarded-for': '198.51.100.99' } }),
      429, 'the peer is blocked whatever the header says');
    // the trusted proxy forwarding the same peer's address: blocked too, since
    // that is the client the guard counted
    await expectStatus(send({ port: gw.port, from: '127.0.0.2', headers: { ...auth(good), 'x-forwarded-for': '127.0.0.3' } }),
      429, '127.0.0.3 forwarded by the trusted proxy');
    // the proxy claiming to forward for others still serves them
    await expectStatus(send({ port: gw.port, from: '127.0.0.2', headers: { ...auth(good), 'x-forwarded-for': '198.51.100.1' } }),
      200, 'another client behind the trusted proxy');
    assert.equal(fake.chats().length, 1);
  } finally {
    await stopAll(gw, fake);
  }
});

test('the recursive walk: several trusted hops, several headers, all trusted, malformed entries', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, trusted_proxies: ['127.0.0.2/32', '10.0.0.0/8', 'fd00::/8'] },
  });
  try {
    const cases = [
      // client -> 10.1.1.1 -> 10.2.2.2 -> 127.0.0.2 -> us; left of the client, its own forgery
      ['1.2.3.4, 203.0.113.50, 10.1.1.1, 10.2.2.2', '203.0.113.50'],
      // two headers are one list, in order
      [['203.0.113.60, 10.1.1.1', '10.2.2.2'], '203.0.113.60'],
      [['198.51.100.1', '203.0.113.61, 10.1.1.1'], '203.0.113.61'],
      // an untrusted hop ends the walk there
      ['203.0.113.62, 198.51.100.2, 10.1.1.1', '198.51.100.2'],
      // every entry trusted: the left-most
      ['10.9.9.9, 10.1.1.1', '10.9.9.9'],
      ['fd00::5, 10.1.1.1', 'fd00::5'],
      // IPv6 clients through IPv6 hops, ports, brackets
      ['2001:db8::1, [fd00::2]:8080, 10.1.1.1:4711', '2001:db8::1'],
      // a malformed entry stops the walk at the hop that handed it over
      ['203.0.113.63, unknown', '127.0.0.2'],
      ['203.0.113.64, _hidden, 10.1.1.1', '10.1.1.1'],
      ['203.0.113.65 10.1.1.1', '127.0.0.2'],
      // an empty header, empty elements
      ['', '127.0.0.2'],
      [' , 203.0.113.66 ,, ', '203.0.113.66'],
    ];
    for (const [xff, want] of cases) {
      const r = await expectStatus(send({ port: gw.port, from: '127.0.0.2', path: '/v1/models', method: 'GET', headers: { 'x-forwarded-for': xff } }),
        200, `X-Forwarded-For ${JSON.stringify(xff)}`);
      assert.equal(await clientOf(gw, r), want, `X-Forwarded-For ${JSON.stringify(xff)}`);
    }
    // not a trusted peer: none of it is read
    const r = await send({ port: gw.port, from: '127.0.0.1', path: '/v1/models', method: 'GET', headers: { 'x-forwarded-for': '203.0.113.50, 10.1.1.1' } });
    assert.equal(await clientOf(gw, r), '127.0.0.1');
    // the log line has the client right after the request id, and every field
    const line = await logLine(gw, r.id);
    assert.deepEqual(Object.keys(line).slice(0, 3), ['ts', 'request_id', 'client']);
  } finally {
    await stopAll(gw, fake);
  }
});

test('trusted_proxies and auth_guard_exempt reload on SIGHUP', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, limits: { auth_failures_per_minute: 2 } },
    keys: [{ name: 'good' }],
  });
  try {
    const good = gw.secret('good');
    const viaProxy = (headers) => send({ port: gw.port, from: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.70', ...headers } });
    let r = await expectStatus(viaProxy(auth(good)), 200, 'before the reload');
    assert.equal(await clientOf(gw, r), '127.0.0.2', 'no trusted proxies yet: the peer');
    const { writeFileSync, readFileSync } = await import('node:fs');
    const cfg = JSON.parse(readFileSync(gw.configPath, 'utf8'));
    cfg.trusted_proxies = ['127.0.0.2'];
    cfg.limits.auth_guard_exempt = [];
    writeFileSync(gw.configPath, JSON.stringify(cfg));
    const from = gw.stderr.length;
    gw.proc.kill('SIGHUP');
    await gw.waitForStderr(/reload \d+ in force: configuration/, 10000, from);
    r = await expectStatus(viaProxy(auth(good)), 200, 'after the reload');
    assert.equal(await clientOf(gw, r), '203.0.113.70', 'the forwarded client now');
    // loopback is no longer exempt: 127.0.0.1 is blocked after 2 failures
    for (let i = 0; i < 2; i++) await expectStatus(send({ port: gw.port, from: '127.0.0.1', headers: auth(badKey(gw)) }), 401, `loopback failure ${i + 1}`);
    await expectStatus(send({ port: gw.port, from: '127.0.0.1', headers: auth(good) }), 429, 'loopback blocked once not exempt');
    // a bad block is refused with the file's line, and what was in force stays
    writeFileSync(gw.configPath, JSON.stringify({ ...cfg, trusted_proxies: ['127.0.0.2/40'] }, null, 1));
    const from2 = gw.stderr.length;
    gw.proc.kill('SIGHUP');
    await gw.waitForStderr(/gateway\.json:\d+: trusted_proxies\[0\]: "127\.0\.0\.2\/40": the prefix length/, 10000, from2);
    r = await expectStatus(viaProxy(auth(good)), 200, 'after a refused reload');
    assert.equal(await clientOf(gw, r), '203.0.113.70', 'the trusted proxies in force stay');
  } finally {
    await stopAll(gw, fake);
  }
});

/** A raw connection from `from`: resolves `ok` once a 200 came back, `closed` when closed first. */
function rawHealth(port, from) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let got = '';
    const done = (v) => resolve({ socket: s, result: v });
    s.on('data', (d) => {
      got += d;
      if (/^HTTP\/1\.1 200/.test(got) && got.includes('\r\n\r\n')) done('ok');
    });
    s.on('close', () => done('closed'));
    s.on('error', () => done('closed'));
    s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
  });
}

test('a trusted proxy is not held to max_connections_per_address; other peers are', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { trusted_proxies: ['127.0.0.2/32'], limits: { max_connections_per_address: 2 } },
  });
  const open = [];
  try {
    // five connections at once from the proxy, all kept open: all served
    for (let i = 0; i < 5; i++) {
      const c = await rawHealth(gw.port, '127.0.0.2');
      open.push(c.socket);
      assert.equal(c.result, 'ok', `proxy connection ${i + 1} of 5`);
    }
    // another peer gets two, and its third is closed unanswered
    for (let i = 0; i < 2; i++) {
      const c = await rawHealth(gw.port, '127.0.0.3');
      open.push(c.socket);
      assert.equal(c.result, 'ok', `127.0.0.3 connection ${i + 1} of 2`);
    }
    const third = await rawHealth(gw.port, '127.0.0.3');
    open.push(third.socket);
    assert.equal(third.result, 'closed', 'the third connection from 127.0.0.3 is refused');
  } finally {
    for (const s of open) s.destroy();
    await stopAll(gw, fake);
  }
});
