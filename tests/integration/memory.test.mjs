// Memory given back: large requests do not leave the process larger for good
// (cli/main.c malloc_policy). Measured on the release build only: a
// sanitizer's allocator keeps freed memory on purpose.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { needGateway, startFake, startGateway, runGateway, waitFor, rssKiB } from './harness.mjs';

test('ten concurrent 10 MB requests: RSS comes back near where it was', needGateway, async (t) => {
  const v = await runGateway(['--version']);
  if (/sanitizers/.test(v.stdout)) {
    t.skip(`a sanitized build (${v.stdout.trim()}) keeps freed memory on purpose`);
    return;
  }
  const fake = await startFake({});
  const gw = await startGateway({ backends: [fake.url], config: { limits: { max_body_bytes: 32 << 20 } } });
  try {
    const before = rssKiB(gw.proc.pid);
    const content = 'x'.repeat(10 << 20);
    const body = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content }] });
    const rs = await Promise.all(Array.from({ length: 10 }, async () => {
      const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { status: r.status, text: await r.text() };
    }));
    for (const r of rs) assert.equal(r.status, 200, r.text.slice(0, 200));
    await waitFor(() => gw.accessLog('/v1/chat/completions').length === 10, 5000, 20, 'ten requests complete');
    const peak = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))[1]);
    const after = rssKiB(gw.proc.pid);
    assert.ok(peak - before > 100 * 1024, `the requests did use memory (peak ${peak} KiB, before ${before} KiB)`);
    assert.ok(after - before < 24 * 1024, `RSS ${before} KiB before, ${after} KiB after (peak ${peak} KiB)`);
  } finally {
    await gw.stop();
    await fake.close();
  }
});

// One long native line (tool calls on the done line can be megabytes) is held
// once per stream, not twice: the pending line is let go as soon as it has
// been translated, and a drained output buffer gives its memory back.
test('ten streams each receiving one 15 MB line: peak RSS about one copy per stream', needGateway, async (t) => {
  const v = await runGateway(['--version']);
  if (/sanitizers/.test(v.stdout)) {
    t.skip(`a sanitized build (${v.stdout.trim()}) keeps freed memory on purpose`);
    return;
  }
  const fake = await startFake({});
  const line = 'y'.repeat(15 << 20);
  fake.script(() => ({ tokens: [line] }));
  const gw = await startGateway({ backends: [fake.url] });
  try {
    const before = rssKiB(gw.proc.pid);
    const body = { model: 'llama3.2', stream: true, messages: [{ role: 'user', content: 'long' }] };
    const rs = await Promise.all(Array.from({ length: 10 }, async () => {
      const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await r.text();
      return { status: r.status, bytes: text.length, done: text.includes('data: [DONE]') };
    }));
    for (const r of rs) {
      assert.equal(r.status, 200);
      assert.ok(r.done && r.bytes > 15 << 20, `a whole stream (${r.bytes} bytes)`);
    }
    await waitFor(() => gw.accessLog('/v1/chat/completions').length === 10, 5000, 20, 'ten streams complete');
    const peak = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))[1]);
    const after = rssKiB(gw.proc.pid);
    t.diagnostic(`RSS before ${before} KiB, peak ${peak} KiB (+${peak - before}), after ${after} KiB`);
    // one copy of each line is 10 x 15 MiB = 150 MiB; two copies, 300 MiB
    assert.ok(peak - before < 220 * 1024, `peak ${peak} KiB, ${peak - before} KiB over the ${before} KiB before`);
    assert.ok(after - before < 24 * 1024, `RSS ${before} KiB before, ${after} KiB after (peak ${peak} KiB)`);
  } finally {
    await gw.stop();
    await fake.close();
  }
});

// A stream that has begun can no longer fail over, so it keeps neither the
// client's body nor the native one built from it (engine.c first_answer):
// an agent's request is often hundreds of kilobytes, and its stream stays
// open for minutes.
test('ten open streams of 4 MB requests: once answering, none holds its body', needGateway, async (t) => {
  const v = await runGateway(['--version']);
  if (/sanitizers/.test(v.stdout)) {
    t.skip(`a sanitized build (${v.stdout.trim()}) keeps freed memory on purpose`);
    return;
  }
  const fake = await startFake({});
  fake.script(() => ({ tokens: ['first', 'never'], stallAfter: 1 }));
  const gw = await startGateway({ backends: [fake.url], config: { limits: { max_body_bytes: 16 << 20 } } });
  const abort = new AbortController();
  try {
    const before = rssKiB(gw.proc.pid);
    const content = 'z'.repeat(4 << 20);
    const body = JSON.stringify({ model: 'llama3.2', stream: true, messages: [{ role: 'user', content }] });
    // each stream: read until its first token, then leave it open
    const firsts = await Promise.all(Array.from({ length: 10 }, async () => {
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal,
      });
      assert.equal(r.status, 200);
      const reader = r.body.getReader();
      let text = '';
      while (!text.includes('first')) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the stream stays open after its first token');
        text += Buffer.from(value).toString();
      }
      return text;
    }));
    assert.equal(firsts.length, 10);
    assert.equal(fake.chats().length, 10);
    for (const c of fake.chats()) assert.equal(c.body.messages[0].content.length, 4 << 20, 'the backend got the whole body');
    const open = rssKiB(gw.proc.pid);
    const peak = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))[1]);
    t.diagnostic(`RSS before ${before} KiB, peak ${peak} KiB, with the ten streams open ${open} KiB`);
    assert.ok(peak - before > 40 * 1024, `the bodies did use memory (peak ${peak} KiB, before ${before} KiB)`);
    // one body per stream would be 10 x 4 MiB = 40 MiB
    assert.ok(open - before < 12 * 1024, `RSS ${before} KiB before, ${open} KiB with ten streams open`);
  } finally {
    abort.abort();
    await gw.stop();
    await fake.close();
  }
});
