/*
 * upstream_error: a backend's failure as an OpenAI error, for every dialect.
 *
 * upstream_error_map turns a native non-200 answer into the error sent to the
 * client (dialect.h's upstream_error()); upstream_fail is the 502 a dialect
 * reports when a 200 answer turns out to be broken (an {"error":...} line, a
 * line that is not JSON, an early end). Both name the backend and quote only
 * Ollama's own message, made printable and cut short: a backend's raw body
 * (an HTML page from a proxy in front of it, say) is never relayed.
 *
 * Owns nothing: input bytes are borrowed for the call, the apierr is the
 * caller's. Pure functions; any thread.
 */
#ifndef GATEWAY_UPSTREAM_ERROR_H
#define GATEWAY_UPSTREAM_ERROR_H

#include "apierr.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * Map a native non-200 answer (status, and its body, which may be anything:
 * {"error":"text"}, gin's plain-text 404, a proxy's HTML page, nothing) from
 * backend_name (may be NULL) to an OpenAI error. The message names the backend
 * and Ollama's reason; the raw body is never passed through.
 *   400 -> 400 invalid_request_error (param "tools", "suffix" (insert),
 *          "reasoning_effort" or "model" when Ollama names a missing
 *          capability)
 *   404 {"error":"... not found"} -> 404 invalid_request_error model_not_found;
 *          any other 404 (a wrong URL) -> 502 upstream_error, no_retry
 *   500 with a deterministic cause: invalid format / schema -> 400 (param
 *          "response_format"); "does not support" -> 400; option type errors
 *          and "requires more system memory" -> 502 upstream_error, no_retry
 *   503 and 429 -> 503 api_error backend_unavailable
 *   401, 403 and other 4xx -> 502 upstream_error, no_retry (the gateway's
 *          request or credentials were refused: not the client's doing)
 *   other 5xx, 408, 499 (and anything else) -> 502 api_error upstream_error
 */
void upstream_error_map(int status, const char *body, size_t len, const char *backend_name,
                        struct apierr *err);

/* err = 502 api_error upstream_error, the message "Backend \"<name>\" " (or
 * "The backend ") followed by fmt. Returns -1. */
int upstream_fail(struct apierr *err, const char *backend, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The text under "error" in a native error object: a string, or
 * {"message": string} as a proxy in front of Ollama might send; else NULL. */
const char *upstream_error_text(const cJSON *e);

/* A short, printable excerpt of untrusted text for an error message: runs of
 * whitespace become one space, other bytes outside printable ASCII become
 * '?', and "..." marks a cut. size >= 8. */
void upstream_excerpt(char *out, size_t size, const char *p, size_t len);

#endif
