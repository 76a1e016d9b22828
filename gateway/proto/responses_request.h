/*
 * responses_request: a client's OpenAI /v1/responses body (the Responses
 * API, stateless), validated and translated into the native /api/chat body,
 * as pure functions (DESIGN.md, "Other dialects").
 *
 * Request rules (anything else a client may send that is not listed is
 * ignored and never forwarded; a wrong type is a 400 naming the field):
 *  - Stateless: `previous_response_id`, `conversation`, `background: true`
 *    and `item_reference` input items are a 400 that says the gateway stores
 *    nothing. `store` is accepted and ignored (nothing is ever stored).
 *  - `input`: a string (one user message), or items:
 *      message (`type` "message", or no type and a `role`): roles user,
 *        assistant, system, developer (= system); content a string or parts:
 *        input_text / output_text / text (joined with "\n", the rule chat
 *        completions uses), refusal, input_image with a base64 data URL in
 *        `image_url` (dataurl.h; a file_id is a 400: nothing is stored);
 *      function_call (call_id, name, arguments: a string holding a JSON
 *        object, "" = {}): a tool call on the assistant message just before
 *        it, or on a new one;
 *      function_call_output (call_id, output: a string or text parts): a
 *        `tool` message named after the function_call with that call_id;
 *      custom_tool_call (call_id, name, input: a string): a tool call whose
 *        arguments are {"input": input}, placed as a function_call is;
 *      custom_tool_call_output: as function_call_output;
 *      reasoning: dropped (Ollama cannot take encrypted reasoning back, and
 *        a model needs none of its past thinking to go on).
 *    Any other item type is a 400 naming it.
 *  - `instructions` (a string): a system message before the input.
 *  - `tools`: function tools ({type:"function", name, description?,
 *    parameters?}) as native tools; `namespace` groups flattened into their
 *    function tools (remembered in `namespaces`); custom (freeform) tools
 *    ({type:"custom", name, description?, format?}: Codex CLI's apply_patch)
 *    as native function tools taking one string argument `input` whose
 *    description carries the format's grammar (Ollama's tool calls are JSON;
 *    remembered in `customs`, so that a call is answered as a
 *    custom_tool_call); every other type (web_search, file_search,
 *    tool_search, ...) left out, not refused: Codex CLI sends hosted tools on
 *    every request and Ollama cannot run them.
 *  - `tool_choice`: "auto"/"required" keep the tools (required cannot be
 *    enforced: Ollama has no forced tool choice), "none" drops them,
 *    {type:"function"|"custom", name} sends that tool only,
 *    {type:"allowed_tools", tools:[...]} the listed ones; a hosted tool's
 *    choice is "auto".
 *  - `temperature` (>= 0), `top_p` (0..1), `max_output_tokens` (>= 1, as
 *    num_predict) in the native options; no default is injected.
 *  - `text.format`: text (nothing), json_object ("json"), json_schema
 *    (`schema`, an object, as format).
 *  - `reasoning.effort` -> think, as chat completions' reasoning_effort
 *    (effort.h); `reasoning.summary` ignored.
 *  - `stream` (a boolean).
 *
 * Ownership and threading as chat_request.h: the struct owns the parsed
 * body and the native trees that borrow from it; output is appended to the
 * caller's buf, nothing on failure; any thread.
 */
#ifndef GATEWAY_RESPONSES_REQUEST_H
#define GATEWAY_RESPONSES_REQUEST_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct responses_req {
    cJSON *root;       /* owned: the client's parsed body */
    cJSON *native;     /* owned: the native body minus model/options; borrows from root */
    cJSON *options;    /* owned: the client's translated options, or NULL */
    const char *model; /* borrowed from root */
    bool stream;
    /* "name\0namespace\0" for each function tool that came from a
     * namespace group, so that a call to it is answered with its namespace
     * (responses_answer.h); empty when none did */
    struct buf namespaces;
    /* "name\0" for each custom tool, so that a call to it is answered as a
     * custom_tool_call with its input (responses_answer.h); empty when none */
    struct buf customs;
};

/* Parse and validate a /v1/responses body. 0 and r filled (free it with
 * responses_req_free), or -1 with err set (400 naming the field, or 500);
 * nothing to free on -1. */
int responses_req_parse(struct responses_req *r, const char *body, size_t len, struct apierr *err);

/* Append the native /api/chat body for r (the backend's model name, the
 * alias's options under the client's). 0, or -1 with err set (500); out
 * unchanged on -1. */
int responses_req_to_ollama(const struct responses_req *r, const char *upstream_model,
                            const cJSON *alias_options, struct buf *out, struct apierr *err);

/* Release what responses_req_parse built; r may be zeroed or freed already. */
void responses_req_free(struct responses_req *r);

#endif
