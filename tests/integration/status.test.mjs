// The live status page on the monitoring listener (issue 11): GET
// /status.json after known traffic (backends, per-key use and headroom from
// the limiter, recent errors without secrets), then GET /status in headless
// Chromium (Debian's chromium, driven by playwright-core): the page renders
// the fake backends and the counts, and updates after more traffic. The
// test saves a screenshot (STATUS_SCREENSHOT=path to choose where; the one
// in tests/status/status-page.png, shown in the README, was made so).
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  needGateway, startGateway, startFake, freePort, chat, jsonOf, simpleChat, waitFor, bearer, get, sleep,
} from './harness.mjs';

const T = (ms) => ({ ...needGateway, timeout: ms });
const CHROMIUM = '/usr/bin/chromium';
const SCENE = { tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 7, eval_count: 3 } };
const BAD_SECRET = 'og-zzzzzzzzzzzz-THISSECRETMUSTNEVERAPPEARINTHESTATUSPAGE000000';

let playwright = null;
try {
  playwright = await import('playwright-core');
} catch { /* the browser test is skipped below */ }
const noBrowser = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (deploy/install-deps.sh --test)`
  : !playwright ? 'playwright-core is not installed (npm ci in tests/)' : false;

let A; let B; let gw; let murl;

before(async () => {
  if (needGateway.skip) return;
  A = await startFake({ models: ['llama3.2', 'qwen3'], loaded: ['llama3.2'] });
  B = await startFake({ models: ['llama3.2'], loaded: [] });
  A.script(SCENE);
  B.script(SCENE);
  const mport = await freePort();
  murl = `http://127.0.0.1:${mport}`;
  gw = await startGateway({
    backends: [{ name: 'A', url: A.url }, { name: 'B', url: B.url }],
    keys: [{ name: 'alice', rpm: 6, tpm: 100000 }, { name: 'bob' }],
    config: {
      workers: 2,
      metrics: { listen: `127.0.0.1:${mport}` },
      limits: { auth_failures_per_minute: 0 },
    },
  });
});

after(async () => {
  const code = gw ? await gw.stop() : null;
  await A?.close();
  await B?.close();
  if (code !== null && code !== 0) throw new Error(`gateway exited with ${code}\n${gw.stderr}`);
});

/** /status.json once every request so far is counted whole (in flight 0:
 * a client can have its answer before the request is counted). */
async function settledStatus() {
  return waitFor(async () => {
    const st = await status();
    return st.json.totals.inflight === 0 ? st : null;
  }, 10000, 20, 'every request counted (in flight 0)');
}

async function status() {
  const r = await get(`${murl}/status.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const text = await r.text();
  return { json: JSON.parse(text), text };
}

async function asAlice(model = 'llama3.2') {
  return jsonOf(await chat(gw.url, simpleChat(model), { headers: bearer(gw.secret('alice')) }));
}

test('/status.json: backends, per-key use and headroom, recent errors, no secret', T(30000), async () => {
  for (let i = 0; i < 3; i++) assert.equal((await asAlice()).status, 200);
  const nf = await asAlice('no-such-model');
  assert.equal(nf.status, 404);
  const bad = await jsonOf(await chat(gw.url, simpleChat(), { headers: bearer(BAD_SECRET) }));
  assert.equal(bad.status, 401);
  const { json: s, text } = await settledStatus();
  assert.equal(s.auth, 'keys');
  assert.equal(s.workers, 2);
  assert.deepEqual(s.backends.map((b) => [b.name, b.up, b.version, b.models, b.loaded, b.inflight, b.queue]), [
    ['A', true, '0.33.0', 2, ['llama3.2:latest'], 0, 0],
    ['B', true, '0.33.0', 1, [], 0, 0],
  ]);
  const alice = s.keys.find((k) => k.name === 'alice');
  assert.equal(alice.id, gw.keys.find((k) => k.name === 'alice').id);
  assert.equal(alice.state, 'active');
  assert.deepEqual([alice.requests, alice.prompt_tokens, alice.completion_tokens, alice.inflight], [4, 21, 9, 0]);
  // rpm 6 refills one request every 10 s: 4 taken, 2 left (for ~10 s)
  assert.equal(alice.rpm, 6);
  assert.equal(alice.remaining_requests, 2);
  assert.ok(alice.remaining_tokens >= 100000 - 30 && alice.remaining_tokens <= 100000, `${alice.remaining_tokens}`);
  const bob = s.keys.find((k) => k.name === 'bob');
  assert.deepEqual([bob.requests, bob.remaining_requests, bob.remaining_tokens], [0, null, null]);
  assert.equal(s.totals.auth_failures, 1);
  const errs = s.errors.filter((e) => e.route === '/v1/chat/completions').map((e) => [e.status, e.message]);
  assert.deepEqual(errs.slice(0, 2).map(([st]) => st), [401, 404], JSON.stringify(s.errors));
  assert.match(errs[1][1], /The model 'no-such-model' does not exist/);
  assert.ok(!text.includes('THISSECRET'), 'no secret on the status page');
  assert.ok(!text.includes('Say hello'), 'no prompt text on the status page');
  // history: one sample a second, so rates appear within a few seconds
  const later = await waitFor(async () => {
    const { json } = await status();
    return json.rates.requests.length >= 2 ? json : null;
  }, 10000, 200, 'two samples of the totals');
  assert.equal(later.rates.requests.length, later.rates.tokens.length);
});

test('GET /status: one self-contained page with a strict content security policy', T(15000), async () => {
  const r = await get(`${murl}/status`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  // only the page's own script and style run: named by hash, never 'unsafe-inline'
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]{43}='/);
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/]{43}='/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const json = await get(`${murl}/status.json`);
  assert.equal(json.headers.get('x-content-type-options'), 'nosniff', '/status.json is never sniffed into HTML');
  await json.text();
  const html = await r.text();
  const { createHash } = await import('node:crypto');
  const hashOf = (tag) => `'sha256-${createHash('sha256').update(html.split(`<${tag}>`)[1].split(`</${tag}>`)[0]).digest('base64')}'`;
  assert.ok(csp.includes(`script-src ${hashOf('script')}`), `the policy names the page's script: ${csp}`);
  assert.ok(csp.includes(`style-src ${hashOf('style')}`), `the policy names the page's style: ${csp}`);
  assert.match(html, /^<!doctype html>/);
  assert.ok(!/\b(src|href)\s*=\s*["']?(https?:)?\/\//i.test(html), 'no external asset');
  assert.ok(!/<link\b(?![^>]*href="data:)|<script\s[^>]*src=/i.test(html), 'no linked stylesheet or script');
  const miss = await get(`${murl}/status/x`);
  assert.equal(miss.status, 404);
  await miss.text();
});

test('the page in headless Chromium: backends and counts shown, then updated after more traffic', { ...T(90000), skip: needGateway.skip || noBrowser }, async () => {
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('request', (rq) => { if (!rq.url().startsWith(murl)) problems.push(`external request: ${rq.url()}`); });
    await page.goto(`${murl}/status`);
    const cell = (table, name, col) => page.locator(`#${table} tbody tr[data-name="${name}"] td`).nth(col);
    // the fake backends, as discovery found them
    await page.locator('#backends tbody tr[data-name="A"]').waitFor({ timeout: 10000 });
    assert.equal(await cell('backends', 'A', 1).innerText(), 'up');
    assert.equal(await cell('backends', 'A', 2).innerText(), '0.33.0');
    assert.equal(await cell('backends', 'A', 4).innerText(), 'llama3.2:latest');
    assert.equal(await cell('backends', 'B', 1).innerText(), 'up');
    // the counts of the traffic so far (the test above): alice 4 requests, 21 + 9 tokens
    const { json: s0 } = await settledStatus();
    assert.equal(await cell('keys', 'alice', 3).innerText(), '4');
    assert.equal(await cell('keys', 'alice', 4).innerText(), '21');
    assert.equal(await cell('keys', 'alice', 5).innerText(), '9');
    assert.equal(await page.locator('#total-requests').innerText(), s0.totals.requests.toLocaleString('en-US'));
    assert.match(await cell('keys', 'alice', 7).innerText(), /^2 \/ 6$/);
    assert.equal(await page.locator('#errors tbody tr').first().locator('td').nth(2).innerText(), '401');

    // more traffic as bob (no limits): the page changes by itself
    const before = await page.locator('#total-requests').innerText();
    const n = process.env.STATUS_SCREENSHOT ? 60 : 5;
    for (let i = 0; i < n; i++) {
      const r = await jsonOf(await chat(gw.url, simpleChat(), { headers: bearer(gw.secret('bob')) }));
      assert.equal(r.status, 200);
      if (process.env.STATUS_SCREENSHOT) await sleep(150 + 100 * Math.sin(i / 4));
    }
    await page.waitForFunction((old) => document.querySelector('#total-requests').textContent !== old,
      before, { timeout: 15000 });
    await page.waitForFunction((want) => {
      const tr = document.querySelector('#keys tbody tr[data-name="bob"]');
      return tr && tr.cells[3].textContent === want;
    }, String(n), { timeout: 15000 });
    assert.equal(await cell('keys', 'bob', 4).innerText(), (7 * n).toLocaleString('en-US'));
    // the charts have drawn the samples
    await page.locator('#chart-requests polyline').waitFor({ timeout: 15000 });
    await page.waitForFunction(() => Number(document.querySelector('#rate-requests').textContent.replace(/[^0-9.]/g, '')) >= 0);
    assert.deepEqual(problems, []);
    const file = process.env.STATUS_SCREENSHOT ?? path.join(os.tmpdir(), `status-page-${process.pid}.png`);
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(existsSync(file));
  } finally {
    await browser.close();
  }
});
