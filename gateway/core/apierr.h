/*
 * apierr: an OpenAI-shaped error, {"error":{"message","type","param","code"}},
 * with the HTTP status it is sent with. Every module that can reject a request
 * fills one of these; server.c sends it (as a JSON body before the first
 * streamed byte, or as a final SSE frame after it).
 *
 * An apierr owns nothing: type and code point at string literals, param and
 * message are copied in. Plain data, any thread.
 */
#ifndef GATEWAY_APIERR_H
#define GATEWAY_APIERR_H

#include "buf.h"

#include <stdbool.h>

/* Error types, as OpenAI spells them. */
#define APIERR_INVALID "invalid_request_error"
#define APIERR_PERMISSION "permission_error"
#define APIERR_RATE_LIMIT "rate_limit_error"
#define APIERR_API "api_error"

struct apierr {
    int status;       /* HTTP status; 0 = no error */
    const char *type; /* one of APIERR_*; static */
    const char *code; /* e.g. "model_not_found"; static; NULL = JSON null */
    char param[96];   /* e.g. "messages[2].content"; "" = JSON null */
    char message[320];
    bool no_retry;          /* a 5xx that retrying will not fix: send x-should-retry: false */
    unsigned retry_after_s; /* > 0: send Retry-After (429, 503) */
};

/* Fill e. param may be NULL. Returns -1 so that callers can `return apierr_set(...)`. */
int apierr_set(struct apierr *e, int status, const char *type, const char *code, const char *param,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Shorthand for the most common one: 400 invalid_request_error naming param. */
int apierr_invalid(struct apierr *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* err = 500 internal_error: an answer did not fit (memory ran out, or the
 * output buffer's ceiling was reached); what names it ("the answer").
 * Returns -1. */
int apierr_no_room(struct apierr *e, const char *what);

/* err = 500 internal_error "out_of_memory": an allocation failed while the
 * request was handled (README "Out of memory"). Returns -1. */
int apierr_nomem(struct apierr *e);

/* Append {"error":{...}} to out. */
int apierr_json(const struct apierr *e, struct buf *out);

#endif
