/*
 * authguard_shared: the brute-force guard's failures and blocks kept in
 * Redis (the configuration's "shared"), so that an address blocked through
 * one gateway replica is refused by all of them. The rule is the local
 * guard's (authguard.h): limits.auth_failures_per_minute failures within a
 * sliding minute block the address for 60 s, a block starting within an
 * hour of the last one's end doubles it, up to 15 min; the unit is the
 * address (IPv6: its /64).
 *
 * Failures are counted where they happen: a request whose credentials fail
 * sends the failure to Redis (one Lua script, atomic there) besides counting
 * it locally; when the answer says the address is blocked (by this failure
 * or an earlier one anywhere) the 401 becomes the guard's 429. A request
 * without a body waits for that answer; one with a body is answered at once
 * and its failure is still counted. A request with a valid key learns of a
 * block from its admission (ratelimit_shared.h: the same script, the same
 * round trip). The local guard goes on counting and blocking as before:
 * while Redis is away it is the only one.
 *
 * Worker thread only.
 */
#ifndef GATEWAY_AUTHGUARD_SHARED_H
#define GATEWAY_AUTHGUARD_SHARED_H

#include "apierr.h"
#include "redis_glue.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct request;

/* The Redis key of sa's unit, "<prefix>ag:<unit>" ("...ag:-" for an address
 * that is not counted). -1 when it does not fit. */
int ags_key(const struct request *r, const struct sockaddr *sa, char *out, size_t size);

/* sa's unit as text: "4:192.0.2.1", "6:2001:db8:1:2::/64"; "-" when not
 * counted (AF_UNIX, NULL). */
void ags_unit(const struct sockaddr *sa, char *out, size_t size);

/* r's credentials failed (r->err holds the 401): count it in Redis, and
 * make r->err the guard's 429 if the address is blocked. true: sent
 * (r->rl_waiting until answered); false: not shared now. */
bool ags_failed(struct request *r, const struct sockaddr *sa, unsigned limit);

/* The guard's 429 for a block of `seconds` more. */
void ags_refusal(struct apierr *e, unsigned seconds);

/* The script, for tests: KEYS the address's block hash and failure set;
 * ARGV limit, now_ms (0 = Redis's clock), a unique name for the failure;
 * answers {seconds blocked (0 = not), seconds of a block this started}. */
extern const struct redis_script ags_fail_script;

#endif
