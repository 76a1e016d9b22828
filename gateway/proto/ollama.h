/*
 * ollama: Ollama's native answers (/api/chat; PROTOCOL.md §1.6, §1.8) as
 * every dialect reads them.
 *
 * Two ways in. The general path parses a line or a whole answer into a cJSON
 * tree (ollama_line, ollama_answer), turning what cannot be an answer (not
 * JSON, not an object, an {"error":...} object) into the 502 the client gets.
 * The fast path (ollama_scan_message, ollama_scan_answer) reads the plain
 * shapes in place with jscan.h and hands back the text as JSON literals to
 * copy as they stand; on anything else it declines and the caller takes the
 * general path, which writes the same bytes.
 *
 * Ownership: trees returned are the caller's to free; views point into the
 * caller's input. The scratch buffer given to ollama_line is the caller's (it
 * holds a NUL-terminated copy of the line). Pure functions; any thread.
 */
#ifndef GATEWAY_OLLAMA_H
#define GATEWAY_OLLAMA_H

#include "apierr.h"
#include "buf.h"
#include "jscan.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * One streamed native line (no '\n'; need not be NUL-terminated) as a JSON
 * object, parsed in scratch. NULL with err set (502 upstream_error naming
 * backend, which may be NULL) when it is not JSON, not an object, or an
 * {"error":...} line (Ollama's mid-stream failure).
 */
cJSON *ollama_line(struct buf *scratch, const char *line, size_t len, const char *backend,
                   struct apierr *err);

/* The same for a whole non-streamed answer (in the words of an answer). */
cJSON *ollama_answer(const char *body, size_t len, const char *backend, struct apierr *err);

/* A native token count (prompt_eval_count, eval_count): missing, negative or
 * absurd values count as 0 (Ollama omits zero counts). */
long ollama_count(const cJSON *obj, const char *key);

/* Did the answer stop at its token limit (done_reason "length")? */
bool ollama_length(const cJSON *obj);

/* The fast path's view of a message: {"role":"…","content":"…","thinking":"…"},
 * each member at most once and nothing else; content and thinking must be
 * verbatim literals (jscan_string). */
struct ollama_message_scan {
    struct str *content, *thinking; /* filled when present; p NULL = absent */
    bool role;
};

/* jscan_object's member callback for a message (extern so that every fast
 * path calls it directly, as ollama_scan_message below expands in place). */
const char *ollama_message_member(void *ud, const struct str *key, const char *p, const char *end);

/* The message object at p, its content and thinking literals filled (their p
 * stay NULL when absent): the end of the object, or NULL to decline. */
static inline const char *ollama_scan_message(const char *p, const char *end, struct str *content,
                                              struct str *thinking)
{
    struct ollama_message_scan m = {.content = content, .thinking = thinking};
    return jscan_object(p, end, ollama_message_member, &m);
}

/* What the fast path takes from a whole non-streamed answer
 *   {"model":"…","created_at":"…","message":{…},"done":true,"done_reason":"stop",
 *    "total_duration":N,…,"eval_count":N}
 * Literals include their quotes; p NULL = absent. */
struct ollama_fast_answer {
    struct str content, thinking; /* message.content, message.thinking */
    struct str reason;            /* done_reason, a literal without escapes */
    long prompt_tokens, completion_tokens;
    bool message; /* the answer has a message */
};

/* true: body is such an answer (each key at most once, counts plain digits,
 * nothing else) and f is filled; false: the general path's to judge. */
bool ollama_scan_answer(const char *body, size_t len, struct ollama_fast_answer *f);

/* ollama_length() for a scanned answer. */
static inline bool ollama_fast_length(const struct ollama_fast_answer *f)
{
    return f->reason.len == 8 && memcmp(f->reason.p, "\"length\"", 8) == 0;
}

#endif
