/*
 * cors: letting web pages on other origins call the API (cors.origins).
 *
 * An origin is allowed when it is on the list (scheme://host[:port], the
 * scheme and host compared without case, a default port the same as none)
 * or the list holds "*" (any http or https origin; never "null", the origin
 * of sandboxed and file: pages). With no list, or an origin that is not
 * allowed, no CORS header is sent at all and the browser keeps the answer
 * from the page.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method, no
 * body) is answered 204 here, before the key is checked and without reaching
 * a backend: with Access-Control-Allow-Methods (the route's), -Allow-Headers
 * (the requested headers echoed when each is one SDKs send, CORS_ALLOWED_HEADERS)
 * and -Max-Age when the origin is allowed, with none of them when it is not.
 * Every other answer to an allowed origin (success, stream, error) carries
 * Access-Control-Allow-Origin (the origin echoed), Vary: Origin and
 * Access-Control-Expose-Headers, so that a page can read a 401 or a 429 and
 * its Retry-After. Access-Control-Allow-Credentials is never sent: keys
 * travel in headers, not cookies. The Origin header itself is never sent on
 * to a backend (backends get only their configured headers).
 *
 * Worker thread, inside MHD callbacks; the pure helpers any thread.
 */
#ifndef GATEWAY_CORS_H
#define GATEWAY_CORS_H

#include "config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct request;

/* Longest Origin header considered (longer ones are not allowed). */
#define CORS_ORIGIN_MAX 256
/* Access-Control-Max-Age: how long a browser may keep a preflight's answer
 * (Chromium's own ceiling). */
#define CORS_MAX_AGE_S 7200

/* Is origin (the header's value) allowed by origins[0..n) (cfg->cors)? */
bool cors_origin_allowed(const char *const *origins, size_t n, const char *origin);

/*
 * Access-Control-Request-Headers `requested` against the headers SDKs send:
 * writes the allowed ones, comma-separated, into out[0..outsz) and returns
 * true when every requested one is allowed (and fits).
 */
bool cors_allow_headers(const char *requested, char *out, size_t outsz);

/* r is a preflight that cors answers (cors configured, OPTIONS, Origin,
 * Access-Control-Request-Method, no body: no Transfer-Encoding, and no
 * Content-Length or 0). */
bool cors_is_preflight(const struct request *r);

/* Queue the answer to a preflight (cors_is_preflight). */
enum MHD_Result cors_preflight(struct request *r);

/* Add the CORS headers of an answer to r (none when r's origin is not
 * allowed). -1: one could not be added (memory ran out). */
int cors_add_headers(const struct request *r, struct MHD_Response *resp);

#endif
