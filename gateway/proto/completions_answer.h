/*
 * completions_answer: a native /api/generate answer as an OpenAI legacy
 * completion (object "text_completion"), streamed (NDJSON lines -> SSE
 * chunks) or whole. Rules pinned by tests/unit/proto/test_completions.c.
 *
 * Whole: {"id":"cmpl-…","object":"text_completion","created","model": the
 * client's name,"choices":[{"text","index":0,"logprobs","finish_reason":
 * "stop"|"length"}],"usage":{prompt_tokens,completion_tokens,total_tokens}}.
 *
 * Streamed: "data: {…}" chunks with the same id, object, created and model,
 * choices[0].text the delta and finish_reason null; with echo, the prompt is
 * the first chunk; then one final chunk (text "", finish_reason "stop" or
 * "length"), with include_usage a usage chunk (choices [] and usage), and
 * "data: [DONE]". Native `thinking` is dropped (no part of a legacy
 * completion); lines that carry nothing else write nothing. A native
 * {"error":...} line, a line that is not a JSON object, a malformed
 * `response`, or the end of the stream before its done line is a 502 the
 * dialect sends in-band (errshape_openai.frame), without [DONE].
 *
 * logprobs (when asked for and Ollama sent them): {"tokens","token_logprobs",
 * "top_logprobs" (per token an object of the most likely tokens and the
 * chosen one), "text_offset" (characters, counted in code points, from the
 * start of the text)}; otherwise null.
 *
 * The plain token line {"model","created_at","response","done":false} (and
 * the plain whole answer) take a fast path over jscan.h: the response literal
 * is copied as it stands, and the output is byte for byte the general cJSON
 * path's (completions_set_fast_path turns it off for the tests that check
 * this).
 *
 * Ownership: a struct completions_stream owns two small buffers (the chunk
 * prefix, a parse scratch), released by completions_stream_free; its echo and
 * backend strings are borrowed and must outlive it. Output is appended to the
 * caller's buf; on failure nothing is. Threading: any thread, one stream per
 * thread at a time; nothing cJSON allocates outlives a call (jarena-safe).
 */
#ifndef GATEWAY_COMPLETIONS_ANSWER_H
#define GATEWAY_COMPLETIONS_ANSWER_H

#include "apierr.h"
#include "buf.h"
#include "completions_request.h"

#include <stdbool.h>
#include <stddef.h>

/* The state of one streamed answer. Fields below `public` may be read. */
struct completions_stream {
    struct buf head;    /* owned: '{"id":..,"object":..,"created":..,"model":..,"choices":[' */
    struct buf scratch; /* owned: a NUL-terminated copy of the line being parsed */
    struct completions_want want; /* echo borrowed */
    bool echoed;                  /* the echo chunk (if any) has been written */
    bool failed;                  /* DIALECT_FAIL was returned */
    long text_offset;             /* characters of text so far (for logprobs) */
    /* public */
    const char *backend;    /* borrowed: named in error messages; NULL = unnamed */
    bool done;              /* the done line was translated and [DONE] written */
    long prompt_tokens;     /* native prompt_eval_count (0 if absent) */
    long completion_tokens; /* native eval_count (0 if absent) */
};

/*
 * Start a streamed answer: client_model as the client asked (echoed in every
 * chunk), id the response id, created the Unix time of every chunk. Strings
 * are copied, but want->echo, which is borrowed. Returns 0, or -1 when memory
 * runs out (completions_stream_free is still safe).
 */
int completions_stream_init(struct completions_stream *s, const char *client_model,
                            const struct completions_want *want, const char *id, long created);

/*
 * One native NDJSON line (without its '\n'; need not be NUL-terminated):
 *   DIALECT_MORE: go on (possibly nothing was written);
 *   DIALECT_DONE: the done line: its text, the final chunk, the usage chunk
 *                 (include_usage) and "data: [DONE]" were written; later
 *                 calls write nothing and return DIALECT_DONE;
 *   DIALECT_FAIL: nothing was written and err is set (502 upstream_error, or
 *                 500 when out's ceiling or memory is hit); the caller ends
 *                 the stream with the in-band error and no [DONE]. Later
 *                 calls fail too.
 */
int completions_stream_line(struct completions_stream *s, const char *line, size_t len,
                            struct buf *out, struct apierr *err);

/* The native stream ended: DIALECT_DONE if the done line was seen, else
 * DIALECT_FAIL with err set (502: the backend closed the stream early).
 * Writes nothing. */
int completions_stream_eof(struct completions_stream *s, struct apierr *err);

/* Release the stream's buffers. Safe after a failed init, and twice. */
void completions_stream_free(struct completions_stream *s);

/*
 * A whole native /api/generate answer (one JSON object, len bytes at body)
 * as a text_completion object appended to out; token counts in
 * *prompt_tokens / *completion_tokens (either may be NULL); backend_name (may
 * be NULL) named in errors. Returns 0, or -1 with err set (502 for a body
 * that is not a JSON object, carries "error" or a malformed response; 500
 * for memory or the ceiling) and out unchanged.
 */
int completions_complete(const char *body, size_t len, const char *client_model, const char *id,
                         long created, const struct completions_want *want,
                         const char *backend_name, struct buf *out, long *prompt_tokens,
                         long *completion_tokens, struct apierr *err);

/* Tests and fuzzers only, before any thread uses this module: turn the fast
 * paths of completions_stream_line and completions_complete off (on by
 * default), to compare their output with the general path's. */
void completions_set_fast_path(bool on);

#endif
