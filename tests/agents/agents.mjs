// What the real-agent tests share: where the agents' binaries are, an
// offline guard, and one bounded run of an agent's command line.
//
// The agents are the npm packages pinned in tests/agents/package.json
// (installed by `npm ci` there; tests/run-all.sh does it when node_modules is
// missing or older than the lock file). They are native programs that would
// talk to their vendors' servers besides the API they are pointed at
// (telemetry, update checks, plugin and feature fetches): each test sets the
// switches that stop that, and runs the agent with every proxy variable
// pointing at an offline guard on loopback, so any request that still tries
// to leave the machine is refused there and recorded, and the test fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The agent's executable from tests/agents/node_modules/.bin; throws (never skips) when absent. */
export function agentBin(name) {
  const bin = path.join(here, 'node_modules', '.bin', name);
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`npm ci\` in ${here} (tests/run-all.sh does)`);
  }
  return bin;
}

/** The pinned version of an npm package, from the lock file's installed copy. */
export function installedVersion(pkg) {
  return JSON.parse(readFileSync(path.join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

/**
 * A loopback HTTP proxy that forwards nothing: every CONNECT and every plain
 * request gets 403 and is recorded in `hits` ("CONNECT host:443", "GET url").
 * `env` holds the proxy variables (both cases, as programs read either) with
 * NO_PROXY covering loopback, so the gateway is reached directly.
 */
export async function startOfflineGuard() {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(403, { connection: 'close' });
    res.end();
  });
  server.on('connect', (req, socket) => {
    hits.push(`CONNECT ${req.url}`);
    socket.on('error', () => {});
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('clientError', (err, socket) => socket.destroy());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const env = {};
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY']) {
    env[name] = url;
    env[name.toLowerCase()] = url;
  }
  env.NO_PROXY = env.no_proxy = '127.0.0.1,localhost,::1';
  return {
    hits,
    env,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** A fresh scratch folder (real path: the agents print and compare real paths). */
export function scratchDir(prefix) {
  return realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Each agent test's surroundings, kept by the node:test hooks given (call it
 * after useGateway, so the gateway is up first): one offline guard for the
 * file; per test, fresh HOME and working folders (removed after it) and the
 * count of access-log lines for `route` before it (for assertStreamLog).
 * Returns the object whose fields the hooks keep current.
 */
export function useAgentScratch({ before, after, beforeEach, afterEach }, env, name, route) {
  const s = { guard: null, home: null, work: null, logBase: 0 };
  before(async () => { s.guard = await startOfflineGuard(); });
  afterEach(() => {
    removeDir(s.home);
    removeDir(s.work);
  });
  after(async () => { await s.guard?.close(); });
  beforeEach(() => {
    s.guard.hits.length = 0;
    s.home = scratchDir(`ogw-${name}-home-`);
    s.work = scratchDir(`ogw-${name}-work-`);
    s.logBase = env.gw?.accessLog(route).length;
  });
  return s;
}

/**
 * Run `bin args` in `cwd` with exactly `env` (plus PATH, LANG) and no
 * standard input; kill its whole process group after deadlineMs. Resolves
 * {code, signal, stdout, stderr, timedOut, ms}.
 */
export function runAgent(bin, args, { env, cwd, deadlineMs }) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(bin, args, {
      cwd,
      env: { PATH: process.env.PATH, LANG: 'C.UTF-8', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: the deadline ends the agent's children too
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const killGroup = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, deadlineMs);
    child.on('error', (e) => { stderr += `spawn error: ${e.message}\n`; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(); // anything it left behind in its group
      resolve({ code, signal, stdout, stderr, timedOut, ms: Math.round(performance.now() - started) });
    });
  });
}

/** A readable account of a run, for assertion messages. */
export function describeRun(r, guard) {
  return `exit ${r.code} signal ${r.signal}${r.timedOut ? ' (deadline passed)' : ''} after ${r.ms} ms\n`
    + `stdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-4000)}\noffline guard: ${JSON.stringify(guard?.hits ?? [])}`;
}

/** A marker no agent prints by chance: it can only have come from the fake. */
export function uniqueMarker(word) {
  return `${word}-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
}

/** The agent `name` exited 0, printed the fake's marker, and tried to reach nothing outside. */
export function assertRan(r, guard, name, marker) {
  const why = describeRun(r, guard);
  assert.equal(r.code, 0, `${name} exited non-zero\n${why}`);
  assert.ok(r.stdout.includes(marker), `the fake's answer ${marker} is not on ${name}'s stdout\n${why}`);
  assert.deepEqual(guard.hits, [], `${name} tried to reach the internet\n${why}`);
}

/**
 * The gateway's access-log lines for path since line `from`: exactly count,
 * each a 200 stream by the key `key` under the alias `model` → `upstream`.
 */
export async function assertStreamLog(gw, path, from, count, { key, model, upstream }) {
  const mine = () => gw.accessLog(path).slice(from);
  // each line is written as its request ends, which may be just after the client has read the end
  await waitFor(() => mine().length >= count, 10000, 20, `${count} access-log lines for ${path}`);
  const lines = mine();
  assert.equal(lines.length, count, JSON.stringify(lines));
  for (const l of lines) {
    assert.equal(l.status, 200);
    assert.equal(l.stream, true);
    assert.equal(l.key_name, key);
    assert.equal(l.model, model);
    assert.equal(l.upstream_model, upstream);
  }
}
