/*
 * chat: OpenAI chat completions <-> Ollama native /api/chat, as pure functions.
 *
 * No I/O, no clocks, no global state: JSON text in, JSON/SSE text out, so every
 * rule can be unit-tested and fuzzed (DESIGN.md, "Pure translation code"). The
 * rules and their sources are in PROTOCOL.md §5; each is pinned by a test in
 * tests/unit/test_chat.c.
 *
 * Four jobs:
 *  1. chat_req_parse + chat_req_to_ollama: validate a client's
 *     /v1/chat/completions body and build the native /api/chat body.
 *  2. chat_stream_*: translate native NDJSON lines, one at a time, into
 *     chat.completion.chunk SSE frames.
 *  3. chat_complete: translate a native non-streamed answer into a
 *     chat.completion object.
 *  4. chat_upstream_error: turn a native non-200 answer into an OpenAI error.
 *
 * Ownership. A struct chat_req owns its parsed client body (`root`) and the
 * native trees built from it (`native`, `options`, whose strings mostly point
 * into `root`); chat_req_free releases all three. A struct chat_stream owns a small
 * heap buffer (the precomputed chunk prefix, a parse scratch); chat_stream_free
 * releases it. Output always goes to a caller's struct buf and is appended,
 * never replaced; on failure nothing is appended. Input bytes are borrowed for
 * the duration of the call and need not be NUL-terminated.
 *
 * Threading. Any thread; no shared state. (cJSON's global error pointer is
 * never used: parsing goes through cJSON_ParseWithLengthOpts. Random ids come
 * from rand_bytes, a per-thread pool over libsodium, so sodium_init must have
 * run. Nothing cJSON allocates in chat_stream_line outlives the call, so it
 * may run inside a jarena_begin/jarena_end pair.)
 *
 * Request rules (what a client may send; anything else is a 400 with `param`
 * naming the field, before a backend is chosen):
 *  - `null` is the same as absent for every optional field.
 *  - Unknown fields are ignored and never forwarded: the native body holds only
 *    what is translated here. Ignored on purpose: user, metadata, store,
 *    service_tier, parallel_tool_calls, logit_bias, prediction, modalities,
 *    audio, web_search_options, name on non-tool messages.
 *  - `n` must be 1 (Ollama returns one choice). Legacy `functions` is a 400
 *    ("use tools"): we would never answer with `function_call`.
 *  - `stream` (bool, default false); stream_options.include_usage counts only
 *    when streaming.
 *  - Roles: system, user, assistant, tool, developer (sent as system).
 *  - Content: a string; or null/absent on an assistant message with tool_calls
 *    (sent as ""); or an array of parts. Text parts (and assistant "refusal"
 *    parts) are joined with "\n" into one native `content` (the rule vLLM
 *    uses: adjacent parts never run into each other); image_url parts, the
 *    image_url being {"url": ...} or a bare string, must be base64 data URLs
 *    (data:image/<type>;base64,... or data:;base64,...) and go, prefix
 *    stripped, into the same message's native `images`, in order. http(s)
 *    image URLs are a 400 (the gateway does not fetch URLs); other part types
 *    (input_audio, file, ...) are a 400.
 *  - Assistant tool_calls[]: function.name required; function.arguments is a
 *    JSON string holding an object ("{}" for no arguments), parsed to the
 *    object Ollama wants; "" or invalid JSON is a 400 naming
 *    messages[i].tool_calls[j].function.arguments. `id` is kept.
 *    `reasoning_content` (or `reasoning`) becomes native `thinking`.
 *  - Tool messages: tool_call_id is kept; tool_name is the message's `name`,
 *    else the name of the earlier assistant tool call with that id.
 *  - Sampling: temperature (>= 0), top_p (0..1), presence_penalty,
 *    frequency_penalty (finite numbers), seed (integer), stop (string or array
 *    of strings), max_completion_tokens or else max_tokens (integer >= 1) ->
 *    num_predict; Ollama extensions top_k (integer >= 0), min_p (0..1),
 *    repeat_penalty (> 0; also spelled repetition_penalty). Nothing else goes
 *    into `options`: no sampling default is ever injected (PROTOCOL.md §5.6).
 *    Client options win over the alias's `options`.
 *  - response_format: text (nothing), json_object -> format "json",
 *    json_schema -> format = json_schema.schema, which must be an object.
 *  - tools: [{type:"function", function:{name, description?, parameters?}}].
 *    tool_choice: "auto" keeps the tools; "none" drops them (the model cannot
 *    call what it is not shown); {type:"function",function:{name}} sends only
 *    that tool (400 if there is no such tool), and the allowed_tools form sends
 *    only the listed tools. "required" (and a named choice) keeps the tools
 *    but cannot be *enforced*: Ollama has no forced tool choice, so the model
 *    may still answer in text. We accept it rather than reject it because the
 *    common frameworks (LangChain bind_tools(tool_choice="any"), the Vercel AI
 *    SDK, OpenAI Agents) send it routinely and a 400 would make them unusable.
 *    tool_choice without tools (other than "none"/"auto") is a 400, as at
 *    OpenAI.
 *  - Thinking: `think` (bool, or an effort string) wins over `reasoning.effort`,
 *    which wins over `reasoning_effort`. Efforts: "" = unset (thinking models
 *    think by default), none -> think:false, minimal -> "low", low, medium,
 *    high as is, max/xhigh -> "max" (as Ollama's own /v1 maps them; "max"
 *    needs Ollama >= 0.22).
 *  - logprobs (bool) and top_logprobs (integer 0..20) are forwarded, and the
 *    native logprobs come back as choices[].logprobs.content.
 *  - The native body always has an explicit "stream"; "options" only when
 *    non-empty.
 *
 * Response rules (PROTOCOL.md §4, §5.1-3, 9, 11-14): each chunk has the
 * response's id, object "chat.completion.chunk", one `created`, the client's
 * model name and one choice; `role` only on the first chunk; thinking goes in
 * both `reasoning_content` and `reasoning`, in its own chunk before the
 * content of the same native line; tool calls are emitted whole with dense
 * 0-based indexes assigned here, an id (Ollama's, else "call_" + random),
 * type, name, and arguments as a JSON string; then one finish chunk
 * (delta {}; "length" if Ollama said so, else "tool_calls" if any tool call
 * was emitted, else "stop"), the usage chunk (choices [] and usage) if asked
 * for, and "data: [DONE]".
 */
#ifndef GATEWAY_CHAT_H
#define GATEWAY_CHAT_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* A validated client request. */
struct chat_req {
    cJSON *root;        /* owned: the client's parsed body */
    cJSON *native;      /* owned: the native body minus model/options; borrows from root */
    cJSON *options;     /* owned: the client's translated options, or NULL */
    const char *model;  /* borrowed from root: the model name the client asked for */
    bool stream;        /* client wants SSE */
    bool include_usage; /* stream_options.include_usage */
    bool has_tools;     /* tools will be sent upstream (after tool_choice) */
    bool logprobs;      /* logprobs requested */
    long max_tokens;    /* num_predict sent upstream, or -1 when unlimited */
};

/*
 * Parse and validate a /v1/chat/completions body (len bytes at body).
 * Returns 0 and fills r (release it with chat_req_free), or -1 with err set:
 * 400 invalid_request_error naming the field in err->param, or 500 when memory
 * runs out. On -1 there is nothing to free.
 */
int chat_req_parse(struct chat_req *r, const char *body, size_t len, struct apierr *err);

/*
 * Append the native /api/chat body for r to out. upstream_model is the name
 * the backend knows (after alias resolution); alias_options (may be NULL) is
 * the alias's `options` object, over which the client's options are merged
 * (client wins). "stream" is r->stream. Returns 0, or -1 with err set (500:
 * out of memory or out's ceiling); out is unchanged on -1.
 */
int chat_req_to_ollama(const struct chat_req *r, const char *upstream_model,
                       const cJSON *alias_options, struct buf *out, struct apierr *err);

/* Release what chat_req_parse built; r may be zeroed or already freed. */
void chat_req_free(struct chat_req *r);

/* chat_stream_line results. */
enum { CHAT_FAIL = -1, CHAT_MORE = 0, CHAT_DONE = 1 };

/* The state of one streamed response. Fields below `public` may be read. */
struct chat_stream {
    struct buf head;    /* owned: '{"id":..,"object":..,"created":..,"model":..,"choices":[' */
    struct buf scratch; /* owned: a NUL-terminated copy of the line being parsed */
    char backend[64];   /* for error messages; "" = unnamed */
    bool include_usage; /* write the usage chunk before [DONE] */
    bool started;       /* a chunk (hence the role) has been written */
    bool failed;        /* CHAT_FAIL was returned */
    /* public */
    bool done;              /* the done:true line was translated and [DONE] written */
    unsigned tool_calls;    /* tool calls emitted so far (the next index) */
    long prompt_tokens;     /* native prompt_eval_count (0 if absent) */
    long completion_tokens; /* native eval_count (0 if absent) */
};

/*
 * Start a streamed response. client_model is the name the client asked for
 * (echoed in every chunk), id the response id (see rand_id), created the
 * Unix time shared by every chunk. Strings are copied. Returns 0, or -1 when
 * memory runs out (then chat_stream_free is still safe).
 */
int chat_stream_init(struct chat_stream *s, const char *client_model, bool include_usage,
                     const char *id, long created);

/* Name the backend in later error messages (copied, truncated to 63 bytes). */
void chat_stream_set_backend(struct chat_stream *s, const char *backend);

/*
 * Translate one native NDJSON line (without its '\n'; need not be
 * NUL-terminated) into zero or more SSE frames appended to out.
 *   CHAT_MORE: go on (possibly nothing was written: empty deltas are skipped).
 *   CHAT_DONE: the done:true line: its content/tool calls, the finish chunk,
 *              the usage chunk (if include_usage) and "data: [DONE]" were
 *              written; the caller ends the body. Later calls write nothing
 *              and return CHAT_DONE again.
 *   CHAT_FAIL: nothing was written for this line and err is set: 502 api_error
 *              "upstream_error" for a native {"error":...} line, a line that is
 *              not a JSON object, or a malformed message; 500 when out's
 *              ceiling or memory is hit. The caller writes sse_error(err) and
 *              ends the body WITHOUT [DONE]. Later calls return CHAT_FAIL.
 */
int chat_stream_line(struct chat_stream *s, const char *line, size_t len, struct buf *out,
                     struct apierr *err);

/*
 * The upstream body ended. Returns CHAT_DONE if the done line was seen, else
 * CHAT_FAIL with err set (502 upstream_error: the backend closed the stream
 * early). Writes nothing.
 */
int chat_stream_eof(struct chat_stream *s, struct apierr *err);

/* Tests and fuzzers only: turn the plain-content-line fast path of
 * chat_stream_line off (on by default) to compare its output with the
 * general cJSON path's, which must be the same byte for byte. */
void chat_set_fast_path(bool on);

/* Release the stream's buffers. Safe after a failed init, and twice. */
void chat_stream_free(struct chat_stream *s);

/*
 * Translate a native non-streamed answer (one JSON object, len bytes at body)
 * into a chat.completion object appended to out: id, created, the client's
 * model, one choice with message {role, content (null only when there are
 * tool calls and no text), reasoning_content + reasoning, tool_calls},
 * finish_reason, logprobs, and usage (always). Token counts are stored in
 * *prompt_tokens / *completion_tokens (either may be NULL). backend_name
 * (may be NULL) is named in error messages. Returns 0, or -1 with err set
 * (502 upstream_error for a body that is not a JSON object or carries
 * "error"; 500 for memory or the ceiling); out is unchanged on -1.
 */
int chat_complete(const char *body, size_t len, const char *client_model, const char *id,
                  long created, const char *backend_name, struct buf *out, long *prompt_tokens,
                  long *completion_tokens, struct apierr *err);

/*
 * Map a native non-200 answer (status, and its body, which may be anything:
 * {"error":"text"}, gin's plain-text 404, a proxy's HTML page, nothing) from
 * backend_name (may be NULL) to an OpenAI error. The message names the backend
 * and Ollama's reason; the raw body is never passed through.
 *   400 -> 400 invalid_request_error (param "tools", "reasoning_effort" or
 *          "model" when Ollama names a missing capability)
 *   404 {"error":"... not found"} -> 404 invalid_request_error model_not_found;
 *          any other 404 (a wrong URL) -> 502 upstream_error, no_retry
 *   500 with a deterministic cause: invalid format / schema -> 400 (param
 *          "response_format"); "does not support" -> 400; option type errors
 *          and "requires more system memory" -> 502 upstream_error, no_retry
 *   503 and 429 -> 503 api_error backend_unavailable
 *   401, 403 and other 4xx -> 502 upstream_error, no_retry (the gateway's
 *          request or credentials were refused: not the client's doing)
 *   other 5xx, 408, 499 (and anything else) -> 502 api_error upstream_error
 */
void chat_upstream_error(int status, const char *body, size_t len, const char *backend_name,
                         struct apierr *err);

#endif
