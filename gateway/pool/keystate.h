/*
 * keystate: a key revoked, disabled or enabled again by a reload of the
 * keys file on one replica, told to every other replica through Redis (the
 * configuration's "shared"), so that they refuse it at once rather than when
 * their own copy of the keys file catches up.
 *
 * The hash "<prefix>keys" maps a key id to "revoked" or "disabled"; a key
 * enabled again is removed from it. It only ever adds refusals: a replica
 * whose own file refuses a key goes on refusing it. Every admission asks
 * Redis about the key (ratelimit_shared.h, the same round trip as its
 * limits), so the others refuse it from the next request on.
 *
 * Only changes are told (the keyring before the reload against the one
 * after it): a replica starting with an old file tells nothing. A key that
 * disappears from the file counts as revoked.
 *
 * Main thread only: it writes with hiredis's blocking API, bounded by
 * KEYSTATE_TIMEOUT_MS, since the main thread serves no request. If Redis
 * cannot be reached the change is owed: the main loop tries again every
 * KEYSTATE_RETRY_MS (keystate_retry), and once Redis answers it is told
 * what changed since it was last told plus every key the file in force
 * refuses (Redis may have restarted empty), so that a key revoked while
 * Redis was away reaches the other replicas when it is back.
 */
#ifndef GATEWAY_KEYSTATE_H
#define GATEWAY_KEYSTATE_H

#include "config.h"
#include "keys.h"

#define KEYSTATE_TIMEOUT_MS 1000
/* A change Redis could not be told is tried again this often. */
#define KEYSTATE_RETRY_MS 1000

/* What a key's record says about its use: "revoked", "disabled" or NULL. */
const char *keystate_of(const struct key *k);

/* Tell Redis what changed from before to after (either may be NULL = no
 * keys). Returns how many changes were told, or -1 when Redis could not be
 * reached (logged). Nothing to do without "shared". */
int keystate_share(const struct cfg *cfg, const struct keyring *before,
                   const struct keyring *after);

/* When the main loop should call keystate_retry (monotonic ms); -1: nothing
 * is owed. */
int64_t keystate_retry_at(void);
/* Tell Redis what is owed, against the keyring in force. */
void keystate_retry(void);
/* Drop what is owed (at the end). */
void keystate_forget(void);

#endif
