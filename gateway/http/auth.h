/*
 * auth: who is calling, and may they do it now. The credential a client
 * presents (Authorization: Bearer, api-key or x-api-key) is checked against
 * the request's keyring (keys.h); an address that keeps failing is refused
 * for a while (authguard.h); a known key is held to its scopes and its
 * per-minute and in-flight limits (ratelimit.h).
 *
 * Every route but /healthz and /readyz needs a key when "auth" is "keys",
 * and the check runs on the request's first callback, before its body is
 * read, so a rejected request costs almost nothing and never reaches a
 * backend. With "auth": "none" every request is let through with no key.
 * Worker thread; the state behind it (keyring, guard, limits) is shared.
 */
#ifndef GATEWAY_AUTH_H
#define GATEWAY_AUTH_H

#include "apierr.h"
#include "keys.h"

#include <microhttpd.h>

struct request;

/* Authenticate r and admit it under its key's limits. 0: go on (r->key is
 * the caller's key, or NULL with auth "none"); -1: e holds the 401 or 429. */
int auth_request(struct request *r, struct apierr *e);

/* The 429 for r's key, from the refusing verdict in r->rlv. */
void auth_refusal(const struct request *r, struct apierr *e);

/* The 401 for r's key when it is revoked or disabled (v). */
void auth_key_refusal(const struct request *r, enum key_verdict v, struct apierr *e);

/* May r's key use the client-facing model name? 0, or -1 with a 403 in e. */
int auth_scope(const struct request *r, const char *model, struct apierr *e);

/* Add the x-ratelimit-* headers of r's key to a response. -1: one could not be
 * added (memory ran out). */
int auth_add_headers(const struct request *r, struct MHD_Response *resp);

/* r is over: give back its place in flight, charge the tokens it used. */
void auth_finish(struct request *r);

#endif
