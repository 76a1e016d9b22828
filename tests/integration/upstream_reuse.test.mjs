// Upstream keep-alive connections (gateway/event/curl_glue.c): curl's
// sockets stay in the worker's epoll set between requests, so a reused
// connection costs no epoll_ctl. What must still hold:
//  - requests reuse one upstream connection (the fake sees one port);
//  - when the backend closes idle connections (its keep-alive timeout), the
//    gateway neither spins on the closed socket (level-triggered EOF on a
//    socket nobody wants: CPU would go to 100 %) nor fails the next request,
//    which goes out on a new connection;
//  - the same again and again, so new sockets reuse old fd numbers.
// One worker, so every request uses the same connection cache.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { useGateway, needGateway, chat, jsonOf, readSSE, deltas, simpleChat, sleep, waitFor } from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { workers: 1, limits: { max_connections_per_address: 0 } },
});

/** The gateway's CPU time (user + system) in ms, from /proc/<pid>/stat. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
}

async function okChat(gw) {
  const r = await jsonOf(await chat(gw.url, simpleChat()));
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.choices[0].message.content.length > 0);
}

test('sequential requests reuse one upstream connection', needGateway, async () => {
  const { fake, gw } = env;
  for (let i = 0; i < 5; i++) await okChat(gw);
  const ports = new Set(fake.chats().map((r) => r.remotePort));
  assert.equal(ports.size, 1, `upstream ports used: ${[...ports].join(', ')}`);
  assert.equal(fake.openConnections, 1);
});

test('a backend closing idle connections: no spin, the next request reconnects', needGateway, async () => {
  const { fake, gw } = env;
  await okChat(gw);
  for (let round = 0; round < 5; round++) {
    const before = fake.chats().at(-1).remotePort;
    fake.closeIdle();
    await waitFor(() => fake.openConnections === 0, 5000, 10, 'the fake closed its idle connections');
    // The gateway now holds a socket at EOF that no transfer wants. Were it
    // left in the epoll set unwanted, every epoll_wait would return at once.
    // A rate over an interval: the wait is the measurement, not a hope.
    const t0 = cpuMs(gw.proc.pid);
    await sleep(600);
    const used = cpuMs(gw.proc.pid) - t0;
    assert.ok(used < 300, `round ${round}: the gateway used ${used} ms of CPU in 600 ms while idle`);
    await okChat(gw);
    const after = fake.chats().at(-1).remotePort;
    assert.notEqual(after, before, 'the request after the close went out on a new connection');
  }
  assert.equal(fake.openConnections, 1);
});

// More streams in flight than a worker keeps idle connections for (256,
// UPSTREAM_IDLE_MAX): the ones beyond take fresh connections that close when
// they end (libcurl 7.88 would otherwise walk every connection it holds at
// each start and each end). Every token must still arrive, and afterwards
// no more than 256 upstream connections stay open.
test('300 streams in flight on one worker: every token, at most 256 idle connections after', needGateway, async () => {
  const { fake, gw } = env;
  const STREAMS = 300;
  const fds = () => readdirSync(`/proc/${gw.proc.pid}/fd`).length;
  const fdsBefore = fds() - fake.openConnections;
  fake.script({ tokens: ['a', 'b', 'c', 'd'], delayMs: 150 });
  const results = await Promise.all(Array.from({ length: STREAMS }, async () => {
    const res = await chat(gw.url, simpleChat('llama3.2', { stream: true }));
    assert.equal(res.status, 200);
    return deltas(await readSSE(res)).map((d) => d.content ?? '').join('');
  }));
  assert.deepEqual(new Set(results), new Set(['abcd']), 'every stream got every token');
  assert.ok(fake.chats().length >= STREAMS);
  await waitFor(() => fake.openConnections <= 257, 10000, 20,
    `upstream connections back to the idle cap (${fake.openConnections} open)`);
  await waitFor(() => fds() - fake.openConnections <= fdsBefore + 2, 10000, 20,
    `the gateway's other fds back where they were (${fds() - fake.openConnections} vs ${fdsBefore})`);
});
