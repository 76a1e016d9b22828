// CORS (cors.origins; README "CORS"): preflights answered without a key and
// without reaching a backend, the headers SDKs send echoed, CORS headers on
// every answer to an allowed origin (whole, streamed, errors), none for an
// origin that is not allowed or when CORS is not configured, never
// Access-Control-Allow-Credentials, and the browser's Origin never sent on
// to a backend (the fake refuses a foreign Origin with 403, as Ollama does,
// and records the headers it got).
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  needGateway, httpRequest, waitFor, simpleChat, withGateway, TEST_ALIASES,
} from './harness.mjs';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

function corsHeaders(headers) {
  return Object.keys(headers).filter((h) => h.startsWith('access-control-'));
}

function preflight(gw, path, origin, method = 'POST', requestHeaders) {
  return httpRequest(gw.url, path, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      ...(requestHeaders ? { 'access-control-request-headers': requestHeaders } : {}),
    },
  });
}

/** The headers an answer to an allowed origin carries. */
function assertCors(r, origin, what) {
  assert.equal(r.headers['access-control-allow-origin'], origin, `${what}: Access-Control-Allow-Origin`);
  assert.match(r.headers.vary ?? '', /\bOrigin\b/, `${what}: Vary: Origin`);
  const exposed = (r.headers['access-control-expose-headers'] ?? '').split(/,\s*/);
  for (const h of ['x-request-id', 'retry-after', 'x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests',
    'x-ratelimit-reset-requests', 'x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens']) {
    assert.ok(exposed.includes(h), `${what}: ${h} exposed (${exposed})`);
  }
  assert.equal(r.headers['access-control-allow-credentials'], undefined, `${what}: never Allow-Credentials`);
}

/**
 * No CORS headers; Vary: Origin only where cors is configured (a shared cache
 * must not reuse an answer made for one Origin, or none, for another).
 */
function assertNoCors(r, what, { configured = true } = {}) {
  assert.deepEqual(corsHeaders(r.headers), [], `${what}: no CORS headers`);
  if (configured) assert.match(r.headers.vary ?? '', /\bOrigin\b/, `${what}: Vary: Origin`);
  else assert.doesNotMatch(r.headers.vary ?? '', /Origin/, `${what}: no Vary: Origin`);
}

/** A fake and a gateway with this configuration and these keys, for fn. */
const withCors = (config, keys, fn) => withGateway({ config: { aliases: TEST_ALIASES, ...config }, keys }, fn);

const ORIGINS = { cors: { origins: [APP, 'http://localhost:5173'] } };

test('preflight from an allowed origin: 204, no key, no backend, the SDKs\' headers echoed', needGateway, async () => {
  await withCors(ORIGINS, [{ name: 'k', rpm: 100 }], async (gw, fake) => {
    // the openai SDK from a browser
    const openaiHeaders = 'authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,'
      + 'x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout';
    let r = await preflight(gw, '/v1/chat/completions', APP, 'POST', openaiHeaders);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    assert.equal(r.headers['access-control-allow-methods'], 'POST');
    assert.equal(r.headers['access-control-allow-headers'], openaiHeaders.split(',').join(', '));
    assert.equal(r.headers['access-control-max-age'], '7200');
    assertCors(r, APP, 'preflight');
    assert.ok(r.headers['x-request-id'], 'x-request-id on a preflight too');
    assert.doesNotMatch(gw.stderr, /cors: not in force/, 'no "not in force yet" notice any more');

    // Anthropic's SDK (dangerouslyAllowBrowser)
    const anth = 'anthropic-dangerous-direct-browser-access,anthropic-version,content-type,x-api-key,anthropic-beta';
    r = await preflight(gw, '/v1/messages', 'http://localhost:5173', 'POST', anth);
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-headers'], anth.split(',').join(', '));
    assertCors(r, 'http://localhost:5173', 'anthropic preflight');
    // OpenAI's organization/project headers and api-key (Azure style), on the native API
    r = await preflight(gw, '/api/chat', APP, 'POST', 'OpenAI-Organization, openai-project, api-key, x-request-id');
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-headers'], 'OpenAI-Organization, openai-project, api-key, x-request-id');
    // a route's own methods
    r = await preflight(gw, '/api/delete', APP, 'DELETE', 'authorization');
    assert.equal(r.headers['access-control-allow-methods'], 'DELETE');
    r = await preflight(gw, '/v1/models', APP, 'GET', 'authorization');
    assert.equal(r.headers['access-control-allow-methods'], 'GET');
    // the host compares without case, a default port as none
    r = await preflight(gw, '/v1/chat/completions', 'https://APP.example.com:443', 'POST', 'authorization');
    assert.equal(r.headers['access-control-allow-origin'], 'https://APP.example.com:443', 'the origin echoed as sent');
    // a header no SDK sends is left out: the browser then refuses, naming it
    r = await preflight(gw, '/v1/chat/completions', APP, 'POST', 'authorization, x-custom-thing, content-type');
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-headers'], 'authorization, content-type');
    // no Access-Control-Request-Headers: no Allow-Headers
    r = await preflight(gw, '/v1/chat/completions', APP, 'POST');
    assert.equal(r.headers['access-control-allow-headers'], undefined);
    assertCors(r, APP, 'a preflight without request headers');

    assert.equal(fake.requests.filter((q) => !['/api/tags', '/api/ps', '/api/version', '/api/show'].includes(q.path)).length, 0,
      'no preflight reached the backend');
    await waitFor(() => gw.stdoutLines.filter((l) => l.method === 'OPTIONS').length === 8, 5000, 20, 'eight access-log lines');
    for (const l of gw.stdoutLines.filter((x) => x.method === 'OPTIONS')) {
      assert.equal(l.status, 204);
      assert.equal(l.key_id, null, 'no key was asked for');
    }
  });
});

test('preflight from an origin that is not allowed: 204 without CORS headers', needGateway, async () => {
  await withCors(ORIGINS, [{ name: 'k' }], async (gw) => {
    for (const origin of [EVIL, 'http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.net', 'null']) {
      const r = await preflight(gw, '/v1/chat/completions', origin, 'POST', 'authorization,content-type');
      assert.equal(r.status, 204, `${origin}: ${r.text}`);
      assertNoCors(r, origin);
    }
    // an OPTIONS that is not a preflight is an ordinary request (no key: 401)
    const r = await httpRequest(gw.url, '/v1/chat/completions', { method: 'OPTIONS', headers: { origin: APP } });
    assert.equal(r.status, 401);
    assertCors(r, APP, 'a 401 to an allowed origin');
    // nor is one with a body
    const withBody = await httpRequest(gw.url, '/v1/chat/completions', {
      method: 'OPTIONS', body: '{}', headers: { origin: APP, 'access-control-request-method': 'POST' },
    });
    assert.equal(withBody.status, 401, 'an OPTIONS with a body is not a preflight');
    // an explicit Content-Length: 0 is still no body
    const zero = await httpRequest(gw.url, '/v1/chat/completions', {
      method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'content-length': '0' },
    });
    assert.equal(zero.status, 204, 'Content-Length: 0 is a preflight');
    assertCors(zero, APP, 'a preflight with Content-Length: 0');
  });
});

test('no cors configured (the default): no CORS headers anywhere, preflights are ordinary requests', needGateway, async () => {
  await withCors({}, [{ name: 'k' }], async (gw, fake) => {
    const p = await preflight(gw, '/v1/chat/completions', APP, 'POST', 'authorization,content-type');
    assert.equal(p.status, 401, 'no preflight handling: the key is asked for');
    assertNoCors(p, 'preflight without cors', { configured: false });
    const r = await httpRequest(gw.url, '/v1/chat/completions', {
      method: 'POST', body: simpleChat('llama3.2'), headers: { origin: APP, authorization: `Bearer ${gw.secret('k')}` },
    });
    assert.equal(r.status, 200, r.text);
    assertNoCors(r, 'a request without cors', { configured: false });
    assert.equal(fake.chats()[0].headers.origin, undefined, 'Origin is not forwarded');
  });
});

test('answers to an allowed origin carry CORS headers: whole, streamed, native, errors; Origin never reaches the backend', needGateway, async () => {
  await withCors(ORIGINS, [{ name: 'k', rpm: 8 }, { name: 'free' }], async (gw, fake) => {
    const key = { authorization: `Bearer ${gw.secret('k')}` };
    const free = { authorization: `Bearer ${gw.secret('free')}` };
    const chatReq = (extra = {}, headers = {}) => httpRequest(gw.url, '/v1/chat/completions', {
      method: 'POST', body: simpleChat('llama3.2', extra), headers: { origin: APP, ...key, ...headers },
    });
    let r = await chatReq();
    assert.equal(r.status, 200, r.text);
    assertCors(r, APP, 'chat');
    assert.ok(r.headers['x-ratelimit-remaining-requests'], 'rate-limit headers to expose');

    r = await chatReq({ stream: true });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    assert.match(r.text, /data: \[DONE\]/);
    assertCors(r, APP, 'a streamed chat');

    r = await httpRequest(gw.url, '/api/chat', {
      method: 'POST', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }, headers: { origin: APP, ...key },
    });
    assert.equal(r.status, 200, r.text);
    assertCors(r, APP, 'native /api/chat (streamed NDJSON)');
    r = await httpRequest(gw.url, '/api/generate', {
      method: 'POST', body: { model: 'llama3.2', prompt: 'hi', stream: false }, headers: { origin: APP, ...key },
    });
    assert.equal(r.status, 200, r.text);
    r = await httpRequest(gw.url, '/api/show', { method: 'POST', body: { model: 'llama3.2' }, headers: { origin: APP, ...key } });
    assert.equal(r.status, 200, r.text);
    assertCors(r, APP, 'native /api/show');

    // what reached the backend: no Origin on any route
    const relayed = fake.requests.filter((q) => ['/api/chat', '/api/generate'].includes(q.path));
    assert.equal(relayed.length, 4, 'the three chats and the generate reached the backend');
    for (const q of fake.requests) assert.equal(q.headers.origin, undefined, `no Origin on ${q.method} ${q.path}`);

    // errors, so that a page can read them: 401, 404, 400, and the 429 with its Retry-After
    r = await chatReq({}, { authorization: 'Bearer og-nope' });
    assert.equal(r.status, 401);
    assertCors(r, APP, '401');
    r = await httpRequest(gw.url, '/v1/nothing', { headers: { origin: APP, ...key } });
    assert.equal(r.status, 404);
    assertCors(r, APP, '404');
    r = await httpRequest(gw.url, '/v1/chat/completions', { method: 'POST', body: '{', headers: { origin: APP, ...key } });
    assert.equal(r.status, 400);
    assertCors(r, APP, '400');
    for (let i = 0; i < 10 && r.status !== 429; i++) r = await chatReq();
    assert.equal(r.status, 429, 'rpm 8 is spent');
    assert.ok(r.headers['retry-after'], 'Retry-After');
    assertCors(r, APP, '429');

    // an origin that is not allowed is still served (CORS is the browser's
    // check), without CORS headers
    r = await httpRequest(gw.url, '/v1/models', { headers: { origin: EVIL, ...free } });
    assert.equal(r.status, 200);
    assertNoCors(r, 'a request from a foreign origin');
    r = await httpRequest(gw.url, '/healthz', { headers: { origin: APP } });
    assertCors(r, APP, '/healthz');
    // no Origin (not a browser): no CORS headers
    r = await httpRequest(gw.url, '/v1/models', { headers: free });
    assert.equal(r.status, 200);
    assertNoCors(r, 'no Origin');
  });
});

test('"*" allows any http(s) origin, echoed with Vary, never with credentials; reloaded on SIGHUP', needGateway, async () => {
  await withCors({ cors: { origins: ['*'] } }, [{ name: 'k' }], async (gw) => {
    let r = await preflight(gw, '/v1/chat/completions', EVIL, 'POST', 'authorization');
    assert.equal(r.status, 204);
    assertCors(r, EVIL, '"*" preflight');
    r = await httpRequest(gw.url, '/v1/models', { headers: { origin: 'http://127.0.0.1:3000', authorization: `Bearer ${gw.secret('k')}` } });
    assertCors(r, 'http://127.0.0.1:3000', '"*" request');
    r = await preflight(gw, '/v1/chat/completions', 'null', 'POST', 'authorization');
    assertNoCors(r, 'the "null" origin');

    // reload to a list without the origin: its headers are gone
    const { writeFileSync, readFileSync } = await import('node:fs');
    const cfg = JSON.parse(readFileSync(gw.configPath, 'utf8'));
    cfg.cors.origins = [APP];
    writeFileSync(gw.configPath, JSON.stringify(cfg));
    const from = gw.stderr.length;
    gw.proc.kill('SIGHUP');
    await gw.waitForStderr(/reload \d+ in force: configuration/, 10000, from);
    r = await preflight(gw, '/v1/chat/completions', EVIL, 'POST', 'authorization');
    assertNoCors(r, 'after the reload');
    r = await preflight(gw, '/v1/chat/completions', APP, 'POST', 'authorization');
    assertCors(r, APP, 'after the reload');
  });
});

test('native_api off: a preflight to a native route gets its 404, as every request there does', needGateway, async () => {
  await withCors({ ...ORIGINS, native_api: false }, [{ name: 'k' }], async (gw, fake) => {
    for (const path of ['/api/chat', '/api/pull', '/api/tags', '/api/nothing']) {
      const r = await preflight(gw, path, APP, path === '/api/tags' ? 'GET' : 'POST', 'authorization,content-type');
      assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.equal(r.headers['access-control-allow-methods'], undefined, `${path}: no method offered`);
      assert.match(JSON.parse(r.text).error, /native_api: false/, `${path}: Ollama's shape, the reason`);
    }
    // the OpenAI routes still take preflights
    const ok = await preflight(gw, '/v1/chat/completions', APP, 'POST', 'authorization,content-type');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-methods'], 'POST');
    assert.equal(fake.chats().length + fake.requestsTo('/api/pull').length, 0, 'nothing reached the backend');
  });
});
