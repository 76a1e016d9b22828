/*
 * ratelimit_shared: a key's requests-per-minute and tokens-per-minute kept
 * in Redis, so that every gateway replica pointed at the same server (the
 * configuration's "shared") draws on one allowance. The arithmetic is the
 * local limiter's (ratelimit.h: token buckets in fixed point, refilled
 * continuously, tokens charged after the answer), run as one Lua script per
 * check on the Redis side, atomic there, on the server's clock; the verdict
 * fills the same struct rl_verdict, so the x-ratelimit-* headers and the
 * 429s read exactly as a single gateway's.
 *
 * A check costs one round trip and holds no thread: it is sent when the
 * request's head is in (auth.c), the body is read meanwhile, and a request
 * whose body is complete before the answer waits suspended (handler.c);
 * the answer resumes it. Settling tokens after the answer is sent and not
 * waited for.
 *
 * Requests in flight (max_inflight) are leases in a sorted set per key,
 * scored by when they expire (shared.lease_s): taken by the same script and
 * round trip as the buckets, renewed every third of the lease by the
 * request's tick while it runs, released when it ends. A replica that dies
 * holding leases gives them back when they expire.
 *
 * What stays local: every check while Redis is away: an answer that fails
 * (no connection, no answer within shared.timeout_ms, an error) is replaced
 * by the local limiter's, so requests go on under the limits as configured
 * for one replica, never unlimited and never all refused. A streamed upload
 * (ROUTE_UPLOAD) is checked locally too: it goes to its backend from its
 * first callback and cannot wait.
 *
 * Worker thread only; the request owns its call (request.h rl_call).
 */
#ifndef GATEWAY_RATELIMIT_SHARED_H
#define GATEWAY_RATELIMIT_SHARED_H

#include "ratelimit.h"
#include "redis_glue.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct request;

enum rls_start {
    RLS_LOCAL, /* not shared (no Redis, no limits, an upload): check locally */
    RLS_WAIT,  /* sent: r->rl_waiting until the answer; go on reading the body */
};

/* rl_verdict.which when the address is blocked by the shared brute-force
 * guard (authguard_shared.h). */
#define RLS_GUARD "failed authentications"
/* ... when the key was revoked or disabled on another replica (pool/keystate.h). */
#define RLS_REVOKED "revoked key"
#define RLS_DISABLED "disabled key"

/* Begin r's admission under lim (r->rl and r->key set); sa is the client's
 * address, for the shared guard's blocks. */
enum rls_start rls_admit(struct request *r, const struct rl_limits *lim, bool counts_inflight,
                         const struct sockaddr *sa);

/* The loop's tick for r: renew its lease when due. */
void rls_tick(struct request *r, int64_t now);

/* r is over (auth_finish): drop an unanswered check; charge its tokens to
 * the shared bucket when it was admitted there, and add the request and
 * its tokens to the fleet's usage totals of its key (the hash
 * "<prefix>use:<key id>": requests, prompt, completion; read by
 * http/fleet.h). true: charged (or the key has no tpm); false: the caller
 * charges locally. */
bool rls_finish(struct request *r, long prompt, long completion);

/* The scripts, for tests that run them against a real server.
 * Admission: KEYS the key's hash, its lease set, the client's guard hash
 * and the key states' hash (pool/keystate.h); ARGV rpm, tpm, now_ms (0 =
 * Redis's clock), max_inflight (0 = not counted), lease_ms, the lease's
 * name, the key's id; answers {which, wait_ms, remaining_requests,
 * reset_requests_ms, remaining_tokens, reset_tokens_ms, rpm, tpm}, which
 * 0 = admitted, 1 = requests, 2 = tokens, 3 = concurrent requests, 4 = the
 * address is blocked (authguard_shared.h; wait_ms until the block ends),
 * 5 = the key is revoked, 6 = disabled.
 * Charging: KEYS the hash and, optional, the usage totals' hash; ARGV tpm
 * (0 = no charge), tokens, now_ms, prompt and completion tokens (for the
 * totals); answers 1.
 * Leases: KEYS the set; ARGV "renew" or "release", now_ms, lease_ms, the
 * lease's name. */
extern const struct redis_script rls_admit_script, rls_charge_script, rls_lease_script;

/* The verdict in an admission answer; -1 when the answer is not one. */
int rls_verdict(const redisReply *reply, struct rl_verdict *v);

#endif
