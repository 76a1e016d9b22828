/*
 * chat_stream: a streamed native /api/chat answer, NDJSON line by line, as
 * OpenAI chat.completion.chunk SSE frames (PROTOCOL.md §4, §5.1-3, 9, 11-13).
 *
 * Each chunk has the response's id, object "chat.completion.chunk", one
 * `created`, the client's model name and one choice; `role` only on the first
 * chunk; thinking goes in both `reasoning_content` and `reasoning`, in its own
 * chunk before the content of the same native line; tool calls are emitted
 * whole with dense 0-based indexes assigned here, an id (Ollama's, else
 * "call_" + random), type, name, and arguments as a JSON string; then one
 * finish chunk (delta {}; "length" if Ollama said so, else "tool_calls" if
 * any tool call was emitted, else "stop"), the usage chunk (choices [] and
 * usage) if asked for, and "data: [DONE]". Each rule is pinned by a test in
 * tests/unit/proto/test_chat_stream.c.
 *
 * The plain token line, almost all of a stream, takes a fast path (jscan.h):
 * its content literal is copied as it stands; it writes exactly what the
 * general cJSON path writes (chat_set_fast_path in chat_answer.h turns it off
 * for the tests that check this).
 *
 * Ownership: a struct chat_stream owns a small heap buffer (the precomputed
 * chunk prefix, a parse scratch); chat_stream_free releases it. Output is
 * appended to a caller's struct buf; on failure nothing is appended. Line
 * bytes are borrowed for the call.
 * Threading: any thread, one stream per thread at a time. Nothing cJSON
 * allocates in chat_stream_line outlives the call, so it may run inside a
 * jarena_begin/jarena_end pair. Random tool-call ids come from rand_bytes, so
 * sodium_init must have run.
 */
#ifndef GATEWAY_CHAT_STREAM_H
#define GATEWAY_CHAT_STREAM_H

#include "apierr.h"
#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

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

/* Release the stream's buffers. Safe after a failed init, and twice. */
void chat_stream_free(struct chat_stream *s);

#endif
