/*
 * messages_error: the errors and keep-alives of the Anthropic Messages API
 * (DESIGN.md, "Other dialects"). Every error the gateway makes is an apierr
 * (OpenAI's words, with a status); on the routes that speak Anthropic it is
 * rendered as {"type":"error","error":{"type","message"}} with Anthropic's
 * type for its status:
 *
 *   400 (and other 4xx) invalid_request_error   401 authentication_error
 *   403 permission_error   404 not_found_error   413 request_too_large
 *   429 rate_limit_error   500, 502, 504 (other 5xx) api_error
 *   503 -> sent as 529 overloaded_error (no backend can take it: all down,
 *          the queue full or waited out, a busy backend)
 *
 * After the first event of a stream the error is one "event: error" frame,
 * and the stream ends without message_stop. Pure; any thread.
 */
#ifndef GATEWAY_MESSAGES_ERROR_H
#define GATEWAY_MESSAGES_ERROR_H

#include "apierr.h"
#include "buf.h"
#include "dialect.h"

/* Anthropic's error type for e, and the status it is sent with. */
const char *messages_error_type(const struct apierr *e);
int messages_error_status(const struct apierr *e);

/* "event: ping\ndata: {"type":"ping"}\n\n": the keep-alive while the first
 * token is awaited. 0, or -1 with out unchanged. */
int messages_ping(struct buf *out);

extern const struct errshape errshape_anthropic;

#endif
