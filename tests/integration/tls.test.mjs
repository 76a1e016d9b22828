// TLS (issue 11 item 4): certificates made during the test with the openssl
// CLI (a CA, two server certificates for 127.0.0.1 and localhost), one gateway
// with a plain and a TLS listener side by side, curl and the openai SDK over
// HTTPS, a certificate reloaded while a stream runs, a bad new certificate
// refused, a key of another certificate refused by `check` and `serve`,
// plain HTTP and TLS 1.1 to the TLS port refused.
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  needGateway, startGateway, startFake, freePort, runGateway, within, simpleChat, writeFileAtomic,
  waitFor, GATEWAY_BIN,
} from './harness.mjs';

const run = promisify(execFile);
const TESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ------------------------------------------------------------- certificates

const pki = { dir: null };

async function openssl(...args) {
  await run('openssl', args, { cwd: pki.dir, timeout: 30000 });
}

/** A P-256 key and a certificate for 127.0.0.1 and localhost issued by the CA. */
async function serverCert(name, cn) {
  await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(path.join(pki.dir, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-sha256', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
  return {
    cert: readFileSync(path.join(pki.dir, `${name}.pem`), 'utf8'),
    key: readFileSync(path.join(pki.dir, `${name}.key`), 'utf8'),
    fingerprint: new X509Certificate(readFileSync(path.join(pki.dir, `${name}.pem`))).fingerprint256,
  };
}

// ----------------------------------------------------------------- clients

/** The certificate a new TLS connection to port is served, and its protocol. */
function peerCertificate(port, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts }, () => {
      const r = { fingerprint: s.getPeerX509Certificate().fingerprint256, protocol: s.getProtocol() };
      s.end();
      resolve(r);
    });
    s.setTimeout(10000, () => s.destroy(new Error('TLS handshake: no answer within 10 s')));
    s.on('error', reject);
  });
}

/** A request over HTTPS on a connection of its own; resolves {status, text, fingerprint, res}. */
function httpsRequest(port, pathname, { method = 'GET', body, onData, timeoutMs = 20000 } = {}) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: pathname, method, agent: false, ca: pki.ca,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
    }, (res) => {
      const fingerprint = res.socket.getPeerX509Certificate().fingerprint256;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; onData?.(text); });
      res.on('end', () => { clearTimeout(t); resolve({ status: res.statusCode, text, fingerprint }); });
      res.on('error', reject);
    });
    const t = setTimeout(() => req.destroy(new Error(`${pathname}: no whole answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(t); reject(e); });
    if (data) req.write(data);
    req.end();
  });
}

/** The contents of an SSE chat stream: {content, done}. */
function sseContent(text) {
  let content = '';
  let done = false;
  for (const ev of text.split('\n\n')) {
    const m = ev.match(/^data: (.*)$/m);
    if (!m) continue;
    if (m[1] === '[DONE]') { done = true; continue; }
    for (const c of JSON.parse(m[1]).choices ?? []) content += c.delta?.content ?? '';
  }
  return { content, done };
}

async function curl(args) {
  try {
    const r = await run('curl', ['-sS', '--max-time', '20', ...args], { timeout: 30000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Run the openai SDK in a child node process that trusts the test CA
 * (NODE_EXTRA_CA_CERTS, as an operator's client would); prints JSON. */
function openaiChild(baseURL, caFile) {
  const script = `
    import OpenAI from 'openai';
    const client = new OpenAI({ baseURL: ${JSON.stringify(baseURL)}, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
    const out = {};
    try {
      const c = await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] });
      out.whole = c.choices[0].message.content;
      const s = await client.chat.completions.create({ model: 'llama3.2', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      out.streamed = '';
      for await (const ch of s) out.streamed += ch.choices[0]?.delta?.content ?? '';
    } catch (e) {
      const why = [];
      for (let c = e, i = 0; c && i < 5; c = c.cause, i++) why.push(c.code ?? '', c.message ?? String(c));
      out.error = why.join(' ');
    }
    console.log(JSON.stringify(out));
  `;
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
    else delete env.NODE_EXTRA_CA_CERTS;
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: TESTS_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 40000);
    p.on('exit', (code) => {
      clearTimeout(t);
      try { resolve(JSON.parse(out)); } catch { reject(new Error(`openai child exited ${code}: ${out}\n${err}`)); }
    });
  });
}

// ------------------------------------------------------------------ set-up

const env = { fake: null, gw: null, tlsPort: 0, one: null, two: null };

before(async () => {
  if (!GATEWAY_BIN) return;
  pki.dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-tls-'));
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-sha256', '-subj', '/CN=ollama-gateway test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  pki.ca = readFileSync(path.join(pki.dir, 'ca.pem'), 'utf8');
  pki.caFile = path.join(pki.dir, 'ca.pem');
  env.one = await serverCert('one', 'gateway one');
  env.two = await serverCert('two', 'gateway two');
  env.fake = await startFake();
  env.tlsPort = await freePort();
  env.gw = await startGateway({
    backends: [env.fake.url],
    config: { tls: { cert: 'cert.pem', key: 'key.pem', listen: [`127.0.0.1:${env.tlsPort}`] } },
    files: { 'cert.pem': env.one.cert, 'key.pem': env.one.key },
  });
});

after(async () => {
  const code = env.gw ? await env.gw.stop() : 0;
  if (env.fake) await env.fake.close();
  if (pki.dir) rmSync(pki.dir, { recursive: true, force: true });
  assert.equal(code, 0, `gateway exit on SIGTERM\n${env.gw?.stderr}`);
});

beforeEach(() => env.fake?.reset());

const tlsURL = () => `https://127.0.0.1:${env.tlsPort}`;

/** Put new files in place as an operator (or certbot) would, then SIGHUP;
 * resolves the reload's log line (or its refusal). */
async function reloadWith(files, want = /reload \d+ in force: configuration and keys/) {
  const from = env.gw.stderr.length;
  for (const [name, text] of Object.entries(files)) writeFileAtomic(path.join(env.gw.dir, name), text, 0o600);
  env.gw.proc.kill('SIGHUP');
  return env.gw.waitForStderr(want, 10000, from);
}

// ------------------------------------------------------------------- tests

test('the start names the TLS listener and the certificate it serves', needGateway, async () => {
  assert.match(env.gw.stderr, new RegExp(`listening on 127\\.0\\.0\\.1:${env.tlsPort} \\(TLS\\)`));
  assert.match(env.gw.stderr, new RegExp(`listening on 127\\.0\\.0\\.1:${env.gw.port} with`));
  assert.match(env.gw.stderr, new RegExp(`tls: certificate "CN=gateway one" \\(SHA-256 ${env.one.fingerprint}, 1 in its chain\\), valid until `));
});

test('curl over HTTPS: chat completion whole and streamed; the plain listener beside it', needGateway, async () => {
  env.fake.script({ tokens: ['Hello', ' over', ' TLS'] });
  const body = JSON.stringify(simpleChat('llama3.2'));
  const whole = await curl(['--cacert', pki.caFile, '-H', 'content-type: application/json', '-d', body,
    `${tlsURL()}/v1/chat/completions`]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(JSON.parse(whole.stdout).choices[0].message.content, 'Hello over TLS');
  const streamed = await curl(['-N', '--cacert', pki.caFile, '-H', 'content-type: application/json', '-d',
    JSON.stringify(simpleChat('llama3.2', { stream: true })), `${tlsURL()}/v1/chat/completions`]);
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.deepEqual(sseContent(streamed.stdout), { content: 'Hello over TLS', done: true });
  // the same gateway, its plain port
  const plain = await curl(['-H', 'content-type: application/json', '-d', body, `${env.gw.url}/v1/chat/completions`]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(JSON.parse(plain.stdout).choices[0].message.content, 'Hello over TLS');
  // the backend saw three ordinary requests
  const chats = env.fake.chats();
  assert.equal(chats.length, 3);
  assert.deepEqual(chats.map((c) => c.body.stream), [false, true, false]);
  // a client that does not trust the CA refuses the certificate
  const untrusted = await curl([`${tlsURL()}/healthz`]);
  assert.equal(untrusted.code, 60, `curl without --cacert: ${untrusted.stderr}`);
  // access log: the requests as on a plain port
  await waitFor(() => env.gw.accessLog('/v1/chat/completions').length >= 3, 5000, 20, 'access lines');
  assert.ok(env.gw.accessLog('/v1/chat/completions').slice(-3).every((l) => l.status === 200));
});

test('the openai SDK over HTTPS, trusting the test CA', needGateway, async () => {
  env.fake.script({ tokens: ['SDK', ' says', ' hi'] });
  const r = await openaiChild(`${tlsURL()}/v1`, pki.caFile);
  assert.deepEqual(r, { whole: 'SDK says hi', streamed: 'SDK says hi' });
  assert.equal(env.fake.chats().length, 2);
  // without the CA the SDK refuses the connection, and nothing reaches the backend
  env.fake.reset();
  const refused = await openaiChild(`${tlsURL()}/v1`, null);
  assert.match(refused.error ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify|Connection error/i, JSON.stringify(refused));
  assert.equal(env.fake.chats().length, 0);
});

test('plain HTTP to the TLS port gets no HTTP answer; the connection closes', needGateway, async () => {
  const got = await new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: env.tlsPort }, () => {
      s.write('GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => { /* a reset is a close too */ });
    s.on('close', () => { clearTimeout(t); resolve(Buffer.concat(chunks)); });
    const t = setTimeout(() => { s.destroy(); reject(new Error('the TLS port kept a plain-HTTP connection open for 10 s')); }, 10000);
  });
  assert.doesNotMatch(got.toString('latin1'), /HTTP\/1\.[01]|"error"|models/, `bytes sent back: ${got.toString('hex')}`);
  // still serving TLS afterwards
  assert.equal((await httpsRequest(env.tlsPort, '/healthz')).status, 200);
});

/** CPU time (user + system, in clock ticks) the gateway process has used. */
function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

test('connections that wait in the handshake cost no CPU', needGateway, async () => {
  // libmicrohttpd 0.9.75 asks to be run again at once while a handshake
  // waits for its client; taken at its word, a worker spun at 100 % CPU for
  // every such connection until header_timeout_s (mhd_glue.h).
  const socks = [];
  try {
    for (let i = 0; i < 20; i++) {
      socks.push(await new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: env.tlsPort }, () => resolve(s));
        s.on('error', reject);
      }));
    }
    const t0 = cpuTicks(env.gw.proc.pid);
    await new Promise((r) => setTimeout(r, 2000));
    const used = cpuTicks(env.gw.proc.pid) - t0;
    assert.ok(used < 40, `the gateway used ${used} ticks (1/100 s) of CPU in 2 s with 20 idle TLS connections`);
    // and a real client is served meanwhile
    assert.equal((await httpsRequest(env.tlsPort, '/healthz')).status, 200);
  } finally {
    for (const s of socks) s.destroy();
  }
});

test('TLS 1.2 and 1.3 are served; TLS 1.1 is refused', needGateway, async () => {
  assert.equal((await peerCertificate(env.tlsPort)).protocol, 'TLSv1.3');
  assert.equal((await peerCertificate(env.tlsPort, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
  // A client that offers TLS 1.1 at most (OpenSSL's security level 0 lets it):
  // it does get TLS 1.1 from a server that allows it, so the gateway's
  // refusal is the gateway's. GnuTLS sends no alert through libmicrohttpd:
  // the handshake fails and the connection is closed.
  const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
  const control = tls.createServer({ key: env.one.key, cert: env.one.cert, ...old }, (s) => s.end());
  await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve));
  try {
    assert.equal((await peerCertificate(control.address().port, old)).protocol, 'TLSv1.1', 'the client can speak TLS 1.1');
  } finally {
    control.close();
  }
  await assert.rejects(peerCertificate(env.tlsPort, old),
    (e) => /disconnected before secure TLS connection|ECONNRESET|protocol version/i.test(`${e.code} ${e.message}`));
  // and the gateway still serves modern clients
  assert.equal((await peerCertificate(env.tlsPort)).protocol, 'TLSv1.3');
});

test('a new certificate on SIGHUP: a stream in flight completes whole, new connections get the new one', needGateway, async () => {
  const tokens = Array.from({ length: 30 }, (_, i) => `t${i} `);
  env.fake.script({ tokens, delayMs: 60 });
  let firstSeen;
  const seen = new Promise((resolve) => { firstSeen = resolve; });
  const stream = httpsRequest(env.tlsPort, '/v1/chat/completions', {
    method: 'POST', body: simpleChat('llama3.2', { stream: true }), timeoutMs: 30000,
    onData: (text) => { if (text.includes('t0 ')) firstSeen(); },
  });
  assert.notEqual(await within(seen, 10000, 'timeout'), 'timeout', 'the stream started');
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, env.one.fingerprint);

  const line = await reloadWith({ 'cert.pem': env.two.cert, 'key.pem': env.two.key });
  assert.match(env.gw.stderr.slice(0, line.end), new RegExp(`tls: certificate "CN=gateway two" \\(SHA-256 ${env.two.fingerprint}`));
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, env.two.fingerprint, 'a new connection after the reload');
  assert.equal(env.fake.inflight ?? 1, 1, 'the stream is still running');

  const r = await stream;
  assert.equal(r.status, 200);
  assert.equal(r.fingerprint, env.one.fingerprint, 'the stream kept the connection it started on');
  assert.deepEqual(sseContent(r.text), { content: tokens.join(''), done: true });
  // an HTTPS request after the reload, on the new certificate
  const after = await httpsRequest(env.tlsPort, '/healthz');
  assert.equal(after.status, 200);
  assert.equal(after.fingerprint, env.two.fingerprint);
});

test('handshakes on every worker while reloads swap the certificate: each one served whole', needGateway, async () => {
  // The certificate callback runs on the worker threads while the reload
  // publishes a new snapshot on the main thread (the TSan build checks this).
  const known = new Set([env.one.fingerprint, env.two.fingerprint]);
  let stop = false;
  const counts = { handshakes: 0, requests: 0 };
  const client = async () => {
    while (!stop) {
      const r = await httpsRequest(env.tlsPort, '/healthz');
      assert.equal(r.status, 200);
      assert.ok(known.has(r.fingerprint), r.fingerprint);
      counts.requests++;
      assert.ok(known.has((await peerCertificate(env.tlsPort)).fingerprint));
      counts.handshakes++;
    }
  };
  const clients = Array.from({ length: 8 }, client);
  try {
    for (let i = 0; i < 6; i++) {
      const pair = i % 2 === 0 ? env.one : env.two;
      await reloadWith({ 'cert.pem': pair.cert, 'key.pem': pair.key });
      await waitFor(() => counts.handshakes >= (i + 1) * 4, 10000, 10, 'handshakes between reloads');
    }
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  assert.ok(counts.handshakes >= 24 && counts.requests >= 24, JSON.stringify(counts));
  // the last reload put the second pair in force
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, env.two.fingerprint);
});

test('a bad new certificate is refused with its reason; the one in force stays', needGateway, async () => {
  const served = (await peerCertificate(env.tlsPort)).fingerprint;
  // the first server's certificate with the second's key
  let line = await reloadWith({ 'cert.pem': env.one.cert, 'key.pem': env.two.key }, /reload refused: /);
  assert.match(env.gw.stderr.slice(0, line.end), /tls: .*key\.pem is not the private key of the certificate in .*cert\.pem \(CN=gateway one\)/);
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, served, 'the certificate in force stays');
  // not a certificate at all
  line = await reloadWith({ 'cert.pem': 'not a certificate\n', 'key.pem': env.two.key }, /reload refused: /);
  assert.match(env.gw.stderr.slice(0, line.end), /tls: .*cert\.pem: holds no PEM certificate/);
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, served);
  // a good pair whose key other users of the machine may read
  let from = env.gw.stderr.length;
  writeFileAtomic(path.join(env.gw.dir, 'cert.pem'), env.two.cert, 0o644);
  writeFileAtomic(path.join(env.gw.dir, 'key.pem'), env.two.key, 0o644);
  env.gw.proc.kill('SIGHUP');
  line = await env.gw.waitForStderr(/reload refused: /, 10000, from);
  assert.match(env.gw.stderr.slice(from, line.end), /tls: .*key\.pem: may be read or written by other users \(mode 0644\)/);
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, served);
  // still answering over TLS, and a good pair is taken again
  assert.equal((await httpsRequest(env.tlsPort, '/healthz')).status, 200);
  await reloadWith({ 'cert.pem': env.two.cert, 'key.pem': env.two.key });
  assert.equal((await peerCertificate(env.tlsPort)).fingerprint, env.two.fingerprint);
});

test('a key that does not match its certificate: refused by check and at start', needGateway, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-tls-bad-'));
  try {
    const port = await freePort();
    writeFileSync(path.join(dir, 'gateway.json'), JSON.stringify({
      listen: `127.0.0.1:${port}`, auth: 'none', backends: [{ url: env.fake.url }],
      tls: { cert: 'cert.pem', key: 'key.pem' },
    }));
    writeFileSync(path.join(dir, 'cert.pem'), env.one.cert);
    writeFileSync(path.join(dir, 'key.pem'), env.two.key, { mode: 0o600 });
    const cfg = path.join(dir, 'gateway.json');
    const check = await runGateway(['check', '-c', cfg]);
    assert.equal(check.code, 1, check.stderr);
    assert.match(check.stderr, /gateway\.json: tls: .*key\.pem is not the private key of the certificate in .*cert\.pem/);
    const serve = await runGateway(['serve', '-c', cfg], { timeoutMs: 15000 });
    assert.notEqual(serve.code, 0);
    assert.equal(serve.signal, null, 'exited by itself');
    assert.match(serve.stderr, /key\.pem is not the private key of the certificate/);
    // the right key: check passes and names the certificate
    copyFileSync(path.join(pki.dir, 'one.key'), path.join(dir, 'key.pem'));
    const ok = await runGateway(['check', '-c', cfg]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, new RegExp(`cert\\.pem: certificate "CN=gateway one" \\(SHA-256 ${env.one.fingerprint}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
