// A reader that does not read the access log must not stall the gateway:
// stdout is a pipe nobody reads while clients keep getting answers; then the
// reader catches up and finds only whole JSON lines, and on stderr a report
// of the lines that did not fit in the rings (log.h).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { needGateway, startFake, startGateway, waitFor } from './harness.mjs';

let gw = null;
let fake = null;
after(async () => {
  const code = gw ? await gw.stop() : 0;
  if (fake) await fake.close();
  assert.equal(code, 0, `exit on SIGTERM\nstderr:\n${gw?.stderr}`);
});

// Lines of about 400 bytes (the path is cut at 256 in the log): the pipe and
// node's buffer hold a few hundred, the rings and the writer's batch a few
// thousand more, so 4000 requests stall a gateway whose workers write their
// own lines, and make this one drop some.
const REQUESTS = 4000;
const PARALLEL = 8;
const LONG = `/stall/${'p'.repeat(300)}`;

test('a stalled access-log reader stalls no worker; lines stay whole; drops are reported', needGateway, async () => {
  fake = await startFake();
  gw = await startGateway({ holdStdout: true, backends: [fake.url], config: { workers: 2 } });
  let answered = 0;
  const statuses = new Map();
  let next = 0;
  const client = async () => {
    while (next < REQUESTS) {
      const i = next++;
      // a worker that blocks on the pipe would leave this request unanswered
      const r = await fetch(`${gw.url}${LONG}?i=${i}`, { signal: AbortSignal.timeout(10000) });
      await r.arrayBuffer();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      answered++;
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, client));
  assert.equal(answered, REQUESTS);
  assert.deepEqual([...statuses.keys()], [404]);

  // The reader catches up: every line it finds is whole, and the lines plus
  // the reported drops account for every request.
  gw.readStdout();
  const dropped = () => [...gw.stderr.matchAll(/access log: (\d+) lines dropped, the reader is too slow/g)]
    .reduce((n, m) => n + Number(m[1]), 0);
  const logged = () => gw.stdoutLines.filter((l) => typeof l.path === 'string' && l.path.startsWith('/stall/')).length;
  try {
    await waitFor(() => logged() + dropped() === REQUESTS, 20000, 20, 'every request logged or reported dropped');
  } catch (e) {
    throw new Error(`${e.message}: lines ${logged()} + dropped ${dropped()} != ${REQUESTS}\nstderr:\n${gw.stderr}`);
  }
  assert.ok(dropped() > 0, 'some lines were dropped and reported');
  assert.ok(logged() > 0);
  const bad = gw.stdoutLines.filter((l) => '__unparsable' in l);
  assert.deepEqual(bad, [], 'every line is whole JSON');
  for (const l of gw.stdoutLines.filter((x) => x.path?.startsWith('/stall/'))) {
    assert.equal(l.status, 404);
    assert.ok(Buffer.byteLength(l.path) <= 256 && l.path.endsWith('...'), l.path);
  }
});

test('a reader that never reads does not keep the gateway from exiting', needGateway, async () => {
  const fake2 = await startFake();
  const g = await startGateway({ holdStdout: true, backends: [fake2.url], config: { workers: 2 } });
  try {
    let next = 0;
    const client = async () => {
      while (next < REQUESTS) {
        next++;
        const r = await fetch(`${g.url}${LONG}`, { signal: AbortSignal.timeout(10000) });
        await r.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, client));
    // the exit waits LOG_FLUSH_MS (2 s) for the writer, then leaves it
    const code = await g.stop(10000);
    assert.equal(code, 0, `exit on SIGTERM\nstderr:\n${g.stderr}`);
    assert.match(g.stderr, /the log reader did not read: some lines were not written/);
  } finally {
    await g.kill();
    await fake2.close();
  }
});
