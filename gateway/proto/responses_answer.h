/*
 * responses_answer: the Responses API's `response` object and its output
 * items, as both the streamed (responses_stream.h) and the whole answer
 * write them, and the whole answer itself: a non-streamed native /api/chat
 * answer as a response object.
 *
 * The object: {"id":"resp_…","object":"response","created_at","status",
 * "error","incomplete_details","model" (as the client asked),"output":[…],
 * "usage"}. Status "completed", or "incomplete" with
 * incomplete_details.reason "max_output_tokens" when Ollama stopped at its
 * token limit (done_reason "length"); "in_progress" (usage null) in a
 * stream's first events; "failed" with error {code, message} after an error
 * mid-stream. usage: input_tokens (prompt_eval_count), output_tokens
 * (eval_count), total_tokens, with the detail objects the API always has.
 *
 * Output items, in this order: `reasoning` (the thinking as one
 * summary_text), `message` (one output_text part), `function_call`
 * (call_id: Ollama's id, else made up; arguments: a JSON string), or
 * `custom_tool_call` for a call to one of the request's custom tools
 * (input: the call's `input` argument, the string the tool was offered to
 * Ollama with). Item ids
 * are the response id's random part with a prefix and the item's index
 * ("msg_<r>_1"): unique, and the same in every event that names the item.
 *
 * Text given to the item writers is already JSON-escaped (the inside of a
 * string literal), so the stream can keep the text it accumulates escaped.
 * Writers append and return 0, or nonzero when out's ceiling or memory is
 * hit (the caller cuts out back). Pure; any thread.
 */
#ifndef GATEWAY_RESPONSES_ANSWER_H
#define GATEWAY_RESPONSES_ANSWER_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* What every response object of one request shares. Borrowed strings. */
struct responses_meta {
    const char *id;    /* "resp_…" */
    const char *model; /* as the client asked */
    long created;
    /* responses_req's "name\0namespace\0" pairs (may be NULL, len 0): a
     * call to one of those names carries "namespace", as the API answers a
     * call to a tool of a namespace group */
    const char *namespaces;
    size_t namespaces_len;
    /* responses_req's custom tool names ("name\0" each; may be NULL, len
     * 0): a call to one is a custom_tool_call item */
    const char *customs;
    size_t customs_len;
};

/* The item id: prefix ("msg", "rs", "fc", "ctc") + "_" + the id's random part +
 * "_" + index, as a JSON string. */
int responses_put_item_id(struct buf *out, const struct responses_meta *m, const char *prefix,
                          unsigned index);

/* Items; esc/len is JSON-escaped text. `done` picks the final form (status
 * "completed", the text) over the opening one (in_progress, no text). */
int responses_put_reasoning(struct buf *out, const struct responses_meta *m, unsigned index,
                            const char *esc, size_t len, bool done);
int responses_put_message(struct buf *out, const struct responses_meta *m, unsigned index,
                          const char *esc, size_t len, bool done);
/* A function call; call_id and args are plain text (escaped here). */
int responses_put_call(struct buf *out, const struct responses_meta *m, unsigned index,
                       const char *call_id, const char *name, const char *args, bool done);

/* A call to a custom tool; call_id and input are plain text (escaped here). */
int responses_put_custom_call(struct buf *out, const struct responses_meta *m, unsigned index,
                              const char *call_id, const char *name, const char *input, bool done);

/* Whether name is one of the request's custom tools. */
bool responses_is_custom(const struct responses_meta *m, const char *name);

/* A native tool call's arguments as JSON text (the caller frees it with
 * cJSON_free), or NULL when memory runs out; "{}" when absent. */
char *responses_call_args(const cJSON *tool_call);

/* A custom tool call's input (the caller frees it with cJSON_free): its
 * `input` argument when that is a string, else the whole arguments as JSON
 * text (a model that made up its own argument names still gets its call
 * through); NULL when memory runs out. */
char *responses_custom_input(const cJSON *tool_call);

/* A tool call's id: Ollama's when it gave one, else "call_<r>_<index>"
 * (written into buf, size bytes). */
const char *responses_call_id(const cJSON *tool_call, const struct responses_meta *m,
                              unsigned index, char *buf, size_t size);

/* How a response object ends. */
struct responses_end {
    const char *status;         /* "in_progress", "completed", "incomplete", "failed" */
    bool length;                /* incomplete: stopped at max_output_tokens */
    const struct apierr *error; /* failed: why */
    bool usage;                 /* write usage (else null) */
    long input_tokens, output_tokens;
};

/* The response object, its output array being the items (comma-separated
 * JSON, items_len bytes; may be empty). */
int responses_put_response(struct buf *out, const struct responses_meta *m, const char *items,
                           size_t items_len, const struct responses_end *e);

/*
 * A whole non-streamed native /api/chat answer (len bytes at body) as a
 * response object appended to out; token counts stored in *prompt_tokens /
 * *completion_tokens (either may be NULL). 0, or -1 with err set (502 for an
 * answer that is not one, naming backend_name; 500 for memory or the
 * ceiling); out unchanged on -1.
 */
int responses_complete(const char *body, size_t len, const struct responses_meta *m,
                       const char *backend_name, struct buf *out, long *prompt_tokens,
                       long *completion_tokens, struct apierr *err);

#endif
