// A fake Ollama server for the gateway's tests and benchmark.
//
// It speaks Ollama's native API the way /work/shared/PROTOCOL.md sections 1
// and 2 describe it (NDJSON streaming, "stream" absent = true, {"error":"…"}
// bodies, metrics on the done line only, zero metrics omitted, Host/Origin
// gating), checked against ollama/ollama server/routes.go at v0.33.0-rc2,
// plus an OpenAI-format /v1/chat/completions (Ollama's own layer, v0.32.6+
// shape) so a plain proxy can be benchmarked against the same answers.
//
// Routes:
//   GET|HEAD /                 200 text/plain "Ollama is running"
//   GET|HEAD /api/version      {"version":"0.33.0"} (opts.version, setVersion)
//   GET|HEAD /api/tags         the installed models
//   GET /api/ps                installed models named by opts.loaded / setLoaded
//   POST /api/show             license, modelfile, parameters, template, details,
//                              model_info, capabilities, modified_at (tensors and
//                              full tokenizer arrays with verbose:true)
//   POST /api/chat             scenario-driven NDJSON / JSON (below)
//   POST /api/generate         the same scenarios, lines carry "response"
//                              (+ "thinking"), the done line "context"; empty
//                              prompt → {"done_reason":"load"} (keep_alive 0:
//                              "unload"); options.num_predict and options.stop
//                              honoured; raw, suffix (needs "insert") checked
//   POST /api/embed            deterministic L2-normalised vectors (embedVector)
//   POST /api/embeddings       legacy {"embedding":[…]}, not normalised (embeddingRaw)
//   POST /api/pull             NDJSON progress; then the model is in /api/tags
//   POST /api/push             NDJSON progress
//   POST /api/create           NDJSON progress; then the model is in /api/tags
//   POST /api/copy             200, empty body
//   DELETE /api/delete         200, empty body; the model leaves /api/tags
//   HEAD /api/blobs/:digest    200 when the fake has the blob, else 404
//   POST /api/blobs/:digest    body streamed through SHA-256 (never buffered):
//                              201, or 400 "digest mismatch, expected …, got …"
//   POST /v1/chat/completions, GET /v1/models
//   Anything else: gin's plain-text 404 "404 page not found"; a known path
//   with another method: plain-text 405 "405 method not allowed".
// With opts.strict (default) requests are validated as Ollama would: decode
// errors 400, option-type and format errors 500, capability errors 400
// (think on a non-thinking model, tools on a model without tools, chat on an
// embedding model, suffix on a model without "insert"), non-loopback Host or
// foreign Origin → bare 403.
//
// Models (opts.models, setModels): names or objects {name, capabilities,
// family, parameter_size, quantization_level, context_length,
// embedding_length, size, digest, modified_at, license, template, system,
// parameters, layers}. Capabilities default by name: DEFAULT_MODELS' own,
// /embed/ → ["embedding"], /qwen3|deepseek-r1|gpt-oss/ → ["completion",
// "tools","thinking"], /code/ → ["completion","tools","insert"], else
// ["completion","tools"]. Each model has deterministic layers (model,
// template, license, params, config) that pull/push report and that count as
// blobs the fake has.
//
// Library use (tests):
//   import { startFake } from '../fake_ollama/fake.mjs';
//   const fake = await startFake({ models: [...], record: true });
//   fake.script((body, rec) => ({ tokens: ['a', 'b'] }));
//   fake.scriptPath('/api/pull', { delayMs: 50, errorAfter: 3 });
//   ... fake.requests ... await fake.close();
// The fake object: port, url, requests, inflight, openConnections, setModels, setLoaded,
// script, scriptPath, setDown, setVersion, setPullable, setProgressDelay,
// addBlob, hasBlob, modelNames, model, chats, requestsTo, blobUploads,
// waitForRequest, reset, close (each documented where it is defined).
//
// CLI use (benchmark):
//   node tests/fake_ollama/fake.mjs --port N [--tokens 32] [--delay-ms 0] [--models a,b]
//        [--progress-delay-ms 0] [--embedding-length 8]
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
//   dribbleMs: n             write each line one byte at a time, n ms apart
//                            (a non-stream answer: its whole body, after the
//                            headers), so bytes keep coming but lines do not
//   dribbleFrom: k           with dribbleMs: the first k lines go whole, at
//                            once (a stream that starts, then dribbles)
//   hang: true               never answer (not even headers)
//   honourOptions: bool      apply options.num_predict / options.stop to the
//                            tokens (default: true on /api/generate, false on
//                            /api/chat for compatibility)
// "after n lines" counts the data lines written (thinking, content and
// tool-call lines; the done line is the last one). For a non-stream request
// errorAfter gives a 500, dropAfter/hang/stallAfter drop or hang, and
// garbageAfter answers 200 with a non-JSON body.
//
// Where scenarios apply:
//   fake.script(x)  (global, as before): /api/chat, /api/generate,
//     /v1/chat/completions; on /api/embed only a status (error) is honoured.
//   fake.scriptPath(path, x): one route ('/api/pull', '/api/show', ...;
//     '/api/blobs' for every /api/blobs/:digest). Wins over script() where
//     both apply; returning null falls back to script() / the default.
//     - chat, generate, /v1/chat/completions: a full scenario.
//     - pull, push, create: the streaming keys above (delayMs,
//       firstLineDelayMs, errorAfter/errorMessage, dropAfter/partial,
//       stallAfter, garbageAfter, lines) act on the progress lines (delayMs
//       defaults to opts.progressDelayMs / setProgressDelay), plus hang,
//       firstDelayMs, and an error status with error or body.
//     - every other route (and /api/embed): hang, firstDelayMs, dropAfter
//       (any value: drop without answering), status/error, body (+status,
//       default 200; contentType).
//     - blobs (the script gets body null; rec.method tells HEAD from POST):
//       hang, firstDelayMs, dropAfter, status/error/body answer before
//       the upload body is read (as Ollama's early answers do); drainFirst:
//       true reads (and hashes) the whole body first; readDelayMs: pause
//       after each body chunk read; stallAfterBytes: n stop reading after n
//       bytes (blob.stalled = true) and never answer, or with stallMs: m
//       resume after m ms. A reader stalled for good does not notice the
//       client leaving (neither would Ollama); fake.close() ends it.
//
// Each recorded request (fake.requests, when opts.record !== false):
//   {id, method, path, query, headers, rawBody, body (parsed JSON or null),
//    bodyBytes, remotePort, receivedAt, status, headersSentAt, linesWritten,
//    finished, finishedAt, closedAt, aborted}
// and for POST /api/blobs/:digest also (rawBody '' and body null: the body is
// never kept) blob: {digest (as in the path), bytes, sha256 ("sha256:<hex>"
// of what arrived, once complete), matched, complete, existed, stalled}.
// Times are performance.now() milliseconds of this process. closedAt is set
// when the connection closed before the response was complete (the client
// went away); finished is true when the whole response was written.
// linesWritten counts NDJSON lines (chat, generate, pull, push, create).

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
/** Ollama's blob digest syntax (manifest.BlobsPath). */
const DIGEST_RE = /^sha256[:-][0-9a-fA-F]{64}$/;
/** A progress line's side effect, run just before the line is written. */
const EFFECT = Symbol('effect');

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
          : /code/.test(key) ? ['completion', 'tools', 'insert']
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
  o.layers ??= defaultLayers(o);
  o.key = key;
  return o;
}

/** Deterministic manifest layers of a model: what pull/push report. */
function defaultLayers(m) {
  const layer = (what, size, mediaType) => ({
    digest: `sha256:${digestOf(`${m.name}#${what}`)}`, size, mediaType,
  });
  const small = 1429 + 7711 + 96 + 487;
  return [
    layer('model', Math.max(1, m.size - small), 'application/vnd.ollama.image.model'),
    layer('template', 1429, 'application/vnd.ollama.image.template'),
    layer('license', 7711, 'application/vnd.ollama.image.license'),
    layer('params', 96, 'application/vnd.ollama.image.params'),
    layer('config', 487, 'application/vnd.docker.container.image.v1+json'),
  ];
}

/** "sha256-<hex>" and "sha256:<hex>" name the same blob file (Ollama's BlobsPath). */
function blobKey(digest) {
  return `sha256:${digest.slice(7)}`;
}

function splitName(name) {
  let s = String(name).replace(/^https?:\/\//, '');
  const at = s.indexOf('@');
  if (at >= 0) s = s.slice(0, at);
  const slash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  let tag = null;
  if (colon > slash) { tag = s.slice(colon + 1); s = s.slice(0, colon); }
  const parts = s.split('/');
  const model = parts.pop();
  const namespace = parts.length ? parts.pop() : null;
  const host = parts.length ? parts.join('/') : null;
  return { host, namespace, model, tag };
}

/** Roughly Ollama's model.ParseName(name).IsValid(): [host/][namespace/]model[:tag]. */
export function validModelName(name) {
  if (typeof name !== 'string' || name === '') return false;
  const { host, namespace, model, tag } = splitName(name);
  if (host !== null && (host.includes('/') || !/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$/.test(host))) return false;
  if (namespace !== null && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/.test(namespace)) return false;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/.test(model)) return false;
  return tag === null || /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/.test(tag);
}

/** Where Ollama would look for a model's manifest (for its "no such file" errors). */
function manifestPath(name) {
  const { host, namespace, model, tag } = splitName(name);
  return `/root/.ollama/models/manifests/${host ?? 'registry.ollama.ai'}/${namespace ?? 'library'}/${model}/${tag ?? 'latest'}`;
}

/** Go's fs.ValidPath: relative, no empty, "." or ".." elements. */
function validRelPath(p) {
  if (p === '.') return true;
  return p !== '' && p.split('/').every((e) => e !== '' && e !== '.' && e !== '..');
}

/** A Go time.Duration of zero as keep_alive: 0, "0", "0s", "0m", ... */
function isZeroKeepAlive(v) {
  if (v === 0) return true;
  return typeof v === 'string' && /^[+-]?0*(\.0*)?(ns|us|µs|ms|s|m|h)?$/.test(v) && /0/.test(v);
}

/** Token count the fake reports: whitespace-separated words, at least 1. */
function wordCount(text) {
  return Math.max(1, String(text).split(/\s+/).filter(Boolean).length);
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

/** images: raw base64 strings (decoded into []byte by Go). */
function validateImages(images, field) {
  if (images === undefined || images === null) return;
  if (!Array.isArray(images)) throw decodeErr(images, field, '[]api.ImageData');
  for (const img of images) {
    if (typeof img !== 'string') throw decodeErr(img, field, '[]uint8');
    const bad = img.search(/[^A-Za-z0-9+/=]/);
    if (bad >= 0 || img.length % 4 !== 0) {
      throw new HttpError(400, `illegal base64 data at input byte ${bad >= 0 ? bad : img.length}`);
    }
  }
}

/** A JSON object body, as Go's decoder into a struct wants it. */
function requireObject(body, goStruct) {
  if (body === undefined) throw new HttpError(400, 'missing request body');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, `json: cannot unmarshal ${goType(body)} into Go value of type api.${goStruct}`);
  }
}

/** Field types: spec {field: [jsType, goType]}; a mismatch is Go's decode error (400). */
function checkTypes(body, goStruct, spec) {
  for (const [f, [js, go]] of Object.entries(spec)) {
    const v = body[f];
    if (v === undefined || v === null) continue;
    const ok = js === 'object' ? typeof v === 'object' && !Array.isArray(v)
      : js === 'array' ? Array.isArray(v) : typeof v === js;
    if (!ok) throw decodeErr(v, `${goStruct}.${f}`, go);
  }
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
    validateImages(msg.images, 'ChatRequest.messages.images');
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
function toGenerate(l, withContext = true) {
  if (typeof l !== 'object' || l === null || !l.message) return l;
  const { message, ...rest } = l;
  const o = { model: rest.model, created_at: rest.created_at, response: message.content ?? '' };
  if (message.thinking) o.thinking = message.thinking;
  if (message.tool_calls) o.tool_calls = message.tool_calls;
  for (const [k, v] of Object.entries(rest)) if (!(k in o)) o[k] = v;
  if (l.done && withContext) o.context = [1, 2, 3];
  return o;
}

/**
 * Apply options.num_predict and options.stop to a scenario, as generation
 * would: num_predict > 0 caps the generated tokens (thinking + content; the
 * answer ends with done_reason "length" once that many were produced), a
 * stop string ends the content just before it (done_reason "stop"). Either
 * drops the scenario's tool calls and doneContent. Raw `lines` are untouched.
 */
export function applyLimits(sc, body) {
  if (sc.lines) return sc;
  const o = body?.options ?? {};
  const n = typeof o.num_predict === 'number' && o.num_predict > 0 ? Math.trunc(o.num_predict) : Infinity;
  const stops = Array.isArray(o.stop) ? o.stop.filter((x) => typeof x === 'string' && x !== '') : [];
  const thinking = sc.thinking ?? [];
  const tokens = sc.tokens ?? [];
  // the content token at which a stop string is complete, and where it starts
  let stopTok = -1;
  let stopIdx = -1;
  let text = '';
  for (let j = 0; stops.length && j < tokens.length; j++) {
    text += tokens[j];
    for (const s of stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (stopIdx < 0 || i < stopIdx)) stopIdx = i;
    }
    if (stopIdx >= 0) { stopTok = j; break; }
  }
  const total = thinking.length + tokens.length;
  const stopCount = stopTok >= 0 ? thinking.length + stopTok + 1 : Infinity;
  const cut = { toolCalls: [], doneContent: undefined };
  if (n <= total && n < stopCount) {
    return {
      ...sc, ...cut, doneReason: 'length',
      thinking: thinking.slice(0, n), tokens: tokens.slice(0, Math.max(0, n - thinking.length)),
    };
  }
  if (stopTok >= 0) {
    const kept = [];
    let at = 0;
    for (const t of tokens) {
      if (at >= stopIdx) break;
      kept.push(t.slice(0, stopIdx - at));
      at += t.length;
    }
    return { ...sc, ...cut, doneReason: 'stop', tokens: kept.filter((t) => t !== '') };
  }
  return sc;
}

/**
 * The raw (not normalised) deterministic vector for text: what the legacy
 * /api/embeddings returns. embedVector is this vector L2-normalised.
 */
export function embeddingRaw(text, dim = 8) {
  const h = createHash('sha256').update(String(text)).digest();
  return Array.from({ length: dim }, (_, i) => Math.fround((h[i % h.length] - 127.5) / 128));
}

/**
 * A deterministic L2-normalised vector for text (float32-representable
 * values): what /api/embed returns. With dimensions (0 < d < dim) it is the
 * first d components of the raw vector, normalised.
 */
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
 *       delayMs (default scenario's delay between lines), version,
 *       progressDelayMs (alias pullDelayMs; delay between pull/push/create
 *       progress lines, default 0), pullSteps (progress lines per layer after
 *       the first, default 2), pullable (which names /api/pull can fetch:
 *       undefined/true = every valid name, false = none, [names or model
 *       objects], or fn(name) → false | true | model object),
 *       embeddingLength (vector size for models without embedding_length,
 *       default 8), blobs (digests, or contents whose sha256 the fake then has),
 *       keepAliveTimeoutMs (how long an idle kept-alive connection stays open,
 *       default 30000).
 */
export async function startFake(opts = {}) {
  const record = opts.record !== false;
  const strict = opts.strict !== false;
  let version = opts.version ?? '0.33.0';
  let models = (opts.models ?? DEFAULT_MODELS).map(normalizeModel);
  let loaded = (opts.loaded ?? []).map((n) => modelKey(n));
  let scriptFn = null;
  const pathScripts = new Map();
  let down = false;
  let reqCounter = 0;
  let toolCallCounter = 0;
  let pullable = opts.pullable;
  let progressDelayMs = opts.progressDelayMs ?? opts.pullDelayMs ?? 0;
  const pullSteps = Math.max(1, opts.pullSteps ?? 2);
  const embeddingLength = opts.embeddingLength ?? 8;
  const blobs = new Map(); // "sha256:<hex>" → {size}
  for (const b of opts.blobs ?? []) addBlob(b);
  const requests = [];
  const live = new Set();

  const findModel = (name) => {
    const k = modelKey(name);
    return models.find((m) => m.key === k);
  };

  /** Add a blob: a digest, or content (string/Buffer) whose digest is returned. */
  function addBlob(x, size = 0) {
    if (typeof x === 'string' && DIGEST_RE.test(x)) {
      blobs.set(blobKey(x), { size });
      return blobKey(x);
    }
    const buf = Buffer.isBuffer(x) ? x : Buffer.from(String(x));
    const d = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    blobs.set(d, { size: buf.length });
    return d;
  }

  /** Uploaded/added blobs and the layers of installed models. */
  function hasBlob(digest) {
    if (!DIGEST_RE.test(digest)) return false;
    const k = blobKey(digest);
    return blobs.has(k) || models.some((m) => m.layers.some((l) => l.digest === k));
  }

  function installModel(spec) {
    const { key: _k, ...rest } = spec;
    const m = normalizeModel(rest, models.length);
    const i = models.findIndex((x) => x.key === m.key);
    if (i >= 0) models[i] = m; else models.push(m);
    return m;
  }

  /** What /api/pull can fetch for name: a model spec, or null. */
  function pullSpec(name) {
    const p = pullable;
    if (p === false) return null;
    if (p === undefined || p === null || p === true) return { name };
    if (Array.isArray(p)) {
      const e = p.find((x) => modelKey(typeof x === 'string' ? x : x.name) === modelKey(name));
      if (e === undefined) return null;
      return typeof e === 'string' ? { name } : { ...e, name };
    }
    if (typeof p === 'function') {
      const r = p(name);
      if (!r) return null;
      return r === true ? { name } : { ...r, name: r.name ?? name };
    }
    return { name };
  }

  /** The route's own script (scriptPath), or the global one when useGlobal. */
  async function scriptedScenario(body, rec, useGlobal) {
    let sc = null;
    const fn = pathScripts.get(rec.path)
      ?? (rec.path.startsWith('/api/blobs/') ? pathScripts.get('/api/blobs') : undefined);
    if (fn) sc = await fn(body, rec);
    if (!sc && useGlobal && scriptFn) sc = await scriptFn(body, rec);
    return sc || null;
  }

  const defaultTokens = (model) => {
    if (typeof opts.tokens === 'number') {
      return Array.from({ length: opts.tokens }, (_, i) => ` w${i}`);
    }
    return ['Hello', ' from', ` ${model}`];
  };

  const nextToolCallId = () => `call_${(++toolCallCounter).toString(36).padStart(8, '0')}`;

  async function scenarioFor(body, rec, m) {
    const sc = await scriptedScenario(body, rec, true);
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

  // Write str whole, or (dribbleMs > 0) one byte every dribbleMs ms.
  async function writeLine(ctx, str, dribbleMs) {
    if (!dribbleMs) return ctx.write(str);
    const bytes = Buffer.from(str);
    for (let i = 0; i < bytes.length; i++) {
      if (i > 0 && !(await ctx.sleep(dribbleMs))) return false;
      if (!(await ctx.write(bytes.subarray(i, i + 1)))) return false;
    }
    return true;
  }

  function sendEmpty(res, rec, status) {
    if (rec) { rec.status = status; rec.headersSentAt = performance.now(); }
    res.writeHead(status, { 'Content-Length': 0 });
    res.end();
  }

  function markFinished(rec) {
    if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
  }

  /**
   * The scenario keys every route understands, before its own answer: hang,
   * firstDelayMs, dropAfter (drop without answering), status/error and body.
   * With full false only hang, firstDelayMs and an error status (what
   * answer() honours before its lines). true: the request was answered here.
   */
  async function simplePrelude(res, rec, ctx, sc, openai = false, full = true) {
    if (sc.hang) {
      await ctx.waitClose();
      return true;
    }
    if (!(await ctx.sleep(sc.firstDelayMs))) return true;
    if (full && sc.dropAfter !== undefined) {
      res.socket?.destroy();
      res.destroy();
      return true;
    }
    const isError = sc.status && sc.status !== 200;
    if (isError || (full && sc.body !== undefined)) {
      const status = sc.status || 200;
      if (sc.body !== undefined) sendJson(res, rec, status, sc.body, sc.contentType);
      else sendError(res, rec, new HttpError(status, sc.error ?? 'fake error'), openai);
      markFinished(rec);
      return true;
    }
    return false;
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
    let sc = await scenarioFor(body, rec, m);
    if (sc.honourOptions === true) sc = applyLimits(sc, body);
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
    if (strict) {
      checkTypes(body, 'GenerateRequest', {
        model: ['string', 'string'], suffix: ['string', 'string'], system: ['string', 'string'],
        template: ['string', 'string'], raw: ['boolean', 'bool'], context: ['array', '[]int'],
        options: ['object', 'map[string]interface {}'],
      });
      validateImages(body.images, 'GenerateRequest.images');
      if (body.think !== undefined && body.think !== null
          && typeof body.think !== 'boolean' && !(typeof body.think === 'string' && THINK_LEVELS.has(body.think))) {
        throw new HttpError(400, `invalid think value: ${JSON.stringify(body.think)} (must be "high", "medium", "low", "max", true, or false)`);
      }
      if (body.keep_alive !== undefined && body.keep_alive !== null
          && typeof body.keep_alive !== 'number' && typeof body.keep_alive !== 'string') {
        throw new HttpError(400, 'json: unsupported type for keep_alive');
      }
    }
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model '${body.model}' not found`);
    const empty = !body.prompt;
    // Ollama answers an unload before its capability checks, a load after them.
    if (empty && isZeroKeepAlive(body.keep_alive)) return loadAnswer(res, rec, ctx, body, m, 'unload');
    if (strict) {
      if (body.raw === true && (body.template || body.system || body.context?.length)) {
        throw new HttpError(400, 'raw mode does not support template, system, or context');
      }
      if (!m.capabilities.includes('completion')) throw new HttpError(400, `"${baseName(body.model)}" does not support generate`);
      if (body.think !== undefined && body.think !== null && body.think !== false && !m.capabilities.includes('thinking')) {
        throw new HttpError(400, `"${baseName(body.model)}" does not support thinking`);
      }
      if (body.suffix && !m.capabilities.includes('insert')) {
        throw new HttpError(400, `registry.ollama.ai/library/${m.name} does not support insert`);
      }
      validateLate(body);
    }
    if (empty) return loadAnswer(res, rec, ctx, body, m, 'load');
    let sc = await scenarioFor(body, rec, m);
    if (sc.honourOptions !== false) sc = applyLimits(sc, body);
    await answer(res, rec, ctx, sc, body, body.stream !== false, 'generate');
  }

  /** Empty prompt: one JSON object (even when streaming), nothing generated. */
  async function loadAnswer(res, rec, ctx, body, m, reason) {
    const sc = await scenarioFor(body, rec, m);
    if (await simplePrelude(res, rec, ctx, sc, false, false)) return;
    sendJson(res, rec, 200, {
      model: body.model, created_at: rfc3339nano(), response: '', done: true, done_reason: reason,
    });
    markFinished(rec);
  }

  // ------------------------------------------------------------ /api/embed
  async function handleEmbed(req, res, rec, body, ctx) {
    requireObject(body, 'EmbedRequest');
    if (!body.model) throw new HttpError(400, 'model is required');
    // the input is checked before the model is looked up, as Ollama does
    let inputs = body.input;
    if (inputs === undefined || inputs === null) inputs = [];
    else if (typeof inputs === 'string') inputs = inputs === '' ? [] : [inputs];
    else if (!Array.isArray(inputs) || !inputs.every((x) => typeof x === 'string')) {
      throw new HttpError(400, 'invalid input type');
    }
    if (strict) {
      checkTypes(body, 'EmbedRequest', {
        model: ['string', 'string'], truncate: ['boolean', 'bool'], dimensions: ['number', 'int'],
        options: ['object', 'map[string]interface {}'],
      });
    }
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model "${body.model}" not found, try pulling it first`);
    if (strict) validateLate(body);
    const own = await scriptedScenario(body, rec, false);
    if (own) {
      if (await simplePrelude(res, rec, ctx, own)) return;
    } else {
      const sc = scriptFn ? await scriptFn(body, rec) : null;
      if (sc?.status && sc.status !== 200) {
        return sendError(res, rec, new HttpError(sc.status, sc.error ?? 'fake error'), false);
      }
    }
    if (!inputs.length) {
      sendJson(res, rec, 200, { model: body.model, embeddings: [] });
      markFinished(rec);
      return;
    }
    const dim = m.embedding_length ?? embeddingLength;
    const numCtx = body.options?.num_ctx;
    const limit = typeof numCtx === 'number' && numCtx > 0 ? Math.min(numCtx, m.context_length) : m.context_length;
    let tokens = 0;
    const embeddings = inputs.map((text) => {
      let t = text;
      let n = wordCount(t);
      if (n > limit) {
        if (body.truncate === false) {
          throw new HttpError(400, 'the input length exceeds the context length');
        }
        t = t.split(/\s+/).filter(Boolean).slice(0, limit).join(' ');
        n = limit;
      }
      tokens += n;
      return embedVector(t, dim, body.dimensions);
    });
    const out = { model: body.model, embeddings, total_duration: 14143917, load_duration: 1019500 };
    if (tokens) out.prompt_eval_count = tokens;
    sendJson(res, rec, 200, out);
    markFinished(rec);
  }

  // ------------------------------------------------------------ /api/embeddings (legacy)
  async function handleEmbeddings(req, res, rec, body) {
    requireObject(body, 'EmbeddingRequest');
    checkTypes(body, 'EmbeddingRequest', {
      model: ['string', 'string'], prompt: ['string', 'string'], options: ['object', 'map[string]interface {}'],
    });
    if (!body.model) throw new HttpError(400, 'model is required');
    const m = findModel(body.model);
    if (!m) throw new HttpError(404, `model "${body.model}" not found, try pulling it first`);
    if (strict) validateLate(body);
    const embedding = body.prompt ? embeddingRaw(body.prompt, m.embedding_length ?? embeddingLength) : [];
    sendJson(res, rec, 200, { embedding });
    markFinished(rec);
  }

  // ------------------------------------------------------------ /api/show
  async function handleShow(req, res, rec, body) {
    requireObject(body, 'ShowRequest');
    checkTypes(body, 'ShowRequest', {
      model: ['string', 'string'], name: ['string', 'string'], verbose: ['boolean', 'bool'],
    });
    const name = body.model || body.name;
    if (!name) throw new HttpError(400, 'model is required');
    const m = findModel(name);
    if (!m) throw new HttpError(404, `model '${name}' not found`);
    const arch = m.family.replace(/[^a-z0-9]/g, '');
    const tokens = ['<unk>', '<s>', '</s>', '!', '"', '#', '$', '%'];
    const out = {
      license: m.license ?? `${m.family.toUpperCase()} COMMUNITY LICENSE AGREEMENT (fake)`,
      modelfile: `# Modelfile generated by "ollama show"\nFROM ${m.name}\n`,
      parameters: m.parameters ?? 'stop                           "<|eot_id|>"\ntemperature                    0.6',
      template: m.template ?? '{{ .Prompt }}',
    };
    if (m.system) out.system = m.system;
    Object.assign(out, {
      details: details(m),
      model_info: {
        'general.architecture': arch,
        'general.parameter_count': 3212749888,
        [`${arch}.context_length`]: m.context_length,
        ...(m.embedding_length ? { [`${arch}.embedding_length`]: m.embedding_length } : {}),
        'tokenizer.ggml.model': 'gpt2',
        // arrays longer than 5 are emptied unless verbose (getModelData)
        'tokenizer.ggml.tokens': body.verbose ? tokens : [],
        'tokenizer.ggml.token_type': body.verbose ? tokens.map(() => 1) : [],
      },
    });
    if (body.verbose) {
      out.tensors = [
        { name: 'token_embd.weight', type: 'Q4_K', shape: [3072, 128256] },
        { name: 'output_norm.weight', type: 'F32', shape: [3072] },
      ];
    }
    out.capabilities = m.capabilities;
    out.modified_at = m.modified_at;
    sendJson(res, rec, 200, out);
    markFinished(rec);
  }

  // ------------------------------------------------------------ pull / push / create
  function transferLines(verb, layers) {
    const out = [];
    for (const l of layers) {
      for (let j = 0; j <= pullSteps; j++) {
        const line = { status: `${verb} ${l.digest.slice(7, 19)}`, digest: l.digest, total: l.size };
        const completed = Math.floor((l.size * j) / pullSteps);
        if (completed) line.completed = completed; // omitempty
        out.push(line);
      }
    }
    return out;
  }

  /** The progress lines of a pull; the model is installed by the "success" line. */
  function pullLines(name) {
    const lines = [{ status: 'pulling manifest' }];
    const spec = pullSpec(name);
    if (!spec) {
      lines.push({ error: 'pull model manifest: file does not exist' });
      return { lines, model: null };
    }
    const existing = findModel(name);
    const m = existing ?? normalizeModel({ modified_at: rfc3339nano(), ...spec }, models.length);
    lines.push(...transferLines('pulling', m.layers));
    lines.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' });
    lines.push({ status: 'success', [EFFECT]: () => { if (!findModel(m.name)) installModel(m); } });
    return { lines, model: m };
  }

  async function answerProgress(res, rec, ctx, body, lines) {
    const own = (await scriptedScenario(body, rec, false)) ?? {};
    const sc = { delayMs: progressDelayMs, ...own, lines: own.lines ?? lines };
    await answer(res, rec, ctx, sc, body, body.stream !== false, 'progress');
  }

  const PROGRESS_TYPES = {
    model: ['string', 'string'], name: ['string', 'string'], insecure: ['boolean', 'bool'], stream: ['boolean', 'bool'],
  };

  async function handlePull(req, res, rec, body, ctx) {
    requireObject(body, 'PullRequest');
    checkTypes(body, 'PullRequest', PROGRESS_TYPES);
    const name = body.model || body.name || '';
    if (!validModelName(name)) throw new HttpError(400, 'invalid model name');
    await answerProgress(res, rec, ctx, body, pullLines(name).lines);
  }

  async function handlePush(req, res, rec, body, ctx) {
    requireObject(body, 'PushRequest');
    checkTypes(body, 'PushRequest', PROGRESS_TYPES);
    const name = body.model || body.name;
    if (!name) throw new HttpError(400, 'model is required');
    const lines = [{ status: 'retrieving manifest' }];
    const m = findModel(name);
    if (!m) {
      lines.push({ status: "couldn't retrieve manifest" },
        { error: `open ${manifestPath(name)}: no such file or directory` });
    } else {
      lines.push(...transferLines('pushing', m.layers), { status: 'pushing manifest' }, { status: 'success' });
    }
    await answerProgress(res, rec, ctx, body, lines);
  }

  async function handleCreate(req, res, rec, body, ctx) {
    requireObject(body, 'CreateRequest');
    checkTypes(body, 'CreateRequest', {
      ...PROGRESS_TYPES, from: ['string', 'string'], files: ['object', 'map[string]string'],
      adapters: ['object', 'map[string]string'], template: ['string', 'string'], system: ['string', 'string'],
      parameters: ['object', 'map[string]interface {}'], messages: ['array', '[]api.Message'],
      quantize: ['string', 'string'],
    });
    for (const [f, d] of Object.entries(body.files ?? {})) {
      if (!validRelPath(f)) throw new HttpError(400, 'file path must be relative');
      if (typeof d !== 'string') throw decodeErr(d, 'CreateRequest.files', 'string');
      if (d === '') throw new HttpError(400, 'invalid digest format');
    }
    for (const d of Object.values(body.adapters ?? {})) {
      if (d === '') throw new HttpError(400, 'invalid digest format');
    }
    const name = body.model || body.name || '';
    if (!validModelName(name)) throw new HttpError(400, 'invalid model name');
    const lines = [];
    let spec;
    if (body.from) {
      if (!validModelName(body.from)) throw new HttpError(400, 'invalid model name');
      let base = findModel(body.from);
      if (!base) {
        // Ollama pulls a missing base model first, with the pull's own progress
        const p = pullLines(body.from);
        lines.push(...p.lines);
        if (!p.model) return answerProgress(res, rec, ctx, body, lines);
        base = p.model;
      }
      for (const l of base.layers) {
        if (l.mediaType !== 'application/vnd.docker.container.image.v1+json') {
          lines.push({ status: `using existing layer ${l.digest}` });
        }
      }
      const { key: _k, name: _n, digest: _d, modified_at: _t, ...inherit } = base;
      spec = { ...inherit, layers: base.layers.map((l) => ({ ...l })) };
    } else if (body.files) {
      const files = Object.keys(body.files).sort();
      if (!files.length) throw new HttpError(400, 'unknown type');
      const layers = [];
      for (const f of files) {
        const d = body.files[f];
        lines.push({ status: 'parsing GGUF' });
        if (!DIGEST_RE.test(d)) {
          lines.push({ error: 'invalid digest format' });
          return answerProgress(res, rec, ctx, body, lines);
        }
        if (!hasBlob(d)) {
          lines.push({ error: `open /root/.ollama/models/blobs/sha256-${d.slice(7)}: no such file or directory` });
          return answerProgress(res, rec, ctx, body, lines);
        }
        lines.push({ status: `using existing layer ${blobKey(d)}` });
        layers.push({ digest: blobKey(d), size: blobs.get(blobKey(d))?.size ?? 0, mediaType: 'application/vnd.ollama.image.model' });
      }
      spec = { layers, size: layers.reduce((n, l) => n + l.size, 0) || undefined };
    } else {
      throw new HttpError(400, "neither 'from' or 'files' was specified");
    }
    for (const what of ['template', 'system', 'license', 'parameters', 'messages']) {
      if (body[what] === undefined || body[what] === null || body[what] === '') continue;
      const l = { digest: `sha256:${digestOf(JSON.stringify([what, body[what]]))}`, size: JSON.stringify(body[what]).length, mediaType: `application/vnd.ollama.image.${what}` };
      lines.push({ status: `creating new layer ${l.digest}` });
      spec.layers.push(l);
      if (what === 'template' || what === 'system') spec[what] = body[what];
    }
    spec.name = name;
    spec.modified_at = rfc3339nano();
    spec.digest = digestOf(`${name}#created#${rfc3339nano()}`);
    lines.push({ status: 'writing manifest' });
    lines.push({ status: 'success', [EFFECT]: () => installModel(spec) });
    await answerProgress(res, rec, ctx, body, lines);
  }

  // ------------------------------------------------------------ copy / delete
  async function handleCopy(req, res, rec, body) {
    requireObject(body, 'CopyRequest');
    checkTypes(body, 'CopyRequest', { source: ['string', 'string'], destination: ['string', 'string'] });
    const source = body.source ?? '';
    const destination = body.destination ?? '';
    if (!validModelName(source)) throw new HttpError(400, `source ${JSON.stringify(source)} is invalid`);
    if (!validModelName(destination)) throw new HttpError(400, `destination ${JSON.stringify(destination)} is invalid`);
    const m = findModel(source);
    if (!m) throw new HttpError(404, `model ${JSON.stringify(source)} not found`);
    const { key: _k, name: _n, modified_at: _t, ...rest } = m;
    installModel({ ...rest, name: destination, modified_at: rfc3339nano(), layers: m.layers.map((l) => ({ ...l })) });
    sendEmpty(res, rec, 200);
    markFinished(rec);
  }

  async function handleDelete(req, res, rec, body, ctx) {
    if (ctx.parseError) throw ctx.parseError;
    requireObject(body, 'DeleteRequest');
    checkTypes(body, 'DeleteRequest', { model: ['string', 'string'], name: ['string', 'string'] });
    const name = body.model || body.name || '';
    if (!validModelName(name)) throw new HttpError(400, `name ${JSON.stringify(name)} is invalid`);
    const m = findModel(name);
    if (!m) throw new HttpError(404, `model '${name}' not found`);
    models = models.filter((x) => x !== m);
    sendEmpty(res, rec, 200);
    markFinished(rec);
  }

  // ------------------------------------------------------------ blobs
  async function handleBlobHead(req, res, rec, body, ctx) {
    const sc = await scriptedScenario(null, rec, false);
    if (sc && await simplePrelude(res, rec, ctx, sc)) return;
    const digest = rec.path.slice('/api/blobs/'.length);
    if (!DIGEST_RE.test(digest)) throw new HttpError(400, 'invalid digest format');
    if (!hasBlob(digest)) throw new HttpError(404, `blob "${digest}" not found`);
    sendEmpty(res, rec, 200);
    markFinished(rec);
  }

  /**
   * Read a request body chunk by chunk (never keeping it), honouring
   * back-pressure: onChunk(buf) for each. false: the client went away, or the
   * scenario stalled the read until it did.
   */
  async function consumeBody(req, ctx, sc, info, onChunk) {
    try {
      for await (const chunk of req) {
        onChunk(chunk);
        if (sc.stallAfterBytes !== undefined && info.bytes >= sc.stallAfterBytes && !info.stalled) {
          // not reading: the socket's buffers fill up and the client is held back
          info.stalled = true;
          if (sc.stallMs === undefined) {
            await ctx.waitClose();
            return false;
          }
          if (!(await ctx.sleep(sc.stallMs))) return false;
        }
        if (sc.readDelayMs && !(await ctx.sleep(sc.readDelayMs))) return false;
      }
    } catch {
      return false; // aborted by the client
    }
    return !ctx.closed;
  }

  async function handleBlobUpload(req, res, rec, body, ctx) {
    const digest = rec.path.slice('/api/blobs/'.length);
    const info = {
      digest, bytes: 0, sha256: null, matched: null, complete: false, existed: false, stalled: false,
    };
    rec.blob = info;
    rec.body = null;
    rec.bodyBytes = 0;
    const sc = (await scriptedScenario(null, rec, false)) ?? {};
    const early = !sc.drainFirst;
    if (early && await simplePrelude(res, rec, ctx, sc)) return;
    if (!DIGEST_RE.test(digest)) throw new HttpError(400, 'invalid digest format');
    if (early && hasBlob(digest)) {
      // Ollama answers at once, without reading the body
      info.existed = true;
      sendEmpty(res, rec, 200);
      markFinished(rec);
      return;
    }
    const hash = createHash('sha256');
    const ok = await consumeBody(req, ctx, sc, info, (chunk) => {
      hash.update(chunk);
      info.bytes += chunk.length;
      rec.bodyBytes = info.bytes;
    });
    if (!ok) return;
    info.complete = true;
    info.sha256 = `sha256:${hash.digest('hex')}`;
    info.matched = info.sha256 === digest;
    if (!early && await simplePrelude(res, rec, ctx, sc)) return;
    if (!early && hasBlob(digest)) {
      info.existed = true;
      sendEmpty(res, rec, 200);
      markFinished(rec);
      return;
    }
    if (!info.matched) {
      throw new HttpError(400, `digest mismatch, expected ${JSON.stringify(digest)}, got ${JSON.stringify(info.sha256)}`);
    }
    blobs.set(blobKey(digest), { size: info.bytes });
    sendEmpty(res, rec, 201);
    markFinished(rec);
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
        if (l[EFFECT]) l[EFFECT]();
        out = openai ? conv.chunk(l) : `${JSON.stringify(format === 'generate' ? toGenerate(l, body.raw !== true) : l)}\n`;
      }
      if (!(await writeLine(ctx, out, i >= (sc.dribbleFrom ?? 0) ? sc.dribbleMs : 0))) return;
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
    if (format === 'progress') {
      // Ollama's waitForStream: the last progress object, or the error as a 500
      // (Content-Type without charset: the handler set it before c.JSON)
      let last = null;
      for (const l of lines) {
        let o = l;
        if (typeof l === 'string') {
          try { o = JSON.parse(l); } catch { o = null; }
        }
        if (o?.error) {
          sendJson(res, rec, 500, { error: o.error }, 'application/json');
          markFinished(rec);
          return;
        }
        if (o?.[EFFECT]) o[EFFECT]();
        if (o) last = o;
      }
      sendJson(res, rec, 200, last ?? {}, 'application/json');
      markFinished(rec);
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
    const out = openai ? openaiFull(body, final) : format === 'generate' ? toGenerate(final, body.raw !== true) : final;
    if (sc.dribbleMs) {
      const text = JSON.stringify(out);
      if (rec) { rec.status = 200; rec.headersSentAt = performance.now(); }
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.flushHeaders();
      if (!(await writeLine(ctx, text, sc.dribbleMs))) return;
      res.end();
      if (rec) { rec.finished = true; rec.finishedAt = performance.now(); }
      return;
    }
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
  function handleRoot(req, res, rec) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 17 });
    rec.status = 200;
    rec.headersSentAt = performance.now();
    res.end(req.method === 'HEAD' ? undefined : 'Ollama is running');
    markFinished(rec);
  }

  function jsonRoute(make) {
    return (req, res, rec) => {
      sendJson(res, rec, 200, make());
      markFinished(rec);
    };
  }

  const getVersion = jsonRoute(() => ({ version }));
  const getTags = jsonRoute(() => ({ models: models.map(tagsEntry) }));
  const getPs = jsonRoute(() => ({
    models: models.filter((m) => loaded.includes(m.key)).map((m) => ({
      name: m.name,
      model: m.name,
      size: m.size,
      digest: m.digest,
      details: details(m),
      expires_at: new Date(Date.now() + 300000).toISOString(),
      size_vram: m.size,
      context_length: Math.min(m.context_length, 4096),
    })),
  }));
  const getV1Models = jsonRoute(() => ({
    object: 'list',
    data: models.map((m) => ({
      id: m.name, object: 'model', created: Math.floor(Date.parse(m.modified_at) / 1000), owned_by: 'library',
    })),
  }));

  // path → {METHOD: handler(req, res, rec, body, ctx)}
  const ROUTES = new Map([
    ['/', { GET: handleRoot, HEAD: handleRoot }],
    ['/api/version', { GET: getVersion, HEAD: getVersion }],
    ['/api/tags', { GET: getTags, HEAD: getTags }],
    ['/api/ps', { GET: getPs }],
    ['/api/show', { POST: handleShow }],
    ['/api/chat', { POST: handleChat }],
    ['/api/generate', { POST: handleGenerate }],
    ['/api/embed', { POST: handleEmbed }],
    ['/api/embeddings', { POST: handleEmbeddings }],
    ['/api/pull', { POST: handlePull }],
    ['/api/push', { POST: handlePush }],
    ['/api/create', { POST: handleCreate }],
    ['/api/copy', { POST: handleCopy }],
    ['/api/delete', { DELETE: handleDelete }],
    ['/v1/chat/completions', { POST: handleOpenAIChat }],
    ['/v1/models', { GET: getV1Models, HEAD: getV1Models }],
  ]);
  const BLOB_ROUTE = { HEAD: handleBlobHead, POST: handleBlobUpload };
  // routes that apply their scenario themselves (the others get simplePrelude here)
  const SELF_SCRIPTED = new Set(['/api/chat', '/api/generate', '/v1/chat/completions', '/api/embed',
    '/api/pull', '/api/push', '/api/create']);

  async function route(req, res, rec, body, ctx) {
    const { method } = req;
    const path = rec.path;
    if (down) {
      throw new HttpError(503, 'fake ollama is down');
    }
    if (strict && (!hostOk(req.headers.host) || !originOk(req.headers.origin))) {
      throw new HttpError(403, '', true);
    }
    const isBlob = /^\/api\/blobs\/[^/]+$/.test(path);
    const handlers = isBlob ? BLOB_ROUTE : ROUTES.get(path);
    if (!handlers) {
      rec.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 18 });
      res.end('404 page not found');
      return;
    }
    const handler = Object.hasOwn(handlers, method) ? handlers[method] : null;
    if (!handler) {
      rec.status = 405;
      res.writeHead(405, { 'Content-Type': 'text/plain', 'Content-Length': 22 });
      res.end('405 method not allowed');
      return;
    }
    if (!isBlob && !SELF_SCRIPTED.has(path)) {
      const sc = await scriptedScenario(body, rec, false);
      if (sc && await simplePrelude(res, rec, ctx, sc, path.startsWith('/v1/'))) return;
    }
    return handler(req, res, rec, body, ctx);
  }

  function dispatch(req, res, rec, body, ctx) {
    Promise.resolve()
      .then(() => route(req, res, rec, body, ctx))
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
  }

  const server = http.createServer({ keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30000, requestTimeout: 0, headersTimeout: 60000 }, (req, res) => {
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
      bodyBytes: 0,
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
    req.on('error', () => {});
    if (req.method === 'POST' && rec.path.startsWith('/api/blobs/')) {
      // a blob upload can be huge: its handler streams the body through a hash
      rec.body = null;
      dispatch(req, res, rec, undefined, ctx);
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const buf = Buffer.concat(chunks);
      rec.bodyBytes = buf.length;
      const raw = buf.toString('utf8');
      if (record) rec.rawBody = raw;
      let body;
      let parseErr = null;
      if (raw.length) {
        try { body = JSON.parse(raw); } catch (e) { parseErr = e; }
      }
      rec.body = parseErr ? null : body;
      if (parseErr) {
        ctx.parseError = new HttpError(400, `invalid character '${raw.trim()[0] ?? ''}' looking for beginning of value`);
        if (req.method === 'POST') {
          const err = ctx.parseError;
          Promise.resolve().then(() => sendError(res, rec, err, rec.path.startsWith('/v1/')));
          return;
        }
      }
      dispatch(req, res, rec, body, ctx);
    });
  });
  server.on('clientError', (err, socket) => socket.destroy());
  // Connections open to this fake right now (the gateway's upstream sockets,
  // pooled or busy): a leak check counts them before and after.
  let openConnections = 0;
  server.on('connection', (sock) => {
    openConnections++;
    sock.once('close', () => { openConnections--; });
  });

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
    /**
     * A scenario for one route only: path '/api/pull', '/api/show', '/api/tags', ...
     * or '/api/blobs' (every /api/blobs/:digest). fn(body, record) → scenario |
     * null, or a fixed scenario; null clears. See "Where scenarios apply" above.
     */
    scriptPath(path, fn) {
      if (fn === null || fn === undefined) pathScripts.delete(path);
      else pathScripts.set(path, typeof fn === 'function' ? fn : () => fn);
    },
    /** true: every request gets 503 {"error":"fake ollama is down"} (port stays open). */
    setDown(v) { down = !!v; },
    /** What /api/version reports. */
    setVersion(v) { version = v; },
    /** Which names /api/pull (and /api/create's missing "from") can fetch; see opts.pullable. */
    setPullable(p) { pullable = p; },
    /** Delay (ms) between pull/push/create progress lines. */
    setProgressDelay(ms) { progressDelayMs = ms; },
    /** Add a blob (a "sha256:<hex>" digest, or content whose digest is returned). */
    addBlob(x) { return addBlob(x); },
    /** Whether HEAD /api/blobs/:digest would answer 200. */
    hasBlob(digest) { return hasBlob(digest); },
    /** Names of the installed models, as /api/tags lists them. */
    modelNames() { return models.map((m) => m.name); },
    /** An installed model's normalised description (capabilities, layers, ...), or null. */
    model(name) {
      const m = findModel(name);
      return m ? structuredClone(m) : null;
    },
    /** Recorded POST /api/chat requests. */
    chats() { return requests.filter((r) => r.path === '/api/chat'); },
    /** Recorded requests for a path (and method, if given). */
    requestsTo(path, method) {
      return requests.filter((r) => r.path === path && (!method || r.method === method));
    },
    /** Recorded blob uploads (POST /api/blobs/:digest); each has .blob. */
    blobUploads() { return requests.filter((r) => r.method === 'POST' && r.path.startsWith('/api/blobs/')); },
    /** Close every keep-alive connection that has no request in progress (as a backend's idle timeout does). */
    closeIdle() { server.closeIdleConnections(); },
    /** Forget recorded requests and the scripts (global and per route). */
    reset() { requests.length = 0; scriptFn = null; pathScripts.clear(); down = false; },
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
    /** Number of TCP connections open to the fake right now. */
    get openConnections() { return openConnections; },
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
  const o = { port: 0, tokens: 32, delayMs: 0, models: null, progressDelayMs: 0, embeddingLength: 8 };
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
    else if (a === '--progress-delay-ms') o.progressDelayMs = Number(v());
    else if (a === '--embedding-length') o.embeddingLength = Number(v());
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
    process.stdout.write('usage: node fake.mjs --port N [--tokens 32] [--delay-ms 0] [--models a,b]'
      + ' [--progress-delay-ms 0] [--embedding-length 8]\n');
    process.exit(0);
  }
  const fake = await startFake({
    port: args.port, tokens: args.tokens, delayMs: args.delayMs, record: false,
    progressDelayMs: args.progressDelayMs, embeddingLength: args.embeddingLength,
    models: args.models ?? undefined, loaded: args.models ?? DEFAULT_MODELS.map((m) => m.name),
  });
  process.stdout.write(`${JSON.stringify({ port: fake.port })}\n`);
  const stop = () => { fake.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
