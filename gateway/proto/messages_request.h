/*
 * messages_request: a client's Anthropic /v1/messages body, validated and
 * translated into the native /api/chat body, as pure functions (DESIGN.md,
 * "Other dialects"). Every rule is pinned by tests/unit/proto/test_messages.c
 * and fuzzed by tests/fuzz/fuzz_messages.c.
 *
 * Ownership: a struct messages_req owns the parsed client body (`root`) and
 * the native trees made from it (`native`, `options`, which borrow strings
 * from root, and own the few they had to join); messages_req_free releases
 * them. Output is appended to a caller's buf; on failure nothing is
 * appended. Input bytes are borrowed for the call. Any thread; no shared
 * state.
 *
 * Request rules (anything else is a 400 naming the field, before a backend
 * is chosen; `null` is the same as absent):
 *  - model (required), stream (boolean), max_tokens (an integer >= 1, ->
 *    num_predict; optional here, though Anthropic requires it), temperature
 *    (>= 0), top_p (0..1), top_k (an integer >= 0), stop_sequences (strings,
 *    -> stop). No sampling default is injected.
 *  - system: a string, or an array of {type:"text", text} blocks joined with
 *    "\n", sent as the first native message (role system).
 *  - messages[]: role "user" or "assistant"; content a string or blocks:
 *      text                  joined with "\n" into the native content
 *      image                 source {type:"base64", media_type "image/...", data}
 *                            -> the message's native images; a url or file
 *                            source is a 400 (the gateway fetches nothing)
 *      tool_use (assistant)  {id, name, input object} -> native tool_calls
 *      thinking (assistant)  -> native thinking (signature ignored);
 *                            redacted_thinking is dropped
 *      tool_result (user)    {tool_use_id, content: string or text/image
 *                            blocks} -> a native role "tool" message (in
 *                            the order of the blocks) with tool_name, the
 *                            name of the tool_use with that id; is_error is
 *                            accepted and ignored
 *    Any other block type is a 400.
 *  - tools[]: {name, description?, input_schema?} (type absent or "custom")
 *    -> function tools; Anthropic's own typed tools (web_search_…, bash_…,
 *    text_editor_…, computer_…), which only Anthropic runs or knows the
 *    schema of, are left out, not refused.
 *  - tool_choice: {type:"auto"} keeps the tools; "none" drops them; "tool"
 *    with a name sends only that tool (400 when there is none such); "any"
 *    keeps them all, and like "tool" cannot be enforced (Ollama has no forced
 *    tool choice: the model may still answer in text).
 *    disable_parallel_tool_use is ignored.
 *  - thinking: {type:"enabled"} (or "adaptive") -> think: true; "disabled"
 *    -> think: false; budget_tokens is ignored.
 *  - output_config.format (or the older output_format): {type:"json_schema",
 *    schema} -> native format = schema; output_config.effort is ignored.
 *  - Ignored: metadata, cache_control on any block or tool, citations,
 *    context_management, service_tier, container, and any unknown member.
 */
#ifndef GATEWAY_MESSAGES_REQUEST_H
#define GATEWAY_MESSAGES_REQUEST_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct messages_req {
    cJSON *root;       /* owned: the client's parsed body */
    cJSON *native;     /* owned: native fields minus model/options; borrows from root */
    cJSON *options;    /* owned: the client's translated options, or NULL */
    const char *model; /* borrowed from root */
    bool stream;
};

/* Parse and validate a /v1/messages body. 0 and r filled (release it with
 * messages_req_free), or -1 with err set (400 naming the field, or 500); on
 * -1 there is nothing to free. */
int messages_req_parse(struct messages_req *r, const char *body, size_t len, struct apierr *err);

/* Append the native /api/chat body for r under upstream_model, the alias's
 * options (may be NULL) under the client's. 0, or -1 with err set (500) and
 * out unchanged. */
int messages_req_to_ollama(const struct messages_req *r, const char *upstream_model,
                           const cJSON *alias_options, struct buf *out, struct apierr *err);

/* Release what messages_req_parse made; r may be zeroed or freed already. */
void messages_req_free(struct messages_req *r);

#endif
