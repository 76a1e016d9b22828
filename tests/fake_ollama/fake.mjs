// A fake Ollama server for the gateway's tests and benchmark.
//
// It speaks Ollama's native API the way /work/shared/PROTOCOL.md sections 1
// and 2 describe it (NDJSON streaming, "stream" absent = true, {"error":"…"}
// bodies, metrics on the done line only, zero metrics omitted, Host/Origin
// gating), plus an OpenAI-format /v1/chat/completions (Ollama's own layer,
// v0.32.6+ shape) so a plain proxy can be benchmarked against the same
// answers.
//
// Routes: GET|HEAD /, GET|HEAD /api/version, GET|HEAD /api/tags, GET /api/ps,
// POST /api/show, POST /api/chat, POST /api/generate (same scenarios, lines
// carry "response" instead of "message"), POST /api/embed (deterministic
// normalised vectors, 8 dimensions), POST /v1/chat/completions, GET
// /v1/models. Anything else: gin's plain-text 404 / 405.
// With opts.strict (default) requests are validated as Ollama would: decode
// errors 400, option-type and format errors 500, capability errors 400
// (think on a non-thinking model, tools on a model without tools, chat on an
// embedding model), non-loopback Host or foreign Origin → bare 403.
//
// Library use (tests):
//   import { startFake } from '../fake_ollama/fake.mjs';
//   const fake = await startFake({ models: [...], record: true });
//   fake.script((body, rec) => ({ tokens: ['a', 'b'] }));
//   ... fake.requests ... await fake.close();
//
// CLI use (benchmark):
//   node tests/fake_ollama/fake.mjs --port N [--tokens 32] [--delay-ms 0] [--models a,b]
//   prints {"port":N} on stdout once listening; exits on SIGTERM/SIGINT.
//
// A scenario (what script() returns; every key optional):
//   tokens: [string]         content deltas, one native line each
//   thinking: [string]       thinking deltas, one line each, before the content
//   toolCalls: [{name, arguments (object), id?}]
//   toolCallsOn: 'line' | 'lines' | 'done'   all on one line after the content
//                            (default), one line per call, or on the done line
//   omitToolCallIds: true    tool calls without "id" (Ollama before v0.12.10)
//   doneContent: string      content carried by the done:true line itself
//   doneReason: string|null  default "stop"; null omits done_reason
//   metrics: false | {...}   false omits every metric; an object overrides
//                            the defaults (a 0 or undefined value is omitted,
//                            as Ollama's omitempty does)
//   lines: [object|string]   raw NDJSON lines, replacing everything above
//   delayMs: n               pause before each line after the first
//   firstDelayMs: n          pause before the response headers
//   firstLineDelayMs: n      pause after the headers, before the first line
//   status: n, error: "msg"  answer with this status and {"error":"msg"}
//   body: object|string      ... or with this body instead (with status)
//   errorAfter: n, errorMessage: "…"   after n lines write {"error":"…"} and
//                            end the response (no done line)
//   garbageAfter: n, garbage: "…"      after n lines write a non-JSON line,
//                            then carry on
//   dropAfter: n             after n lines destroy the socket
//   partial: "…"             with dropAfter (streamed): first write these bytes
//                            (half a line, no newline), then drop
//   stallAfter: n            after n lines write nothing more, ever
//   hang: true               never answer (not even headers)
// "after n lines" counts the data lines written (thinking, content and
// tool-call lines; the done line is the last one). For a non-stream request
// errorAfter gives a 500, dropAfter/hang/stallAfter drop or hang, and
// garbageAfter answers 200 with a non-JSON body.
//
// Each recorded request (fake.requests, when opts.record !== false):
//   {id, method, path, query, headers, rawBody, body (parsed JSON or null),
//    remotePort, receivedAt, status, headersSentAt, linesWritten,
//    finished, finishedAt, closedAt, aborted}
// Times are performance.now() milliseconds of this process. closedAt is set
// when the connection closed before the response was complete (the client
// went away); finished is true when the whole response was written.

import http from 'node:http';
import os from 'node:os';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export const DEFAULT_MODELS = [
  { name: 'llama3.2:latest', family: 'llama', parameter_size: '3.2B',
    quantization_level: 'Q4_K_M', capabilities: ['completion', 'tools'], context_length: 131072 },
  { name: 'qwen3:latest', family: 'qwen3', parameter_size: '8.2B',
    quantization_level: 'Q4_K_M', capabilities: ['completion', 'tools', 'thinking'], context_length: 40960 },
  { name: 'nomic-embed-text:latest', family: 'nomic-bert', parameter_size: '137M',
    quantization_level: 'F16', capabilities: ['embedding'], context_length: 2048, embedding_length: 8 },
  { name: 'hf.co/org/repo:Q4', family: 'llama', parameter_size: '1B',
    quantization_level: 'Q4_0', capabilities: ['completion'], context_length: 8192 },
];

const DEFAULT_METRICS = {
  total_duration: 182242375,
  load_duration: 41295167,
  prompt_eval_count: 26,
  prompt_eval_duration: 24573166,
  eval_duration: 115959084,
};

const FLOAT_OPTIONS = new Set(['temperature', 'top_p', 'min_p', 'typical_p', 'repeat_penalty',
  'presence_penalty', 'frequency_penalty']);
const INT_OPTIONS = new Set(['num_keep', 'seed', 'num_predict', 'top_k', 'repeat_last_n', 'num_ctx',
  'num_batch', 'num_gpu', 'main_gpu', 'num_thread', 'draft_num_predict']);
const THINK_LEVELS = new Set(['low', 'medium', 'high', 'max']);

class HttpError extends Error {
  constructor(status, message, raw) {
    super(message);
    this.status = status;
    this.raw = raw; // true: empty body (Ollama's host/origin 403)
  }
}

// ---------------------------------------------------------------- helpers

/** Ollama's model name key: lower case, ":latest" when the name has no tag. */
export function modelKey(name) {
  let n = String(name).toLowerCase();
  const last = n.slice(n.lastIndexOf('/') + 1);
  if (!last.includes(':')) n += ':latest';
  return n;
}

function baseName(name) {
  // "llama3.2:latest" -> "llama3.2" (what Ollama's messages print)
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
}

let tsCounter = 0;
/** RFC 3339 with nanoseconds, UTC, like Go's time.Now().UTC() marshalled. */
function rfc3339nano() {
  const iso = new Date().toISOString(); // 2026-08-21T10:00:00.123Z
  const sub = String((process.hrtime()[1] % 1000000) + (tsCounter++ % 7)).padStart(6, '0').slice(0, 6);
  return `${iso.slice(0, 23)}${sub}Z`;
}

function digestOf(name) {
  return createHash('sha256').update(name).digest('hex');
}

function normalizeModel(m, i) {
  const o = typeof m === 'string' ? { name: m } : { ...m };
  const key = modelKey(o.name);
  if (!o.name.slice(o.name.lastIndexOf('/') + 1).includes(':')) o.name = `${o.name}:latest`;
  const known = DEFAULT_MODELS.find((d) => modelKey(d.name) === key);
  if (!o.capabilities) {
    o.capabilities = known?.capabilities
      ?? (/embed/.test(key) ? ['embedding']
        : /qwen3|deepseek-r1|gpt-oss/.test(key) ? ['completion', 'tools', 'thinking']
          : ['completion', 'tools']);
  }
  o.family ??= known?.family ?? 'llama';
  o.parameter_size ??= known?.parameter_size ?? '7B';
  o.quantization_level ??= known?.quantization_level ?? 'Q4_K_M';
  o.context_length ??= known?.context_length ?? 4096;
  if (o.capabilities.includes('embedding')) o.embedding_length ??= known?.embedding_length ?? 8;
  o.size ??= 1000000000 + i * 1000;
  o.digest ??= digestOf(o.name);
  o.modified_at ??= `2026-0${1 + (i % 9)}-1${i % 10}T10:00:00.000000000Z`;
  o.key = key;
  return o;
}

function details(m) {
  return {
    parent_model: '',
    format: 'gguf',
    family: m.family,
    families: [m.family],
    parameter_size: m.parameter_size,
    quantization_level: m.quantization_level,
  };
}

function tagsEntry(m) {
  return {
    name: m.name,
    model: m.name,
    modified_at: m.modified_at,
    size: m.size,
    digest: m.digest,
    details: details(m),
  };
}

function isLoopbackOrPrivateHost(hostname, extra) {
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h === extra) return true;
  if (h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal')) return true;
  if (h === '::1' || h === '0.0.0.0' || h === '::') return true;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (m) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    return a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31);
  }
  return false;
}

function hostOk(hostHeader) {
  if (!hostHeader) return true;
  let h = hostHeader;
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'));
  else if (h.includes(':')) h = h.slice(0, h.lastIndexOf(':'));
  return isLoopbackOrPrivateHost(h, os.hostname().toLowerCase());
}

function originOk(origin) {
  if (origin === undefined) return true;
  if (/^(app|file|tauri|vscode-webview|vscode-file):\/\//.test(origin)) return true;
  return /^https?:\/\/(localhost|127\.0\.0\.1|0\.0\.0\.0)(:\d+)?$/.test(origin);
}

function goType(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return 'number';
  return typeof v; // string, boolean, object
}

function decodeErr(v, field, want) {
  return new HttpError(400, `json: cannot unmarshal ${goType(v)} into Go struct field ${field} of type ${want}`);
}

/** Validate a native chat body the way Ollama's decoder and handler would. */
function validateChat(body, strict) {
  if (body === undefined) throw new HttpError(400, 'missing request body');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, `json: cannot unmarshal ${goType(body)} into Go value of type api.ChatRequest`);
  }
  if (body.model !== undefined && typeof body.model !== 'string') {
    throw decodeErr(body.model, 'ChatRequest.model', 'string');
  }
  if (!strict) return;
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw decodeErr(body.stream, 'ChatRequest.stream', 'bool');
  }
  if (body.messages !== undefined && body.messages !== null && !Array.isArray(body.messages)) {
    throw decodeErr(body.messages, 'ChatRequest.messages', '[]api.Message');
  }
  for (const msg of body.messages ?? []) {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      throw decodeErr(msg, 'ChatRequest.messages', 'api.Message');
    }
    for (const f of ['role', 'content', 'thinking', 'tool_name', 'tool_call_id']) {
      if (msg[f] !== undefined && msg[f] !== null && typeof msg[f] !== 'string') {
        throw decodeErr(msg[f], `ChatRequest.messages.${f}`, 'string');
      }
    }
    if (msg.images !== undefined && msg.images !== null) {
      if (!Array.isArray(msg.images)) throw decodeErr(msg.images, 'ChatRequest.messages.images', '[]api.ImageData');
      for (const img of msg.images) {
        if (typeof img !== 'string') throw decodeErr(img, 'ChatRequest.messages.images', '[]uint8');
        const bad = img.search(/[^A-Za-z0-9+/=]/);
        if (bad >= 0 || img.length % 4 !== 0) {
          throw new HttpError(400, `illegal base64 data at input byte ${bad >= 0 ? bad : img.length}`);
        }
      }
    }
    if (msg.tool_calls !== undefined && msg.tool_calls !== null) {
      if (!Array.isArray(msg.tool_calls)) throw decodeErr(msg.tool_calls, 'ChatRequest.messages.tool_calls', '[]api.ToolCall');
      for (const tc of msg.tool_calls) {
        const fn = tc?.function;
        if (!fn || typeof fn !== 'object') throw decodeErr(fn, 'ChatRequest.messages.tool_calls.function', 'api.ToolCallFunction');
        if (typeof fn.name !== 'string') throw decodeErr(fn.name, 'ChatRequest.messages.tool_calls.function.name', 'string');
        if (fn.arguments !== undefined && fn.arguments !== null
            && (typeof fn.arguments !== 'object' || Array.isArray(fn.arguments))) {
          throw decodeErr(fn.arguments, 'ChatRequest.messages.tool_calls.function.arguments', 'api.ToolCallFunctionArguments');
        }
      }
    }
  }
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) {
    throw decodeErr(body.tools, 'ChatRequest.tools', 'api.Tools');
  }
  if (body.think !== undefined && body.think !== null) {
    if (typeof body.think !== 'boolean' && !(typeof body.think === 'string' && THINK_LEVELS.has(body.think))) {
      throw new HttpError(400, `invalid think value: ${JSON.stringify(body.think)} (must be "high", "medium", "low", "max", true, or false)`);
    }
  }
  if (body.keep_alive !== undefined && body.keep_alive !== null
      && typeof body.keep_alive !== 'number' && typeof body.keep_alive !== 'string') {
    throw new HttpError(400, 'json: unsupported type for keep_alive');
  }
  if (body.options !== undefined && body.options !== null) {
    if (typeof body.options !== 'object' || Array.isArray(body.options)) {
      throw decodeErr(body.options, 'ChatRequest.options', 'map[string]interface {}');
    }
  }
}

/** Errors Ollama raises after model lookup (option types, format): HTTP 500. */
function validateLate(body) {
  for (const [k, v] of Object.entries(body.options ?? {})) {
    if (FLOAT_OPTIONS.has(k) && typeof v !== 'number') {
      throw new HttpError(500, `option "${k}" must be of type float32`);
    }
    if (INT_OPTIONS.has(k) && typeof v !== 'number') {
      throw new HttpError(500, `option "${k}" must be of type integer`);
    }
    if (k === 'stop' && !(Array.isArray(v) && v.every((s) => typeof s === 'string'))) {
      throw new HttpError(500, `option "${k}" must be of type array`);
    }
    if (k === 'use_mmap' && typeof v !== 'boolean') {
      throw new HttpError(500, `option "${k}" must be of type boolean`);
    }
  }
  const f = body.format;
  if (f !== undefined && f !== null && f !== '' && f !== 'json'
      && !(typeof f === 'object' && !Array.isArray(f))) {
    throw new HttpError(500, `invalid format: ${JSON.stringify(f)}; expected "json" or a valid JSON Schema object`);
  }
}

/** A native chat line as /api/generate would send it. */
function toGenerate(l) {
  if (typeof l !== 'object' || l === null || !l.message) return l;
  const { message, ...rest } = l;
  const o = { model: rest.model, created_at: rest.created_at, response: message.content ?? '' };
  if (message.thinking) o.thinking = message.thinking;
  if (message.tool_calls) o.tool_calls = message.tool_calls;
  for (const [k, v] of Object.entries(rest)) if (!(k in o)) o[k] = v;
  if (l.done) o.context = [1, 2, 3];
  return o;
}

/** A deterministic L2-normalised vector for text (float32-representable values). */
export function embedVector(text, dim = 8, dimensions) {
  const h = createHash('sha256').update(String(text)).digest();
  const n = dimensions && dimensions > 0 && dimensions < dim ? dimensions : dim;
  const v = Array.from({ length: n }, (_, i) => (h[i % h.length] - 127.5) / 128);
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.fround(x / norm));
}

// ---------------------------------------------------------------- the server

/**
 * Start a fake Ollama on 127.0.0.1.
 * opts: port (0 = any), models (names or objects; default DEFAULT_MODELS),
 *       loaded (names for /api/ps; default []), record (default true),
 *       strict (validate like Ollama; default true), tokens (number: default
 *       answer is that many " wN" tokens instead of ["Hello"," from"," <model>"]),
 *       delayMs (default scenario's delay between lines), version.
 */
export async function startFake(opts = {}) {
  const record = opts.record !== false;
  const strict = opts.strict !== false;
  const version = opts.version ?? '0.33.0';
  let models = (opts.models ?? DEFAULT_MODELS).map(normalizeModel);
  let loaded = (opts.loaded ?? []).map((n) => modelKey(n));
  let scriptFn = null;
  let down = false;
  let reqCounter = 0;
  let toolCallCounter = 0;
  const requests = [];
  const live = new Set();

  const findModel = (name) => {
    const k = modelKey(name);
    return models.find((m) => m.key === k);
  };

  const defaultTokens = (model) => {
    if (typeof opts.tokens === 'number') {
      return Array.from({ length: opts.tokens }, (_, i) => ` w${i}`);
    }
    return ['Hello', ' from', ` ${model}`];
  };

  const nextToolCallId = () => `call_${(++toolCallCounter).toString(36).padStart(8, '0')}`;

  async function scenarioFor(body, rec, m) {
    let sc = null;
    if (scriptFn) sc = await scriptFn(body, rec);
    if (sc) return sc;
    const thinkOn = m.capabilities.includes('thinking') && body.think !== false;
    return {
      tokens: defaultTokens(body.model),
      thinking: thinkOn ? ['Thinking', ' about', ' it'] : undefined,
      delayMs: opts.delayMs ?? 0,
    };
  }

  // Build the native lines of a scenario (objects), and the count of data lines.
  function buildLines(sc, model) {
    if (sc.lines) {
      return sc.lines;
    }
    const out = [];
    const msg = (extra) => ({ role: 'assistant', content: '', ...extra });
    for (const t of sc.thinking ?? []) {
      out.push({ model, created_at: '', message: msg({ thinking: t }), done: false });
    }
    for (const t of sc.tokens ?? []) {
      out.push({ model, created_at: '', message: msg({ content: t }), done: false });
    }
    const calls = (sc.toolCalls ?? []).map((c, i) => {
      const tc = { function: { index: i, name: c.name, arguments: c.arguments ?? {} } };
      if (!sc.omitToolCallIds) tc.id = c.id ?? nextToolCallId();
      return tc.id ? { id: tc.id, function: tc.function } : tc;
    });
    const on = sc.toolCallsOn ?? 'line';
    if (calls.length && on === 'line') {
      out.push({ model, created_at: '', message: msg({ tool_calls: calls }), done: false });
    } else if (calls.length && on === 'lines') {
      for (const c of calls) out.push({ model, created_at: '', message: msg({ tool_calls: [c] }), done: false });
    }
    const done = { model, created_at: '', message: msg({ content: sc.doneContent ?? '' }), done: true };
    if (calls.length && on === 'done') done.message.tool_calls = calls;
    const reason = sc.doneReason === undefined ? 'stop' : sc.doneReason;
    if (reason !== null) done.done_reason = reason;
    if (sc.metrics !== false) {
      const evalCount = (sc.tokens?.length ?? 0) + (sc.thinking?.length ?? 0) + calls.length
        + (sc.doneContent ? 1 : 0);
      const mt = { ...DEFAULT_METRICS, eval_count: evalCount, ...(sc.metrics ?? {}) };
      for (const k of ['total_duration', 'load_duration', 'prompt_eval_count',
        'prompt_eval_duration', 'eval_count', 'eval_duration']) {
        if (mt[k]) done[k] = mt[k];
      }
    }
    out.push(done);
    return out;
  }

  function sendJson(res, rec, status, obj, contentType = 'application/json; charset=utf-8') {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    if (rec) { rec.status = status; rec.headersSentAt = performance.now(); }
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  function sendError(res, rec, err, openai) {
    if (err.raw) {
      if (rec) rec.status = err.status;
      res.writeHead(err.status, { 'Content-Length': 0 });
      res.end();
      return;
    }
    if (openai) {
      const type = err.status === 400 ? 'invalid_request_error'
        : err.status === 404 ? 'not_found_error' : 'api_error';
      sendJson(res, rec, err.status, { error: { message: err.message, type, param: null, code: null } });
    } else {
      sendJson(res, rec, err.status, { error: err.message });
    }
  }

  // Per-request context: abort signal fired when the response closes.
  function makeCtx(res) {
    const ac = new AbortController();
    const ctx = {
      signal: ac.signal,
      closed: false,
      abort: () => ac.abort(),
      async sleep(ms) {
        if (!ms || ms <= 0 || ctx.closed) return !ctx.closed;
        try {
          await sleepTimer(ms, undefined, { signal: ac.signal });
        } catch { /* aborted */ }
        return !ctx.closed;
      },
      waitClose() {
        if (ctx.closed) return Promise.resolve();
        return new Promise((r) => ac.signal.addEventListener('abort', r, { once: true }));
      },
      // resolves when the last write has reached the kernel (before a deliberate drop)
      flushed: Promise.resolve(),
      async write(str) {
        if (ctx.closed || res.destroyed) return false;
        let done;
        ctx.flushed = new Promise((r) => { done = r; });
        if (!res.write(str, () => done())) {
          await new Promise((r) => {
            const done = () => { res.off('drain', done); ac.signal.removeEventListener('abort', done); r(); };
            res.on('drain', done);
            ac.signal.addEventListener('abort', done, { once: true });
          });
        }
        return !ctx.closed && !res.destroyed;
      },
    };
    res.on('close', () => { ctx.closed = true; ac.abort(); });
    live.add(ctx);
    res.on('close', () => live.delete(ctx));
    return ctx;
  }

  // ------------------------------------------------------------ /api/chat
  async function handleChat(req, res, rec, body, ctx) {
    validateChat(body, strict);
    if (!body.model) throw new HttpError(400, 'model is required');
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model '${body.model}' not found`);
    if (strict) {
      const caps = m.capabilities;
      if (!caps.includes('completion')) throw new HttpError(400, `"${baseName(body.model)}" does not support chat`);
      if (body.tools?.length && !caps.includes('tools')) {
        throw new HttpError(400, `registry.ollama.ai/library/${m.name} does not support tools`);
      }
      if (body.think !== undefined && body.think !== null && body.think !== false && !caps.includes('thinking')) {
        throw new HttpError(400, `"${baseName(body.model)}" does not support thinking`);
      }
      validateLate(body);
    }
    const sc = await scenarioFor(body, rec, m);
    const stream = body.stream !== false; // absent = true
    await answer(res, rec, ctx, sc, body, stream, 'native');
  }

  // ------------------------------------------------------------ /v1/chat/completions
  async function handleOpenAIChat(req, res, rec, body, ctx) {
    if (body === undefined || body === null || typeof body !== 'object') {
      throw new HttpError(400, 'invalid request');
    }
    if (!body.model) throw new HttpError(400, 'model is required');
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw new HttpError(400, "[] is too short - 'messages'");
    }
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model '${body.model}' not found`);
    const sc = await scenarioFor(body, rec, m);
    await answer(res, rec, ctx, sc, body, body.stream === true, 'openai');
  }

  // ------------------------------------------------------------ /api/generate
  async function handleGenerate(req, res, rec, body, ctx) {
    if (body === undefined) throw new HttpError(400, 'missing request body');
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, `json: cannot unmarshal ${goType(body)} into Go value of type api.GenerateRequest`);
    }
    if (!body.model) throw new HttpError(400, 'model is required');
    if (strict && body.prompt !== undefined && body.prompt !== null && typeof body.prompt !== 'string') {
      throw decodeErr(body.prompt, 'GenerateRequest.prompt', 'string');
    }
    if (strict && body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
      throw decodeErr(body.stream, 'GenerateRequest.stream', 'bool');
    }
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model '${body.model}' not found`);
    if (strict) {
      if (!m.capabilities.includes('completion')) throw new HttpError(400, `"${baseName(body.model)}" does not support generate`);
      if (body.think !== undefined && body.think !== null && body.think !== false && !m.capabilities.includes('thinking')) {
        throw new HttpError(400, `"${baseName(body.model)}" does not support thinking`);
      }
      validateLate(body);
    }
    const sc = await scenarioFor(body, rec, m);
    await answer(res, rec, ctx, sc, body, body.stream !== false, 'generate');
  }

  // ------------------------------------------------------------ /api/embed
  async function handleEmbed(req, res, rec, body) {
    if (body === undefined) throw new HttpError(400, 'missing request body');
    if (!body?.model) throw new HttpError(400, 'model is required');
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model "${body.model}" not found, try pulling it first`);
    let inputs = body.input;
    if (inputs === undefined || inputs === null || inputs === '') inputs = [];
    if (typeof inputs === 'string') inputs = [inputs];
    if (!Array.isArray(inputs) || !inputs.every((x) => typeof x === 'string')) {
      throw new HttpError(400, 'invalid input type');
    }
    const sc = scriptFn ? await scriptFn(body, rec) : null;
    if (sc?.status && sc.status !== 200) {
      return sendError(res, rec, new HttpError(sc.status, sc.error ?? 'fake error'), false);
    }
    const dim = m.embedding_length ?? 8;
    const embeddings = inputs.map((text) => embedVector(text, dim, body.dimensions));
    const out = { model: body.model, embeddings, total_duration: 14143917, load_duration: 1019500 };
    const tokens = inputs.reduce((n, t) => n + Math.max(1, t.split(/\s+/).filter(Boolean).length), 0);
    if (tokens && inputs.length) out.prompt_eval_count = tokens;
    sendJson(res, rec, 200, out);
    rec.finished = true;
    rec.finishedAt = performance.now();
  }

  // Write a scenario's answer. format: 'native' (NDJSON / JSON) or 'openai' (SSE / JSON).
  async function answer(res, rec, ctx, sc, body, stream, format) {
    const openai = format === 'openai';
    if (sc.hang) {
      await ctx.waitClose();
      return;
    }
    if (!(await ctx.sleep(sc.firstDelayMs))) return;
    if (sc.status && sc.status !== 200) {
      const msg = sc.error ?? 'fake error';
      if (sc.body !== undefined) {
        sendJson(res, rec, sc.status, sc.body, sc.contentType);
      } else {
        sendError(res, rec, new HttpError(sc.status, msg), openai);
      }
      return;
    }
    const lines = buildLines(sc, body.model);
    const dataLines = lines.length - (sc.lines ? 0 : 1);
    if (!stream) {
      return answerNonStream(res, rec, ctx, sc, body, lines, dataLines, openai, format);
    }
    const conv = openai ? openaiStream(body, sc) : null;
    if (rec) { rec.status = 200; rec.headersSentAt = performance.now(); }
    res.writeHead(200, {
      'Content-Type': openai ? 'text/event-stream' : 'application/x-ndjson',
    });
    res.flushHeaders();
    if (!(await ctx.sleep(sc.firstLineDelayMs))) return;
    let written = 0;
    for (let i = 0; i < lines.length; i++) {
      if (i > 0 && !(await ctx.sleep(sc.delayMs))) return;
      if (sc.errorAfter === written) {
        const msg = sc.errorMessage ?? 'an error was encountered while running the model: fake failure';
        const l = openai
          ? `data: ${JSON.stringify({ error: { message: msg, type: 'api_error', param: null, code: null } })}\n\n`
          : `${JSON.stringify({ error: msg })}\n`;
        await ctx.write(l);
        res.end();
        if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
        return;
      }
      if (sc.dropAfter === written) {
        // let what was written reach the peer, then cut the connection
        // without the chunked terminator
        if (sc.partial && !(await ctx.write(sc.partial))) return;
        await Promise.race([ctx.flushed, ctx.waitClose()]);
        res.socket?.destroy();
        res.destroy();
        return;
      }
      if (sc.stallAfter === written) {
        await ctx.waitClose();
        return;
      }
      if (sc.garbageAfter === written) {
        if (!(await ctx.write(`${sc.garbage ?? 'this is not json {'}\n${openai ? '\n' : ''}`))) return;
      }
      const l = lines[i];
      let out;
      if (typeof l === 'string') {
        out = l.endsWith('\n') ? l : `${l}\n`;
      } else {
        if (l.created_at === '') l.created_at = rfc3339nano();
        out = openai ? conv.chunk(l) : `${JSON.stringify(format === 'generate' ? toGenerate(l) : l)}\n`;
      }
      if (!(await ctx.write(out))) return;
      written++;
      if (rec) rec.linesWritten = written;
    }
    if (openai) {
      if (!(await ctx.write(conv.end()))) return;
    }
    res.end();
    if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
  }

  async function answerNonStream(res, rec, ctx, sc, body, lines, dataLines, openai, format) {
    // Generation time: the same delays a stream would have.
    const gen = (sc.firstLineDelayMs ?? 0) + (sc.delayMs ?? 0) * Math.max(0, lines.length - 1);
    if (sc.stallAfter !== undefined) { await ctx.waitClose(); return; }
    if (!(await ctx.sleep(gen))) return;
    if (sc.dropAfter !== undefined) { res.socket?.destroy(); res.destroy(); return; }
    if (sc.errorAfter !== undefined) {
      const msg = sc.errorMessage ?? 'an error was encountered while running the model: fake failure';
      sendError(res, rec, new HttpError(500, msg), openai);
      if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
      return;
    }
    if (sc.garbageAfter !== undefined) {
      sendJson(res, rec, 200, sc.garbage ?? 'this is not json {');
      if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
      return;
    }
    // Aggregate like Ollama: concatenate content and thinking, keep the done object.
    let content = '';
    let thinking = '';
    const calls = [];
    let last = null;
    for (const l of lines) {
      const o = typeof l === 'string' ? JSON.parse(l) : l;
      content += o.message?.content ?? '';
      thinking += o.message?.thinking ?? '';
      if (o.message?.tool_calls) calls.push(...o.message.tool_calls);
      last = o;
    }
    const final = { ...last, created_at: rfc3339nano(), message: { role: 'assistant', content } };
    if (thinking) final.message.thinking = thinking;
    if (calls.length && Array.isArray(body.tools) && body.tools.length) final.message.tool_calls = calls;
    const out = openai ? openaiFull(body, final) : format === 'generate' ? toGenerate(final) : final;
    sendJson(res, rec, 200, out);
    if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
  }

  // ------------------------------------------------------------ OpenAI shapes
  let oaCounter = 0;
  function oaToolCalls(calls, startIndex) {
    return calls.map((c, i) => ({
      id: c.id ?? nextToolCallId(),
      index: startIndex + i,
      type: 'function',
      function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments ?? {}) },
    }));
  }

  function openaiStream(body, sc) {
    const id = `chatcmpl-fake${++oaCounter}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model;
    let first = true;
    let toolIndex = 0;
    let sawTools = false;
    let finish = 'stop';
    let usage = null;
    const frame = (choices, extra) => `data: ${JSON.stringify({
      id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_ollama', choices, ...extra,
    })}\n\n`;
    return {
      chunk(l) {
        let out = '';
        const msg = l.message ?? {};
        const delta = {};
        if (first) delta.role = 'assistant';
        if (msg.thinking) delta.reasoning = msg.thinking;
        if (msg.content) delta.content = msg.content;
        if (msg.tool_calls?.length) {
          delta.tool_calls = oaToolCalls(msg.tool_calls, toolIndex);
          toolIndex += msg.tool_calls.length;
          sawTools = true;
        }
        if (first || Object.keys(delta).length) {
          if (delta.role && delta.content === undefined) delta.content = '';
          out += frame([{ index: 0, delta, finish_reason: null }]);
          first = false;
        }
        if (l.done) {
          finish = l.done_reason || 'stop';
          if (finish === 'stop' && sawTools) finish = 'tool_calls';
          usage = {
            prompt_tokens: l.prompt_eval_count ?? 0,
            completion_tokens: l.eval_count ?? 0,
            total_tokens: (l.prompt_eval_count ?? 0) + (l.eval_count ?? 0),
          };
          out += frame([{ index: 0, delta: {}, finish_reason: finish }]);
        }
        return out;
      },
      end() {
        let out = '';
        if (body.stream_options?.include_usage && usage) out += frame([], { usage });
        return `${out}data: [DONE]\n\n`;
      },
    };
  }

  function openaiFull(body, final) {
    const msg = { role: 'assistant', content: final.message.content };
    if (final.message.thinking) msg.reasoning = final.message.thinking;
    let finish = final.done_reason || 'stop';
    if (final.message.tool_calls?.length) {
      msg.tool_calls = oaToolCalls(final.message.tool_calls, 0);
      if (finish === 'stop') finish = 'tool_calls';
    }
    const p = final.prompt_eval_count ?? 0;
    const c = final.eval_count ?? 0;
    return {
      id: `chatcmpl-fake${++oaCounter}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      system_fingerprint: 'fp_ollama',
      choices: [{ index: 0, message: msg, finish_reason: finish }],
      usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
    };
  }

  // ------------------------------------------------------------ dispatch
  async function route(req, res, rec, body, ctx) {
    const { method } = req;
    const path = rec.path;
    const get = method === 'GET' || method === 'HEAD';
    if (down) {
      throw new HttpError(503, 'fake ollama is down');
    }
    if (strict && (!hostOk(req.headers.host) || !originOk(req.headers.origin))) {
      throw new HttpError(403, '', true);
    }
    switch (path) {
      case '/':
        if (!get) break;
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 17 });
        rec.status = 200;
        res.end(method === 'HEAD' ? undefined : 'Ollama is running');
        return;
      case '/api/version':
        if (!get) break;
        return sendJson(res, rec, 200, { version });
      case '/api/tags':
        if (!get) break;
        return sendJson(res, rec, 200, { models: models.map(tagsEntry) });
      case '/api/ps':
        if (method !== 'GET') break;
        return sendJson(res, rec, 200, {
          models: models.filter((m) => loaded.includes(m.key)).map((m) => ({
            ...tagsEntry(m),
            expires_at: new Date(Date.now() + 300000).toISOString(),
            size_vram: m.size,
            context_length: Math.min(m.context_length, 4096),
          })),
        });
      case '/api/show': {
        if (method !== 'POST') break;
        const name = body?.model ?? body?.name;
        const m = name ? findModel(name) : null;
        if (!m) throw new HttpError(404, `model '${name ?? ''}' not found`);
        const arch = m.family.replace(/[^a-z0-9]/g, '');
        return sendJson(res, rec, 200, {
          modelfile: `# Modelfile generated by "ollama show"\nFROM ${m.name}\n`,
          parameters: 'stop                           "<|eot_id|>"\ntemperature                    0.6',
          template: '{{ .Prompt }}',
          details: details(m),
          model_info: {
            'general.architecture': arch,
            'general.parameter_count': 3212749888,
            [`${arch}.context_length`]: m.context_length,
            ...(m.embedding_length ? { [`${arch}.embedding_length`]: m.embedding_length } : {}),
          },
          capabilities: m.capabilities,
          modified_at: m.modified_at,
        });
      }
      case '/api/chat':
        if (method !== 'POST') break;
        return handleChat(req, res, rec, body, ctx);
      case '/api/generate':
        if (method !== 'POST') break;
        return handleGenerate(req, res, rec, body, ctx);
      case '/api/embed':
        if (method !== 'POST') break;
        return handleEmbed(req, res, rec, body);
      case '/v1/chat/completions':
        if (method !== 'POST') break;
        return handleOpenAIChat(req, res, rec, body, ctx);
      case '/v1/models':
        if (!get) break;
        return sendJson(res, rec, 200, {
          object: 'list',
          data: models.map((m) => ({
            id: m.name, object: 'model', created: Math.floor(Date.parse(m.modified_at) / 1000), owned_by: 'library',
          })),
        });
      default:
        rec.status = 404;
        res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 18 });
        res.end('404 page not found');
        return;
    }
    rec.status = 405;
    res.writeHead(405, { 'Content-Type': 'text/plain', 'Content-Length': 22 });
    res.end('405 method not allowed');
  }

  const server = http.createServer({ keepAliveTimeout: 30000, requestTimeout: 0, headersTimeout: 60000 }, (req, res) => {
    const receivedAt = performance.now();
    const q = req.url.indexOf('?');
    const rec = {
      id: ++reqCounter,
      method: req.method,
      path: q < 0 ? req.url : req.url.slice(0, q),
      query: q < 0 ? '' : req.url.slice(q + 1),
      headers: req.headers,
      rawBody: '',
      body: undefined,
      remotePort: req.socket.remotePort,
      receivedAt,
      status: 0,
      headersSentAt: null,
      linesWritten: 0,
      finished: false,
      finishedAt: null,
      closedAt: null,
      aborted: false,
    };
    if (record) requests.push(rec);
    const ctx = makeCtx(res);
    res.on('close', () => {
      if (!res.writableFinished) {
        rec.closedAt = performance.now();
        rec.aborted = true;
      }
    });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (record) rec.rawBody = raw;
      let body;
      let parseErr = null;
      if (raw.length) {
        try { body = JSON.parse(raw); } catch (e) { parseErr = e; }
      }
      rec.body = parseErr ? null : body;
      Promise.resolve()
        .then(() => {
          if (parseErr && req.method === 'POST') {
            throw new HttpError(400, `invalid character '${raw.trim()[0] ?? ''}' looking for beginning of value`);
          }
          return route(req, res, rec, body, ctx);
        })
        .catch((err) => {
          if (res.headersSent || res.destroyed) {
            if (!(err instanceof HttpError)) console.error('fake ollama:', err);
            res.destroy();
            return;
          }
          if (err instanceof HttpError) {
            sendError(res, rec, err, rec.path.startsWith('/v1/'));
          } else {
            console.error('fake ollama: internal error:', err);
            sendError(res, rec, new HttpError(500, String(err?.message ?? err)), rec.path.startsWith('/v1/'));
          }
        });
    });
  });
  server.on('clientError', (err, socket) => socket.destroy());

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address();

  const fake = {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Replace the installed models (names or {name, capabilities, ...}). */
    setModels(list) { models = list.map(normalizeModel); },
    /** Set which models /api/ps reports as loaded. */
    setLoaded(list) { loaded = list.map((n) => modelKey(n)); },
    /** fn(body, record) → scenario | null (null = default). A plain object is a fixed scenario. null clears. */
    script(fn) {
      scriptFn = fn === null || fn === undefined ? null
        : typeof fn === 'function' ? fn : () => fn;
    },
    /** true: every request gets 503 {"error":"fake ollama is down"} (port stays open). */
    setDown(v) { down = !!v; },
    /** Recorded POST /api/chat requests. */
    chats() { return requests.filter((r) => r.path === '/api/chat'); },
    /** Forget recorded requests and the script. */
    reset() { requests.length = 0; scriptFn = null; down = false; },
    /** Poll until a recorded request matches pred; resolves with it. */
    async waitForRequest(pred, timeoutMs = 5000) {
      const end = performance.now() + timeoutMs;
      for (;;) {
        const r = requests.find(pred);
        if (r) return r;
        if (performance.now() > end) throw new Error(`fake: no matching request within ${timeoutMs} ms`);
        await sleepTimer(10);
      }
    },
    /** Number of requests being answered right now. */
    get inflight() { return live.size; },
    async close() {
      for (const c of live) c.abort();
      await new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
  return fake;
}

// ---------------------------------------------------------------- CLI

function parseArgs(argv) {
  const o = { port: 0, tokens: 32, delayMs: 0, models: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(v());
    else if (a === '--tokens') o.tokens = Number(v());
    else if (a === '--delay-ms') o.delayMs = Number(v());
    else if (a === '--models') o.models = v().split(',').filter(Boolean);
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const isMain = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fake.mjs: ${e.message}\n`);
    process.exit(1);
  }
  if (args.help) {
    process.stdout.write('usage: node fake.mjs --port N [--tokens 32] [--delay-ms 0] [--models a,b]\n');
    process.exit(0);
  }
  const fake = await startFake({
    port: args.port, tokens: args.tokens, delayMs: args.delayMs, record: false,
    models: args.models ?? undefined, loaded: args.models ?? DEFAULT_MODELS.map((m) => m.name),
  });
  process.stdout.write(`${JSON.stringify({ port: fake.port })}\n`);
  const stop = () => { fake.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
