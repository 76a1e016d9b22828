/*
 * chat_request: a client's OpenAI /v1/chat/completions body, validated and
 * translated into the native /api/chat body, as pure functions.
 *
 * No I/O, no clocks, no global state: JSON text in, JSON text out, so every
 * rule can be unit-tested and fuzzed (DESIGN.md, "Pure translation code"). The
 * rules and their sources are in PROTOCOL.md §5; each is pinned by a test in
 * tests/unit/proto/test_chat_request.c.
 *
 * Ownership. A struct chat_req owns its parsed client body (`root`) and the
 * native trees built from it (`native`, `options`, whose strings mostly point
 * into `root`); chat_req_free releases all three. Output goes to a caller's
 * struct buf and is appended, never replaced; on failure nothing is appended.
 * Input bytes are borrowed for the duration of the call and need not be
 * NUL-terminated.
 *
 * Threading. Any thread; no shared state. (cJSON's global error pointer is
 * never used: parsing goes through json_parse.)
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
 *  - Sampling: sampling.h's rules, shared with legacy completions
 *    (temperature, top_p, penalties, seed, stop, max_completion_tokens or
 *    max_tokens -> num_predict, top_k, min_p, repeat_penalty). Nothing else
 *    goes into `options`: no sampling default is ever injected (PROTOCOL.md
 *    §5.6). Client options win over the alias's `options` (ollama_body).
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
 */
#ifndef GATEWAY_CHAT_REQUEST_H
#define GATEWAY_CHAT_REQUEST_H

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

#endif
