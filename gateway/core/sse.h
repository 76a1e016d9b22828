/*
 * sse: server-sent-event framing for OpenAI streams, appended to a struct buf.
 *
 * Every event is one or more "data: " lines followed by a blank line, the shape
 * both official OpenAI SDKs parse (PROTOCOL.md §4.2). We never write `event:`
 * lines: openai-python v1.x turns named events into {"data","event"} objects and
 * its chat-completion parsing breaks (PROTOCOL.md §4.4, §5.11). Comments
 * (": text") serve as keep-alives while a model loads.
 *
 * Every function appends to `out` and returns 0, or -1 when the buffer's
 * ceiling (or memory) is reached; on -1 `out` is left exactly as it was, so a
 * caller never sends half a frame. The functions own nothing and keep no
 * state; any thread may call them on a buffer it holds.
 */
#ifndef GATEWAY_SSE_H
#define GATEWAY_SSE_H

#include "apierr.h"
#include "buf.h"

#include <stddef.h>

/* Append the event "data: <json>\n\n". `json` should be one line (our JSON
 * always is); if it holds line breaks anyway, each line becomes its own
 * "data: " line, which SSE readers join back with "\n", so framing stays
 * intact. */
int sse_data(struct buf *out, const char *json, size_t len);

/* Write one event's payload straight into `out` with no intermediate copy:
 * sse_begin appends "data: ", the caller appends one line of JSON, sse_end
 * appends the blank line. If anything in between fails, the caller truncates
 * `out` back to the length it had before sse_begin (out->len = saved). */
int sse_begin(struct buf *out);
int sse_end(struct buf *out);

/* Append the comment ": <text>\n\n" (ignored by clients; a keep-alive). Line
 * breaks in `text` start further comment lines, so they cannot end the event
 * early or inject fields. */
int sse_comment(struct buf *out, const char *text);

/* Append the comment ": keep-alive\n\n", what an OpenAI stream sends while
 * the first token is awaited (dialect.h's keepalive()). */
int sse_keepalive(struct buf *out);

/* Append "data: [DONE]\n\n", the end-of-stream marker for a complete answer. */
int sse_done(struct buf *out);

/* Append "data: {"error":{"message","type","param","code"}}\n\n": the in-band
 * error for a stream whose headers are already sent (PROTOCOL.md §4.4). The
 * caller then ends the body without [DONE] (DESIGN.md, "HTTP endpoints"). */
int sse_error(struct buf *out, const struct apierr *e);

#endif
