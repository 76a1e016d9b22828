// The soak driver (tests/soak/run.sh runs it; README "Soak and fuzzing").
//
// One fake Ollama and one gateway (GATEWAY_BIN, which run.sh may point at a
// valgrind wrapper), then SOAK_SECONDS of mixed traffic from
// SOAK_CONCURRENCY client loops: streamed and non-streamed chat, clients
// that leave mid-stream, embeddings, completions, Ollama's native API,
// backends that fail mid-stream, bad requests; and a SIGHUP reload every
// SOAK_HUP_S seconds. Every answer is checked against what its kind must
// get; anything else counts as an error. The gateway's RSS is read when the
// warm-up (SOAK_WARMUP_S) ends and again when the traffic has stopped and
// nothing is in flight. Exit 1 on any error, on an RSS growth over
// SOAK_RSS_GROWTH_KB, on a gateway that does not exit 0 (a sanitizer or
// valgrind report makes it non-zero), or on a report in its stderr.

import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startFake, startGateway, waitFor } from '../integration/harness.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const WARMUP_S = Number(process.env.SOAK_WARMUP_S ?? 60);
const CONC = Number(process.env.SOAK_CONCURRENCY ?? 16);
const HUP_S = Number(process.env.SOAK_HUP_S ?? 10);
const RSS_GROWTH_KB = Number(process.env.SOAK_RSS_GROWTH_KB ?? 16384);
const TIMEOUT_MS = Number(process.env.SOAK_TIMEOUT_MS ?? 60000);
const START_MS = Number(process.env.SOAK_START_MS ?? 60000);
const STOP_MS = Number(process.env.SOAK_STOP_MS ?? 300000);

const fake = await startFake({ models: ['llama3.2', 'nomic-embed-text'], record: false });
// The scenario is chosen by the prompt's first word.
fake.script((body) => {
  const text = body.messages?.[0]?.content ?? body.prompt ?? '';
  if (text.startsWith('slow')) return { tokens: Array.from({ length: 20 }, (_, i) => ` s${i}`), delayMs: 20 };
  if (text.startsWith('fail')) return { tokens: ['a', 'b', 'c'], errorAfter: 2, errorMessage: 'model crashed' };
  if (text.startsWith('long')) return { tokens: Array.from({ length: 200 }, (_, i) => ` t${i}`) };
  return { tokens: ['Hello', ' world'] };
});
const gw = await startGateway({
  backends: [fake.url],
  config: { workers: 2, log: { level: 'info', access: '-' } },
  timeoutMs: START_MS,
});
const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });

// One request. abortAfterFirst: the client leaves after the first body bytes.
function request(method, path, body, { abortAfterFirst = false, raw } = {}) {
  return new Promise((resolve) => {
    const data = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: gw.port, method, path, agent: abortAfterFirst ? false : agent,
      headers: data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (abortAfterFirst) {
          req.destroy();
          resolve({ status: res.statusCode, text, aborted: true });
        }
      });
      res.on('end', () => { clearTimeout(t); resolve({ status: res.statusCode, text }); });
      res.on('error', () => {});
      res.on('close', () => { clearTimeout(t); resolve({ status: res.statusCode, text, closed: true }); });
    });
    const t = setTimeout(() => { req.destroy(); resolve({ status: 0, text: '', timeout: true }); }, TIMEOUT_MS);
    req.on('error', (e) => { clearTimeout(t); resolve({ status: 0, text: '', error: e.message }); });
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const chat = (content, extra = {}) => ({ model: 'llama3.2', messages: [{ role: 'user', content }], ...extra });
const sseDone = (r) => r.status === 200 && r.text.includes('data: [DONE]');
const sseError = (r) => r.status === 200 && /data: \{"error"/.test(r.text) && !r.text.includes('[DONE]');
const json = (r) => { try { return JSON.parse(r.text); } catch { return null; } };

// [weight, name, run() → true when the answer is what this kind must get]
const KINDS = [
  [20, 'chat-stream', async () => sseDone(await request('POST', '/v1/chat/completions', chat('hi', { stream: true })))],
  [6, 'chat-stream-long', async () => sseDone(await request('POST', '/v1/chat/completions', chat('long', { stream: true, stream_options: { include_usage: true } })))],
  [15, 'chat', async () => json(await request('POST', '/v1/chat/completions', chat('hi')))?.choices?.[0]?.message?.content === 'Hello world'],
  [8, 'chat-abort', async () => {
    const r = await request('POST', '/v1/chat/completions', chat('slow', { stream: true }), { abortAfterFirst: true });
    return r.aborted === true && r.status === 200;
  }],
  [3, 'chat-backend-fails', async () => sseError(await request('POST', '/v1/chat/completions', chat('fail', { stream: true })))],
  [10, 'embeddings', async () => json(await request('POST', '/v1/embeddings', { model: 'nomic-embed-text', input: ['a', 'b'] }))?.data?.length === 2],
  [5, 'completions', async () => json(await request('POST', '/v1/completions', { model: 'llama3.2', prompt: 'hi' }))?.choices?.[0]?.text === 'Hello world'],
  [4, 'completions-stream', async () => sseDone(await request('POST', '/v1/completions', { model: 'llama3.2', prompt: 'hi', stream: true }))],
  [5, 'native-chat', async () => {
    const r = await request('POST', '/api/chat', chat('hi'));
    return r.status === 200 && r.text.trim().split('\n').map((l) => JSON.parse(l)).at(-1).done === true;
  }],
  [4, 'native-generate', async () => json(await request('POST', '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false }))?.done === true],
  [3, 'native-abort', async () => (await request('POST', '/api/chat', chat('slow'), { abortAfterFirst: true })).aborted === true],
  [4, 'bad-json', async () => (await request('POST', '/v1/chat/completions', undefined, { raw: '{"model": "llama3.2", "messages": [' })).status === 400],
  [4, 'unknown-model', async () => (await request('POST', '/v1/chat/completions', chat('hi', { model: 'no-such-model' }))).status === 404],
  [3, 'bad-method', async () => (await request('GET', '/v1/chat/completions')).status === 405],
  [3, 'bad-fields', async () => (await request('POST', '/v1/chat/completions', { model: 'llama3.2', messages: 'x' })).status === 400],
  [3, 'models', async () => json(await request('GET', '/v1/models'))?.data?.length >= 2],
];
const total = KINDS.reduce((s, k) => s + k[0], 0);
const pick = () => {
  let x = Math.random() * total;
  for (const k of KINDS) if ((x -= k[0]) < 0) return k;
  return KINDS[0];
};

const counts = {};
const bad = {};
let requests = 0;
let errors = 0;
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))[1]);

const t0 = performance.now();
const end = t0 + SECONDS * 1000;
let rssStart = null;
let hups = 0;
const hupTimer = setInterval(() => { gw.proc.kill('SIGHUP'); hups++; }, HUP_S * 1000);
const warmTimer = setTimeout(() => { rssStart = rssKb(); console.log(`warm-up over after ${WARMUP_S} s: RSS ${rssStart} kB, ${requests} requests so far`); }, WARMUP_S * 1000);
const progress = setInterval(() => {
  console.log(`${Math.round((performance.now() - t0) / 1000)} s: ${requests} requests, ${errors} errors, RSS ${rssKb()} kB`);
}, 30_000);

async function loop() {
  while (performance.now() < end && gw.proc.exitCode === null) {
    const [, name, run] = pick();
    let ok = false;
    try { ok = await run(); } catch { ok = false; }
    requests++;
    counts[name] = (counts[name] ?? 0) + 1;
    if (!ok) { errors++; bad[name] = (bad[name] ?? 0) + 1; }
  }
}
await Promise.all(Array.from({ length: CONC }, loop));
clearInterval(hupTimer);
clearInterval(progress);
clearTimeout(warmTimer);
agent.destroy();

// Nothing in flight any more: every request has its access-log line (a
// client that left gets one too, when the gateway has let go of it).
await waitFor(() => gw.stdoutRaw.length >= requests, 30_000, 100, `an access-log line for each of ${requests} requests`)
  .catch((e) => { console.log(`${e.message} (${gw.stdoutRaw.length} lines)`); errors++; });
const rssEnd = rssKb();
const reloads = (gw.stderr.match(/reload \d+ in force/g) ?? []).length;
const code = await gw.stop(STOP_MS);
await fake.close();
const stderr = gw.stderr;
const reports = stderr.split('\n').filter((l) => /Sanitizer|runtime error|Invalid (read|write|free)|(definitely|indirectly) lost: [1-9]|uninitialised|ERROR SUMMARY: [1-9]/.test(l));

const secs = Math.round((performance.now() - t0) / 1000);
const summary = {
  seconds: secs, concurrency: CONC, requests, errors, perKind: counts, errorsPerKind: bad,
  sighups: hups, reloadsInForce: reloads, rssStartKb: rssStart, rssEndKb: rssEnd,
  rssGrowthKb: rssStart === null ? null : rssEnd - rssStart, rssBoundKb: RSS_GROWTH_KB, exitCode: code,
  reports: reports.length,
};
console.log(JSON.stringify(summary, null, 2));
if (process.env.SOAK_SUMMARY) writeFileSync(process.env.SOAK_SUMMARY, `${JSON.stringify(summary)}\n`);
const failures = [];
if (errors) failures.push(`${errors} requests did not get what they should`);
if (rssStart === null) failures.push('the warm-up did not end before the traffic did');
else if (rssEnd - rssStart > RSS_GROWTH_KB) failures.push(`RSS grew by ${rssEnd - rssStart} kB (bound ${RSS_GROWTH_KB} kB)`);
if (code !== 0) failures.push(`the gateway exited ${code}`);
if (reports.length) failures.push(`reports in the gateway's stderr:\n${stderr.slice(-8000)}`);
if (hups && !reloads) failures.push('no SIGHUP reload was put in force');
if (failures.length) {
  console.log(`SOAK FAILED:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('soak: ok');
