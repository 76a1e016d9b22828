/*
 * messages_stream: a streamed native /api/chat answer, NDJSON line by line,
 * as the server-sent events of Anthropic's Messages API, in the order the
 * SDKs' accumulators (MessageStream) expect:
 *
 *   event: message_start        {"type":"message_start","message":{id, model as asked,
 *                                content [], stop_reason null, usage 0/0}}
 *   per block, dense 0-based index:
 *   event: content_block_start  thinking {"thinking":"","signature":""} | text {"text":""}
 *                               | tool_use {"id":"toolu_…","name","input":{}}
 *   event: content_block_delta  thinking_delta | text_delta | input_json_delta (a tool
 *                               call's whole input in one partial_json: Ollama sends
 *                               each call whole)
 *   event: content_block_stop
 *   event: message_delta        {"delta":{"stop_reason","stop_sequence":null},
 *                                "usage":{"input_tokens","output_tokens"}}
 *   event: message_stop
 *
 * message_start goes out with the first native line; thinking and text
 * deltas extend the open block of their kind, and a change of kind closes
 * it. An answer with no block at all gets one empty text block, as the whole
 * message does. Ollama's counts arrive on its last line only, so
 * message_start says 0 and message_delta carries both counts (the SDKs take
 * input_tokens from message_delta when it is there). Every rule is pinned
 * by tests/unit/proto/test_messages.c.
 *
 * Ownership: the stream owns a scratch buffer (messages_stream_free); the
 * id and model strings are borrowed and must outlive it. Output is appended
 * to a caller's buf; on failure nothing is appended for that line. Any
 * thread, one stream per thread at a time; nothing cJSON allocates outlives a
 * call.
 */
#ifndef GATEWAY_MESSAGES_STREAM_H
#define GATEWAY_MESSAGES_STREAM_H

#include "apierr.h"
#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

struct messages_stream {
    struct buf scratch;  /* owned: a NUL-terminated copy of the line being parsed */
    const char *id;      /* borrowed: "msg_…" */
    const char *model;   /* borrowed: the model as the client asked */
    const char *backend; /* borrowed: named in errors; may be NULL */
    int open;            /* the block open now: 0 none, else its kind */
    unsigned blocks;     /* blocks started so far (the next index) */
    bool started;        /* message_start was written */
    bool failed;
    /* public */
    bool done;              /* message_stop was written */
    unsigned tool_uses;     /* tool_use blocks written */
    long prompt_tokens;     /* native prompt_eval_count (0 if absent) */
    long completion_tokens; /* native eval_count (0 if absent) */
};

/* Start a stream (id and model borrowed). Cannot fail. */
void messages_stream_init(struct messages_stream *s, const char *id, const char *model);

/* One native line (no '\n', need not be NUL-terminated): DIALECT_MORE,
 * DIALECT_DONE (the done line: everything up to message_stop was written;
 * later calls write nothing and return DIALECT_DONE), or DIALECT_FAIL with
 * err set (502 for what Ollama sent, 500 for memory or out's ceiling) and
 * nothing written; later calls fail too. */
int messages_stream_line(struct messages_stream *s, const char *line, size_t len, struct buf *out,
                         struct apierr *err);

/* The native stream ended: DIALECT_DONE if its done line was seen, else
 * DIALECT_FAIL with err set (502: it ended early). Writes nothing. */
int messages_stream_eof(struct messages_stream *s, struct apierr *err);

void messages_stream_free(struct messages_stream *s);

#endif
