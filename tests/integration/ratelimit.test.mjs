// Per-key limits (issue #3): requests per minute, tokens per minute, requests
// in flight, the x-ratelimit-* headers, limits across worker threads, and the
// brute-force guard on failed authentications (DESIGN.md "HTTP endpoints").
import test, { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  useGateway, needGateway, startGateway, startFake, bearer, chat, get, jsonOf, readSSE, simpleChat, waitFor,
  expectApiError, httpRequest, TEST_ALIASES,
} from './harness.mjs';

const env = useGateway({ before, after, beforeEach }, {
  config: { workers: 2, limits: { auth_failures_per_minute: 0 } },
  keys: [
    { name: 'rpm3', rpm: 3 },
    { name: 'tpm100', tpm: 100 },
    { name: 'tpm100s', tpm: 100 },
    { name: 'inflight2', maxInflight: 2 },
    { name: 'both', rpm: 50, tpm: 1000 },
    { name: 'free' },
  ],
});

const h = (name) => bearer(env.gw.secret(name));

/** A Go time.Duration string ("20s", "1m0s", "1.5s", "250ms", "0s") → milliseconds, or NaN. */
function goDurationMs(s) {
  if (typeof s !== 'string' || s === '') return NaN;
  if (s === '0s' || s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/gy;
  const unit = { h: 3600000, m: 60000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let ms = 0;
  let at = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    ms += Number(m[1]) * unit[m[2]];
    at = re.lastIndex;
  }
  return at === s.length ? ms : NaN;
}

/** Assert a 429 rate_limit_exceeded with a whole-seconds Retry-After in [min, max]; returns it. */
async function expect429(res, what, { min = 1, max = 60 } = {}) {
  const { headers } = await expectApiError(res, 429, { type: 'rate_limit_error', code: 'rate_limit_exceeded' }, what);
  const ra = headers.get('retry-after');
  assert.ok(ra !== null, `${what}: Retry-After header`);
  assert.match(ra, /^\d+$/, `${what}: Retry-After in whole seconds: ${ra}`);
  assert.ok(Number(ra) >= min && Number(ra) <= max, `${what}: Retry-After ${ra} not in [${min}, ${max}]`);
  return Number(ra);
}

function assertGoDuration(v, what, maxMs = 60000) {
  assert.ok(v !== null && v !== undefined, `${what} header present`);
  const ms = goDurationMs(v);
  assert.ok(!Number.isNaN(ms), `${what} is a Go duration: ${JSON.stringify(v)}`);
  assert.ok(ms >= 0 && ms <= maxMs, `${what} = ${v} within [0, ${maxMs} ms]`);
  return ms;
}

/** The access-log line of request id rid (bounded wait). */
function lineFor(gw, rid) {
  return waitFor(() => gw.stdoutLines.find((l) => l.request_id === rid), 3000, 20, `access line for ${rid}`);
}

test('rpm: N requests pass with counting-down headers, the (N+1)-th is 429 with Retry-After; nothing more sent', needGateway, async () => {
  const { gw, fake } = env;
  const remaining = [];
  for (let i = 0; i < 3; i++) {
    const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: h('rpm3') }));
    assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '3', `x-ratelimit-limit-requests on request ${i + 1}`);
    const rem = r.headers.get('x-ratelimit-remaining-requests');
    assert.match(rem ?? '', /^\d+$/, `x-ratelimit-remaining-requests: ${rem}`);
    remaining.push(Number(rem));
    const reset = assertGoDuration(r.headers.get('x-ratelimit-reset-requests'), 'x-ratelimit-reset-requests');
    assert.ok(reset > 0, `reset-requests after using the bucket: ${r.headers.get('x-ratelimit-reset-requests')}`);
  }
  assert.deepEqual(remaining, [2, 1, 0], 'x-ratelimit-remaining-requests counts down');
  await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: h('rpm3') }), '4th request');
  await expect429(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: h('rpm3') }), '5th request (stream)');
  assert.equal(fake.chats().length, 3, 'refused requests never reach the backend');
  // other keys are not affected
  const other = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: h('free') }));
  assert.equal(other.status, 200, other.text);
});

test('tpm: a response of 150 tokens exhausts a 100-token bucket; the next request is 429', needGateway, async () => {
  const { gw, fake } = env;
  fake.script({ tokens: ['a', 'b'], metrics: { prompt_eval_count: 100, eval_count: 50 } });
  const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: { ...h('tpm100'), 'x-request-id': 'tpm-1' } }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.usage, { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150 });
  assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '100');
  const rem = r.headers.get('x-ratelimit-remaining-tokens');
  assert.match(rem ?? '', /^\d+$/, `x-ratelimit-remaining-tokens: ${rem}`);
  assert.ok(Number(rem) <= 100);
  assertGoDuration(r.headers.get('x-ratelimit-reset-tokens'), 'x-ratelimit-reset-tokens');
  await lineFor(gw, 'tpm-1'); // the request is finished (and charged)
  await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: h('tpm100') }), 'after 150 of 100 tokens');
  await expect429(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: h('tpm100') }), 'stream after 150 of 100 tokens');
  assert.equal(fake.chats().length, 1, 'refused requests never reach the backend');
});

test('tpm: a stream\'s tokens are charged when it completes', needGateway, async () => {
  const { gw, fake } = env;
  fake.script({ tokens: ['a', 'b', 'c'], metrics: { prompt_eval_count: 120, eval_count: 30 } });
  const res = await chat(gw.url, simpleChat('llama3.2', { stream: true, stream_options: { include_usage: true } }),
    { headers: { ...h('tpm100s'), 'x-request-id': 'tpm-s-1' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-ratelimit-limit-tokens'), '100', 'rate-limit headers on a stream');
  const sse = await readSSE(res);
  assert.equal(sse.done, true);
  assert.deepEqual(sse.chunks.at(-1).usage, { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 });
  await lineFor(gw, 'tpm-s-1');
  await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: h('tpm100s') }), 'after a 150-token stream');
  assert.equal(fake.chats().length, 1);
});

test('rpm and tpm together: all six x-ratelimit-* headers; remaining tokens go down after a response', needGateway, async () => {
  const { gw } = env;
  const a = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: { ...h('both'), 'x-request-id': 'both-1' } }));
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.usage.total_tokens, 29);
  await lineFor(gw, 'both-1');
  const b = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: h('both') }));
  assert.equal(b.status, 200, b.text);
  for (const r of [a, b]) {
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '50');
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '1000');
    for (const n of ['x-ratelimit-remaining-requests', 'x-ratelimit-remaining-tokens']) assert.match(r.headers.get(n) ?? '', /^\d+$/, n);
    assertGoDuration(r.headers.get('x-ratelimit-reset-requests'), 'x-ratelimit-reset-requests');
    assertGoDuration(r.headers.get('x-ratelimit-reset-tokens'), 'x-ratelimit-reset-tokens');
  }
  assert.equal(Number(a.headers.get('x-ratelimit-remaining-requests')), 49);
  assert.ok(Number(b.headers.get('x-ratelimit-remaining-requests')) <= 49, 'remaining requests do not go up');
  const tokA = Number(a.headers.get('x-ratelimit-remaining-tokens'));
  const tokB = Number(b.headers.get('x-ratelimit-remaining-tokens'));
  assert.ok(tokA <= 1000 && tokA >= 971, `remaining tokens before any charge: ${tokA}`);
  assert.ok(tokB <= 1000 - 29 + 17, `remaining tokens after a 29-token answer: ${tokB} (was ${tokA})`);
  assert.ok(tokB < tokA || tokA < 1000, 'the 29 tokens were charged');
});

test('max_inflight: with N slow streams open the next request is 429; after one finishes a request passes', needGateway, async () => {
  const { gw, fake } = env;
  const tokens = Array.from({ length: 15 }, (_, i) => ` t${i}`);
  fake.script({ tokens, delayMs: 100 });
  const s1 = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: h('inflight2') });
  const s2 = await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: h('inflight2') });
  assert.equal(s1.status, 200);
  assert.equal(s2.status, 200);
  await waitFor(() => fake.chats().length === 2, 3000, 10, 'both streams at the backend');
  fake.script(null);
  await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: h('inflight2') }), '3rd request while 2 are in flight');
  await expect429(await chat(gw.url, simpleChat('llama3.2', { stream: true }), { headers: h('inflight2') }), '3rd stream while 2 are in flight');
  assert.equal(fake.chats().length, 2, 'refused requests never reach the backend');
  // another key is not affected
  assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: h('free') }))).status, 200);
  const first = await readSSE(s1);
  assert.equal(first.done, true);
  assert.equal(first.content, tokens.join(''));
  // one place is free again (allow the gateway a moment to see the end of the stream)
  let last;
  await waitFor(async () => {
    last = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: h('inflight2') }));
    return last.status !== 429;
  }, 1500, 50, 'a request passes after one stream finished');
  assert.equal(last.status, 200, last.text);
  const second = await readSSE(s2);
  assert.equal(second.done, true, 'the second stream was not disturbed');
});

test('limits hold across worker threads: rpm+5 concurrent requests on separate connections → exactly rpm pass', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, workers: 4, limits: { auth_failures_per_minute: 0 } },
    keys: [{ name: 'rpm10', rpm: 10 }, { name: 'inflight3', maxInflight: 3 }],
  });
  try {
    fake.script({ tokens: ['x'], firstDelayMs: 300 });
    const rpmRuns = await Promise.all(Array.from({ length: 15 }, (_, i) => httpRequest(gw.url, '/v1/chat/completions', {
      method: 'POST', body: simpleChat('llama3.2', { stream: i % 2 === 0 }), headers: bearer(gw.secret('rpm10')),
    })));
    const st = rpmRuns.map((r) => r.status);
    assert.equal(st.filter((s) => s === 200).length, 10, `statuses: ${st.join(',')}`);
    assert.equal(st.filter((s) => s === 429).length, 5, `statuses: ${st.join(',')}`);
    for (const r of rpmRuns.filter((x) => x.status === 429)) {
      assert.equal(r.json?.error?.code, 'rate_limit_exceeded', r.text);
      assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    }
    assert.equal(fake.chats().length, 10, 'exactly rpm requests reached the backend');

    fake.reset();
    fake.script({ tokens: ['x'], firstDelayMs: 1000 });
    const infl = await Promise.all(Array.from({ length: 8 }, () => httpRequest(gw.url, '/v1/chat/completions', {
      method: 'POST', body: simpleChat('llama3.2'), headers: bearer(gw.secret('inflight3')),
    })));
    const si = infl.map((r) => r.status);
    assert.equal(si.filter((s) => s === 200).length, 3, `max_inflight 3, statuses: ${si.join(',')}`);
    assert.equal(si.filter((s) => s === 429).length, 5, `statuses: ${si.join(',')}`);
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

// These tests connect from loopback, which limits.auth_guard_exempt spares by
// default: they turn the exemption off ([]). clientaddr.test.mjs tests it.
test('brute-force guard: after N failed authentications the address is blocked, even with a valid key', needGateway, async () => {
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { aliases: TEST_ALIASES, limits: { auth_failures_per_minute: 3, auth_guard_exempt: [] } },
    keys: [{ name: 'good' }],
  });
  try {
    const good = gw.secret('good');
    const bad = `${good.slice(0, -1)}${good.at(-1) === 'A' ? 'B' : 'A'}`;
    assert.equal((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(good) }))).status, 200, 'before');
    for (let i = 0; i < 3; i++) {
      await expectApiError(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(bad) }), 401,
        { code: 'invalid_api_key' }, `failure ${i + 1} of 3`);
    }
    const ra = await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(good) }), 'a valid key after 3 failures',
      { min: 50, max: 60 });
    assert.ok(ra >= 50, `blocked for about 60 s: Retry-After ${ra}`);
    await expect429(await get(`${gw.url}/v1/models`, { headers: bearer(good) }), 'GET /v1/models after 3 failures', { min: 1, max: 60 });
    await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(bad) }), 'a bad key while blocked', { min: 1, max: 60 });
    await expect429(await chat(gw.url, simpleChat('llama3.2')), 'no key while blocked', { min: 1, max: 60 });
    assert.equal(fake.chats().length, 1, 'nothing reached the backend while blocked');
    assert.ok(!gw.stderr.includes(good) && !gw.stdoutRaw.join('\n').includes(good), 'the secret is not logged');
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});

test('brute-force guard: the default is 10 failures; 0 turns it off', needGateway, async () => {
  const fake = await startFake();
  const dflt = await startGateway({ backends: [fake.url], config: { limits: { auth_guard_exempt: [] } }, keys: [{ name: 'good' }] });
  const off = await startGateway({ backends: [fake.url], config: { limits: { auth_failures_per_minute: 0 } }, keys: [{ name: 'good' }] });
  try {
    for (const gw of [dflt, off]) {
      const bad = `og-${gw.keys[0].id}-${'A'.repeat(43)}`;
      for (let i = 0; i < 10; i++) {
        const r = await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(bad) }));
        assert.equal(r.status, 401, `failure ${i + 1}: ${r.text}`);
      }
    }
    await expect429(await chat(dflt.url, simpleChat('llama3.2'), { headers: bearer(dflt.secret('good')) }),
      'default: a valid key after 10 failures', { min: 50, max: 60 });
    for (let i = 0; i < 10; i++) {
      const r = await jsonOf(await chat(off.url, simpleChat('llama3.2'), { headers: bearer(`og-${off.keys[0].id}-${'B'.repeat(43)}`) }));
      assert.equal(r.status, 401, `guard off: failure ${i + 11}`);
    }
    const ok = await jsonOf(await chat(off.url, simpleChat('llama3.2'), { headers: bearer(off.secret('good')) }));
    assert.equal(ok.status, 200, `guard off (0): never blocked after 20 failures: ${ok.text}`);
  } finally {
    assert.equal(await dflt.stop(), 0);
    assert.equal(await off.stop(), 0);
    await fake.close();
  }
});

test('brute-force guard: N failures within the minute block even with successes in between', needGateway, async () => {
  // The spec counts failed authentications within a minute; a valid request
  // in between does not wipe them (else one valid key lets a client guess on
  // without limit).
  const fake = await startFake();
  const gw = await startGateway({
    backends: [fake.url],
    config: { limits: { auth_failures_per_minute: 3, auth_guard_exempt: [] } },
    keys: [{ name: 'good' }],
  });
  try {
    const good = gw.secret('good');
    const bad = `og-${gw.keys[0].id}-${'C'.repeat(43)}`;
    const seq = [];
    for (const k of [bad, bad, good, bad]) {
      seq.push((await jsonOf(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(k) }))).status);
    }
    assert.deepEqual(seq, [401, 401, 200, 401]);
    await expect429(await chat(gw.url, simpleChat('llama3.2'), { headers: bearer(good) }),
      'a valid key after 3 failures (and one success) within the minute', { min: 50, max: 60 });
  } finally {
    assert.equal(await gw.stop(), 0);
    await fake.close();
  }
});
