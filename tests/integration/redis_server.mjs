// A real redis-server (Debian's package) for the shared-limits tests: no
// persistence, loopback only, on a free port (or a Unix socket in a temp
// dir). Every wait is bounded; stop() and kill() end only the process this
// started.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './harness.mjs';

const REDIS_BIN = process.env.REDIS_SERVER ?? 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli';

/** Is redis-server on this machine? (for a skip message) */
export async function haveRedis() {
  return new Promise((resolve) => {
    execFile(REDIS_BIN, ['--version'], (err) => resolve(!err));
  });
}

/**
 * Start redis-server. opts.port: a fixed port (to restart on the same one);
 * opts.unix: also listen on a Unix socket in a temp dir (r.socket);
 * opts.password: requirepass. Resolves {port, socket, url, proc, cli(args),
 * stop(), kill(), pause(), resume(), restart()}.
 */
export async function startRedis(opts = {}) {
  const port = opts.port ?? await freePort();
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'ogw-redis-'));
  const socket = path.join(dir, 'redis.sock');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--unixsocket', socket, '--unixsocketperm', '700', '--loglevel', 'warning'];
  if (opts.password) args.push('--requirepass', opts.password);
  const proc = spawn(REDIS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  let exited = false;
  const gone = new Promise((resolve) => proc.on('exit', () => { exited = true; resolve(); }));
  const auth = opts.password ? ['-a', opts.password, '--no-auth-warning'] : [];
  const cli = (...a) => new Promise((resolve, reject) => {
    execFile(REDIS_CLI, ['-p', String(port), ...auth, ...a], { timeout: 5000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${a.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout.trim());
    });
  });
  const r = {
    port,
    socket,
    dir,
    url: `redis://127.0.0.1:${port}/0`,
    proc,
    get output() { return out; },
    cli,
    async kill() {
      if (!exited) proc.kill('SIGKILL');
      await gone;
    },
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      await gone;
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
    pause() { proc.kill('SIGSTOP'); },
    resume() { proc.kill('SIGCONT'); },
    /** Start again on the same port and socket (empty: no persistence). */
    restart() { return startRedis({ ...opts, port, dir }); },
  };
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`redis-server exited during start:\n${out}`);
      try { return (await cli('PING')) === 'PONG'; } catch { return false; }
    }, 10000, 50, 'redis-server answers PING');
  } catch (e) {
    await r.kill();
    throw e;
  }
  return r;
}
