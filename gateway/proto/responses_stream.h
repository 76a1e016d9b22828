/*
 * responses_stream: a streamed native /api/chat answer, NDJSON line by line,
 * as the Responses API's server-sent events: "event: <type>" and
 * "data: {"type":<type>,"sequence_number":N,...}", N counting from 0 over
 * every event, in the order the openai SDK's accumulator
 * (lib/responses/ResponseAccumulator) builds its snapshot from:
 *
 *   response.created, response.in_progress     (with the first native line)
 *   per output item, opened when its kind of text starts:
 *     reasoning: output_item.added, reasoning_summary_part.added,
 *                reasoning_summary_text.delta..., reasoning_summary_text.done,
 *                reasoning_summary_part.done, output_item.done
 *     message:   output_item.added, content_part.added, output_text.delta...,
 *                output_text.done, content_part.done, output_item.done
 *     function call (whole, as Ollama sends them): output_item.added,
 *                function_call_arguments.delta, function_call_arguments.done,
 *                output_item.done
 *     custom tool call (a call to one of the request's custom tools):
 *                output_item.added, custom_tool_call_input.delta,
 *                custom_tool_call_input.done, output_item.done
 *   response.completed (or response.incomplete when Ollama stopped at its
 *   token limit) carrying the whole response with usage. No [DONE].
 *
 * Thinking that comes after text (or text after thinking) closes the open
 * item and opens one of the other kind; a tool call closes the open item. An
 * answer with no output at all still gets one empty message, so that a
 * client always finds output_text. After a failure the in-band error is a
 * `response.failed` event (responses_stream_fail), created/in_progress
 * first if nothing was sent yet, so the SDK's accumulator always starts
 * from response.created.
 *
 * The stream keeps the answer for the final event (up to 64 MiB, the
 * engine's bound on a whole answer; past it the stream fails with a 500).
 *
 * Ownership: the stream owns its buffers (the done items, the open item's
 * text, a parse scratch, copies of the id and model); free them with
 * responses_stream_free. Output is appended to the caller's buf; on failure
 * nothing is appended. Threading: any thread, one stream at a time; cJSON
 * trees made in a call die in it.
 */
#ifndef GATEWAY_RESPONSES_STREAM_H
#define GATEWAY_RESPONSES_STREAM_H

#include "apierr.h"
#include "buf.h"
#include "responses_answer.h"

#include <stdbool.h>
#include <stddef.h>

enum { RESPONSES_FAIL = -1, RESPONSES_MORE = 0, RESPONSES_DONE = 1 };

struct responses_stream {
    struct responses_meta meta; /* points at id and model below */
    char id[64];
    char *model;        /* owned copy */
    struct buf items;   /* done items, comma-separated, for the final response */
    struct buf text;    /* the open item's text, JSON-escaped */
    struct buf scratch; /* NUL-terminated copy of the line being parsed */
    char backend[64];   /* for error messages */
    unsigned seq;       /* the next sequence_number */
    unsigned nitems;    /* output items opened: the next output_index */
    int open;           /* the kind of item now open (0 = none) */
    bool started;       /* response.created has been written */
    bool failed, done;
    long prompt_tokens, completion_tokens;
};

/* Start a stream: the response id, the client's model, the time. 0, or -1
 * when memory runs out (responses_stream_free is still safe). */
int responses_stream_init(struct responses_stream *s, const char *id, const char *client_model,
                          long created);

/* The request's namespace pairs (responses_meta), borrowed for the
 * stream's life. */
void responses_stream_set_namespaces(struct responses_stream *s, const char *p, size_t len);

/* The request's custom tool names (responses_meta), borrowed for the
 * stream's life. */
void responses_stream_set_customs(struct responses_stream *s, const char *p, size_t len);

/* Name the backend in later error messages. */
void responses_stream_set_backend(struct responses_stream *s, const char *backend);

/* One native line (no '\n', need not be NUL-terminated): RESPONSES_MORE,
 * RESPONSES_DONE (the done line: everything through response.completed was
 * written), or RESPONSES_FAIL with err set and nothing written (502 for a
 * broken or {"error":...} line, 500 for the ceiling). */
int responses_stream_line(struct responses_stream *s, const char *line, size_t len, struct buf *out,
                          struct apierr *err);

/* The native stream ended: RESPONSES_DONE if its done line was seen, else
 * RESPONSES_FAIL with err set (502). Writes nothing. */
int responses_stream_eof(struct responses_stream *s, struct apierr *err);

/* The in-band error: [response.created, response.in_progress,]
 * response.failed with e's code and message and the items done so far. 0,
 * or -1 (nothing written). */
int responses_stream_fail(struct responses_stream *s, struct buf *out, const struct apierr *e);

void responses_stream_free(struct responses_stream *s);

#endif
