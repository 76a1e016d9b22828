/*
 * ollama: Ollama's native API (/api/chat, /api/generate; PROTOCOL.md §1, §2)
 * as every dialect writes its requests and reads its answers.
 *
 * Requests: ollama_body writes the body every dialect sends: the model, an
 * explicit "stream" (Ollama's default is true: PROTOCOL.md §5.8), the
 * dialect's translated fields, and "options" (the alias's under the
 * client's), only when there are any.
 *
 * Answers, two ways in. The general path parses a line or a whole answer
 * into a cJSON tree (ollama_line, ollama_answer), turning what cannot be an
 * answer (not JSON, not an object, an {"error":...} object) into the 502 the
 * client gets.
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
#include "dialect.h"
#include "jscan.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * Append the native request body to out: {"model":model,"stream":stream,
 * <each member of fields, in order>,"options":{...}}. The options are the
 * alias's (may be NULL) for every key the client's (may be NULL) lacks, then
 * the client's; "options" is left out when empty. Returns 0, or -1 with err
 * set (500: out of memory or out's ceiling) and out unchanged.
 */
int ollama_body(const char *model, bool stream, const cJSON *fields, const cJSON *client_options,
                const cJSON *alias_options, struct buf *out, struct apierr *err);

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

/*
 * The end of a streamed native answer, for a dialect's eof(): DIALECT_DONE
 * if its done line was seen (done), else DIALECT_FAIL with err set (502
 * naming backend: the backend closed the stream early, or it had failed
 * already) and *failed set.
 */
int ollama_eof(bool done, bool *failed, const char *backend, struct apierr *err);

/*
 * The end of a dialect's whole-answer translation, once its writes to out
 * (from start on) are done: if rc says one failed, out is cut back to start,
 * err set (500) and -1 returned; else the token counts are stored where
 * asked (either pointer may be NULL) and 0 returned.
 */
int ollama_answer_written(int rc, struct buf *out, size_t start, long pt, long ct,
                          long *prompt_tokens, long *completion_tokens, struct apierr *err);

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

/* What the fast path takes from a whole non-streamed answer, of /api/chat
 *   {"model":"…","created_at":"…","message":{…},"done":true,"done_reason":"stop",
 *    "total_duration":N,…,"eval_count":N}
 * or of /api/generate, with "response" (and "thinking", "context") in place
 * of "message". Literals include their quotes; p NULL = absent. */
struct ollama_fast_answer {
    struct str content;  /* message.content or response (verbatim): the text */
    struct str thinking; /* message.thinking (verbatim) */
    struct str reason;   /* done_reason, a literal without escapes */
    long prompt_tokens, completion_tokens;
    bool message;  /* the text came from a message (/api/chat) */
    bool response; /* the text came from "response" (/api/generate) */
};

/* true: body is such an answer (each key at most once, counts plain digits,
 * "context" plain counts, the other strings as ollama_scan_message's, not
 * both a message with content and a response, and nothing else) and f is
 * filled; false: the general path's to judge. A dialect takes the answers
 * of its own route (f->message or f->response) and ignores the members it
 * does not translate, as its general path does. */
bool ollama_scan_answer(const char *body, size_t len, struct ollama_fast_answer *f);

/* ollama_length() for a scanned answer. */
static inline bool ollama_fast_length(const struct ollama_fast_answer *f)
{
    return f->reason.len == 8 && memcmp(f->reason.p, "\"length\"", 8) == 0;
}

#endif
